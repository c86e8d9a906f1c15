// Ring bypass and star hub failover with real mlr-node processes on loopback: a node is
// killed with SIGKILL while the others write, the others keep converging through the
// detour, and the node restarted from its data directory catches up. Pulls wait 20 s
// here, so what arrives within 15 s came by the detour.

#include "process_harness.hpp"

#include <atomic>
#include <thread>

using namespace mlr;
using namespace mlr::testing;
using namespace std::chrono_literals;

namespace {

// `count` writes at each of `writers`, keys named after the round; returns them.
std::vector<std::string> write_at(process_cluster& c, const std::vector<size_t>& writers,
                                  const std::string& round, int count) {
  std::vector<std::string> keys;
  for (auto w : writers) {
    auto conn = c.connect(w);
    for (int i = 0; i < count; ++i) {
      auto k = round + "-n" + std::to_string(w) + "-" + std::to_string(i);
      REQUIRE(conn->put(k, "v"));
      keys.push_back(k);
    }
  }
  return keys;
}

bool everywhere(process_cluster& c, const std::vector<size_t>& nodes,
                const std::vector<std::string>& keys) {
  for (auto n : nodes) {
    auto conn = client::connection::open(c.client_address(n));
    if (!conn)
      return false;
    for (auto& k : keys) {
      auto got = (*conn)->get(k);
      if (!got || got->siblings.size() != 1)
        return false;
    }
  }
  return true;
}

uint64_t node_stat(process_cluster& c, size_t n, const char* name) {
  auto s = c.status(n);
  return s ? (*s)["stats"][name].get<uint64_t>() : 0;
}

} // namespace

TEST_CASE("processes ring N=5: n3 killed during writes, the others converge by the detour, "
          "n3 restarts from its data directory and catches up") {
  process_cluster c(5, "ring", {"--pull-grace-ms", "20000"}, "batch");
  write_at(c, {0, 1, 2, 3, 4}, "before", 5);
  REQUIRE(c.wait_converged());
  c.node(3).kill_hard();
  auto during = write_at(c, {0, 1, 2, 4}, "during", 20);
  INFO(c.logs());
  CHECK(eventually([&] { return everywhere(c, {0, 1, 2, 4}, during); }, 15s));
  CHECK(node_stat(c, 4, "relayed") > 0); // n2 ships to n4 on n3's behalf
  c.start(3);
  REQUIRE(c.wait_ready(3));
  CHECK(c.wait_converged(30s));
  CHECK(everywhere(c, {3}, during));
}

namespace {

// A star whose hub n0 is SIGKILLed during writes, with standby n2 and a --hub-return policy.
void star_hub_failover(const std::string& policy) {
  process_cluster c(5, "star",
                    {"--standby-hubs", "n2", "--hub-return", policy, "--pull-grace-ms", "20000"},
                    "batch");
  write_at(c, {0, 1, 2, 3, 4}, "before", 5);
  REQUIRE(c.wait_converged());
  c.node(0).kill_hard();
  auto during = write_at(c, {1, 2, 3, 4}, "during", 20);
  INFO(c.logs());
  CHECK(eventually([&] { return everywhere(c, {1, 2, 3, 4}, during); }, 15s));
  if (policy == "resume")
    CHECK(node_stat(c, 2, "relayed") > 0); // the standby relays as the hub would
  c.start(0);
  REQUIRE(c.wait_ready(0));
  CHECK(c.wait_converged(30s));
  CHECK(everywhere(c, {0}, during));
  auto s0 = *c.status(0);
  if (policy == "spoke") {
    // n2 made itself the hub: every node, the old hub included, routes by that epoch.
    REQUIRE(s0["epoch"].is_string());
    CHECK(s0["epoch"].get<std::string>().rfind("n2.", 0) == 0);
    CHECK(s0["topology_edges"].get<std::string>().find("n0 -> n2") != std::string::npos);
    CHECK(s0["topology_edges"].get<std::string>().find("n0 -> n1") == std::string::npos);
  } else {
    CHECK(s0["epoch"].is_null()); // no topology change: the hub took its role back
  }
  auto after = write_at(c, {0}, "after", 5);
  CHECK(eventually([&] { return everywhere(c, {1, 2, 3, 4}, after); }, 10s));
}

} // namespace

TEST_CASE("processes star N=5 --standby-hubs n2 --hub-return resume: the hub killed during "
          "writes, spokes converge through the standby, the hub returns to its role") {
  star_hub_failover("resume");
}

TEST_CASE("processes star N=5 --standby-hubs n2 --hub-return spoke: the hub killed during "
          "writes, the standby takes its role, the old hub returns as a spoke") {
  star_hub_failover("spoke");
}

TEST_CASE("processes ring N=3 to mesh with 'mlr topology set' during writes: one epoch "
          "everywhere, nothing lost, kept across a restart") {
  process_cluster c(3, "ring", {}, "batch");
  std::atomic<bool> stop{false};
  std::vector<std::string> written;
  std::thread writer([&] {
    auto conn = c.connect(1);
    for (int i = 0; !stop; ++i) {
      auto k = "w" + std::to_string(i);
      if (conn->put(k, "v"))
        written.push_back(k);
      std::this_thread::sleep_for(2ms);
    }
  });
  std::this_thread::sleep_for(200ms);
  auto bad = run_command({MLR_CLI_BIN, "--node", c.client_address(0), "topology", "set", "star:x9"});
  CHECK(bad.first == 1);
  CHECK(bad.second.find("'x9' is not a member") != std::string::npos);
  auto set = run_command({MLR_CLI_BIN, "--node", c.client_address(0), "topology", "set", "mesh"});
  REQUIRE(set.first == 0);
  REQUIRE(set.second.rfind("epoch n0.", 0) == 0);
  auto epoch = set.second.substr(6, set.second.find('\n') - 6);
  std::this_thread::sleep_for(300ms);
  stop = true;
  writer.join();
  INFO(c.logs());
  REQUIRE(c.wait_converged());
  for (size_t n = 0; n < 3; ++n) {
    auto s = *c.status(n);
    CHECK(s["epoch"] == epoch);
    CHECK(s["topology_edges"].get<std::string>().find("n0 -> n2") != std::string::npos);
  }
  CHECK(everywhere(c, {0, 1, 2}, written));
  c.node(2).signal(SIGTERM);
  REQUIRE(c.node(2).wait(10s) == 0);
  c.start(2);
  REQUIRE(c.wait_ready(2));
  CHECK((*c.status(2))["epoch"] == epoch);
  CHECK(c.wait_converged());
}

TEST_CASE("processes mesh N=4: a member removed with 'mlr topology set FILE' is decommissioned, "
          "the rest converge and compact their logs again") {
  process_cluster c(4, "mesh", {"--log-retention", "0"});
  write_at(c, {0, 1, 2, 3}, "before", 5);
  REQUIRE(c.wait_converged());
  c.node(1).kill_hard(); // gone for good
  auto during = write_at(c, {0, 2, 3}, "during", 10);
  std::this_thread::sleep_for(500ms); // what all four held is compacted by now
  auto begin_before = (*c.status(0))["log_begin"].get<uint64_t>();
  std::this_thread::sleep_for(500ms);
  // n1 is still a member: nothing it lacks can be stable, so nothing more is compacted.
  CHECK((*c.status(0))["log_begin"].get<uint64_t>() == begin_before);
  auto file = c.dir() + "/without-n1.txt";
  {
    std::ofstream f(file);
    f << "members n0 n1 n2 n3\nremoved n1\nmesh\n";
  }
  auto set = run_command({MLR_CLI_BIN, "--node", c.client_address(2), "topology", "set", file});
  INFO(set.second << c.logs());
  REQUIRE(set.first == 0);
  auto after = write_at(c, {0, 2, 3}, "after", 10);
  CHECK(eventually([&] { return everywhere(c, {0, 2, 3}, during) && everywhere(c, {0, 2, 3}, after); },
                   15s));
  CHECK(eventually(
    [&] {
      std::optional<nlohmann::json> first;
      for (size_t n : {0, 2, 3}) {
        auto s = c.status(n);
        if (!s || !(*s)["epoch"].is_string() ||
            (*s)["topology_edges"].get<std::string>().find("removed n1") == std::string::npos)
          return false;
        if (!first)
          first = s;
        else if ((*s)["epoch"] != (*first)["epoch"] || (*s)["applied"] != (*first)["applied"] ||
                 (*s)["state_digest"] != (*first)["state_digest"])
          return false;
      }
      return (*first)["log_begin"].get<uint64_t>() > begin_before; // stable again: compacted
    },
    15s));
}
