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
  auto bad = run_command({MLR_CLI_BIN, "--admin-secret-file", c.admin_secret_file(), "--node",
                          c.client_address(0), "topology", "set", "star:x9"});
  CHECK(bad.first == 1);
  CHECK(bad.second.find("'x9' is not a member") != std::string::npos);
  auto set = run_command({MLR_CLI_BIN, "--admin-secret-file", c.admin_secret_file(), "--node",
                          c.client_address(0), "topology", "set", "mesh"});
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
  auto set = run_command({MLR_CLI_BIN, "--admin-secret-file", c.admin_secret_file(), "--node",
                          c.client_address(2), "topology", "set", file});
  INFO(set.second << c.logs());
  REQUIRE(set.first == 0);
  auto after = write_at(c, {0, 2, 3}, "after", 10);
  CHECK(eventually(
    [&] {
      return everywhere(c, {0, 2, 3}, during) && everywhere(c, {0, 2, 3}, after);
    },
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

TEST_CASE("processes: a node added at one node while another is removed at a second, "
          "concurrently, with a third stopped meanwhile: one epoch everywhere, N-1 events per "
          "write after") {
  process_cluster c(4, "mesh");
  write_at(c, {0, 1, 2, 3}, "before", 5);
  REQUIRE(c.wait_converged());
  // The newcomer's cluster file: the members in order, itself last.
  node_ports p4{free_port(), free_port(), free_port()};
  auto cf5 = c.dir() + "/cluster5.txt";
  {
    std::ofstream out(cf5);
    out << read_file(c.dir() + "/cluster.txt") << "node n4 127.0.0.1:" << p4.peer
        << " client=127.0.0.1:" << p4.client << "\n";
  }
  auto add = c.dir() + "/add-n4.txt";
  auto remove = c.dir() + "/remove-n3.txt";
  {
    std::ofstream a(add);
    a << "members n0 n1 n2 n3 n4\naddress n4 127.0.0.1:" << p4.peer << "\nmesh\n";
    std::ofstream r(remove);
    r << "members n0 n1 n2 n3\nremoved n3\nmesh\n";
  }
  c.node(2).signal(SIGSTOP); // partitioned while the changes happen
  std::pair<int, std::string> added, removed;
  std::thread t1([&] {
    added = run_command({MLR_CLI_BIN, "--admin-secret-file", c.admin_secret_file(), "--node",
                         c.client_address(0), "topology", "set", add});
  });
  std::thread t2([&] {
    removed = run_command({MLR_CLI_BIN, "--admin-secret-file", c.admin_secret_file(), "--node",
                           c.client_address(1), "topology", "set", remove});
  });
  t1.join();
  t2.join();
  INFO(added.second << removed.second);
  REQUIRE(added.first == 0);
  REQUIRE(removed.first == 0);
  auto n4 =
    process::start({MLR_NODE_BIN, "--id", "n4", "--cluster-file", cf5, "--cluster-secret-file",
                    c.dir() + "/secret", "--heartbeat-ms", "100", "--peer-timeout-ms", "1000",
                    "--ack-timeout-ms", "500", "--pull-grace-ms", "300"},
                   c.dir() + "/n4.log");
  c.node(3).kill_hard(); // decommissioned
  std::this_thread::sleep_for(1s);
  c.node(2).signal(SIGCONT);
  auto status4 = [&] { return status_at("127.0.0.1:" + std::to_string(p4.client)); };
  auto statuses = [&] {
    std::vector<std::optional<nlohmann::json>> out{c.status(0), c.status(1), c.status(2),
                                                   status4()};
    return out;
  };
  INFO(c.logs() << "--- n4 ---\n" << read_file(c.dir() + "/n4.log"));
  CHECK(eventually(
    [&] {
      auto all = statuses();
      for (auto& s : all)
        if (!s || !(*s)["epoch"].is_string() ||
            (*s)["topology_edges"].get<std::string>().rfind("members n0 n1 n2 n3 n4\n", 0) != 0 ||
            (*s)["topology_edges"].get<std::string>().find("removed n3") == std::string::npos ||
            (*s)["epoch"] != (*all[0])["epoch"] || (*s)["applied"] != (*all[0])["applied"] ||
            (*s)["state_digest"] != (*all[0])["state_digest"])
          return false;
      return true;
    },
    30s));
  auto sent = [&] {
    uint64_t n = 0;
    for (auto& s : statuses())
      if (s)
        n += (*s)["stats"]["events_sent"].get<uint64_t>();
    return n;
  };
  std::this_thread::sleep_for(500ms); // let pulls and acks from the change settle
  auto before = sent();
  std::vector<std::string> after;
  auto conn0 = c.connect(0);
  for (int i = 0; i < 10; ++i) {
    after.push_back("after-change-" + std::to_string(i));
    REQUIRE(conn0->put(after.back(), "v"));
  }
  CHECK(eventually(
    [&] {
      auto conn = client::connection::open("127.0.0.1:" + std::to_string(p4.client));
      if (!conn)
        return false;
      for (auto& k : after) {
        auto g = (*conn)->get(k);
        if (!g || g->siblings.size() != 1)
          return false;
      }
      return everywhere(c, {1, 2}, after);
    },
    10s));
  std::this_thread::sleep_for(300ms);
  auto per_write = static_cast<double>(sent() - before) / 10.0;
  WARN("events shipped per write after the change: " << per_write << " (4 live members)");
  CHECK(per_write >= 3.0);
  CHECK(per_write <= 3.2); // N - 1, give or take a retransmission
}
