// A ring of 5 mlr-node processes, one network namespace per node on a bridge of its own,
// and the ring's link n2 -> n3 cut with iptables inside n2's namespace while n3 stays
// alive: writes taken at every node reach every node, and after the rule is removed
// everything converges. Needs root (CI runs as root), `ip` and `iptables`; elsewhere the
// test says why it skipped.

#include "process_harness.hpp"

#include <unistd.h>

#include <cstdlib>

using namespace mlr;
using namespace mlr::testing;
using namespace std::chrono_literals;

namespace {

int sh(const std::string& cmd) {
  return std::system((cmd + " >/dev/null 2>&1").c_str());
}

// Namespaces <prefix>-0 .. -N-1 for the nodes and <prefix>-br holding the bridge; all
// removed at the end, pass or fail.
class netns_lab {
public:
  explicit netns_lab(size_t n) : n_(n), prefix_("mlrt" + std::to_string(::getpid() % 100000)) {
    if (::geteuid() != 0) {
      why_ = "not root";
      return;
    }
    if (sh("ip -V") != 0 || sh("iptables --version") != 0) {
      why_ = "'ip' or 'iptables' is missing (Debian: iproute2, iptables)";
      return;
    }
    auto br = prefix_ + "-br";
    bool ok = sh("ip netns add " + br) == 0 &&
              sh("ip -n " + br + " link add br0 type bridge") == 0 &&
              sh("ip -n " + br + " link set br0 up") == 0;
    for (size_t i = 0; ok && i < n; ++i) {
      auto ns = name(i);
      auto veth = prefix_ + "v" + std::to_string(i);
      ok = sh("ip netns add " + ns) == 0 &&
           sh("ip link add " + veth + " type veth peer name eth0 netns " + ns) == 0 &&
           sh("ip link set " + veth + " netns " + br) == 0 &&
           sh("ip -n " + br + " link set " + veth + " master br0 up") == 0 &&
           sh("ip -n " + ns + " addr add " + address(i) + "/24 dev eth0") == 0 &&
           sh("ip -n " + ns + " link set eth0 up") == 0 &&
           sh("ip -n " + ns + " link set lo up") == 0;
    }
    if (!ok)
      why_ = "cannot create network namespaces and veth pairs here";
  }

  ~netns_lab() {
    for (size_t i = 0; i < n_; ++i)
      sh("ip netns del " + name(i));
    sh("ip netns del " + prefix_ + "-br");
  }

  bool usable() const { return why_.empty(); }
  const std::string& why() const { return why_; }
  std::string name(size_t i) const { return prefix_ + "-" + std::to_string(i); }
  std::string address(size_t i) const { return "10.213.77." + std::to_string(i + 1); }

private:
  size_t n_;
  std::string prefix_;
  std::string why_;
};

// The `mlr` CLI run inside node i's namespace against node j's client port.
std::pair<int, std::string> cli(const netns_lab& lab, size_t i, size_t j,
                                std::vector<std::string> args) {
  std::vector<std::string> cmd{"/usr/bin/env", "ip",        "netns",  "exec",
                               lab.name(i),    MLR_CLI_BIN, "--node", lab.address(j) + ":7100"};
  cmd.insert(cmd.end(), args.begin(), args.end());
  return run_command(cmd, 20s);
}

} // namespace

TEST_CASE("netns ring N=5: the link n2 -> n3 cut by iptables while n3 stays alive, writes at "
          "every node reach every node, and all converge once it heals") {
  const size_t n = 5;
  netns_lab lab(n);
  if (!lab.usable()) {
    WARN("skipped: " << lab.why());
    return;
  }
  auto dir = temp_dir();
  {
    std::ofstream cf(dir + "/cluster.txt");
    cf << "cluster netns\ntopology ring\n";
    for (size_t i = 0; i < n; ++i)
      cf << "node n" << i << " " << lab.address(i) << ":7000 client=" << lab.address(i)
         << ":7100\n";
  }
  std::vector<process> nodes;
  for (size_t i = 0; i < n; ++i)
    nodes.push_back(process::start(
      {"/usr/bin/env", "ip", "netns", "exec", lab.name(i), MLR_NODE_BIN, "--id",
       "n" + std::to_string(i), "--cluster-file", dir + "/cluster.txt", "--heartbeat-ms", "100",
       "--peer-timeout-ms", "1000", "--ack-timeout-ms", "500", "--pull-grace-ms", "300",
       // Clients reach the nodes on the namespaces' own addresses, which only this test's
       // namespaces can reach: protected mode opened deliberately.
       "--allow-unauthenticated-clients"},
      dir + "/n" + std::to_string(i) + ".log"));
  auto logs = [&] {
    std::string out;
    for (size_t i = 0; i < n; ++i)
      out +=
        "--- n" + std::to_string(i) + " ---\n" + read_file(dir + "/n" + std::to_string(i) + ".log");
    return out;
  };
  auto status = [&](size_t i) -> std::optional<nlohmann::json> {
    auto r = cli(lab, i, i, {"status", "--json"});
    if (r.first != 0)
      return std::nullopt;
    try {
      return nlohmann::json::parse(r.second);
    } catch (...) {
      return std::nullopt;
    }
  };
  auto converged = [&] {
    std::optional<nlohmann::json> first;
    for (size_t i = 0; i < n; ++i) {
      auto s = status(i);
      if (!s || (*s)["stats"]["buffered"].get<uint64_t>() != 0)
        return false;
      if (!first)
        first = s;
      else if ((*s)["applied"] != (*first)["applied"] ||
               (*s)["state_digest"] != (*first)["state_digest"])
        return false;
    }
    return true;
  };
  REQUIRE(eventually(
    [&] {
      for (size_t i = 0; i < n; ++i)
        if (!status(i))
          return false;
      return true;
    },
    15s));

  // The cut: n2 drops everything to n3 (so the TCP connection between them dies both ways).
  REQUIRE(sh("ip netns exec " + lab.name(2) + " iptables -A OUTPUT -d " + lab.address(3) +
             " -j DROP") == 0);
  std::vector<std::string> keys;
  for (int r = 0; r < 3; ++r)
    for (size_t i = 0; i < n; ++i) {
      keys.push_back("k" + std::to_string(r) + "-n" + std::to_string(i));
      auto put = cli(lab, i, i, {"put", keys.back(), "v"});
      INFO("put at n" << i << ": " << put.second << logs());
      REQUIRE(put.first == 0);
    }
  auto everywhere = [&] {
    for (size_t i = 0; i < n; ++i)
      for (auto& k : keys) {
        auto g = cli(lab, i, i, {"get", k});
        if (g.first != 0 || g.second.rfind("v\n", 0) != 0)
          return false;
      }
    return true;
  };
  CHECK(eventually(everywhere, 20s));
  CHECK(eventually(converged, 20s));
  auto s3 = status(3);
  REQUIRE(s3);
  // n3's only in-edge is n2's link: what n2 could not ship came by pull or by a detour's
  // relay, whichever was first (a fresh check under load once saw no pull at all).
  auto& st3 = (*s3)["stats"];
  INFO(st3.dump());
  CHECK(st3["pulled_events"].get<uint64_t>() + st3["relayed"].get<uint64_t>() > 0);

  REQUIRE(sh("ip netns exec " + lab.name(2) + " iptables -D OUTPUT -d " + lab.address(3) +
             " -j DROP") == 0);
  REQUIRE(cli(lab, 2, 2, {"put", "after-heal", "v"}).first == 0);
  keys.push_back("after-heal");
  CHECK(eventually(everywhere, 20s));
  CHECK(eventually(converged, 20s));
}
