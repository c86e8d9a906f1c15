// Durability with real processes and RocksDB data directories: clean restarts resume
// exactly, a crash loop under --sync batch loses no acknowledged write, and a data
// directory that belongs elsewhere, or is damaged, is refused with a clear message.

#include "process_harness.hpp"

#include <sys/stat.h>

#include <filesystem>

#include <atomic>
#include <mutex>
#include <random>
#include <set>

using namespace mlr;
using namespace mlr::testing;
using namespace std::chrono_literals;

TEST_CASE("durable mesh N=3: a clean restart keeps the version vector, digest and incarnation") {
  process_cluster c(3, "mesh", {}, "batch");
  auto a = c.connect(0);
  for (int k = 0; k < 100; ++k)
    REQUIRE(a->put("k" + std::to_string(k), std::to_string(k)));
  auto b = c.connect(1);
  for (int k = 0; k < 100; ++k)
    REQUIRE(b->put("from-n1-" + std::to_string(k), "x"));
  REQUIRE(c.wait_converged());
  auto before = *c.status(1);
  c.node(1).signal(SIGTERM);
  REQUIRE(c.node(1).wait(10s) == 0);
  c.start(1);
  REQUIRE(c.wait_ready(1));
  auto after = *c.status(1);
  CHECK(after["applied"] == before["applied"]);
  CHECK(after["state_digest"] == before["state_digest"]);
  CHECK(after["incarnation"] == before["incarnation"]);
  CHECK(read_file(c.dir() + "/n1.log").find("resuming from") != std::string::npos);
  // Its links start from the cursors they persisted: its 100 writes, acknowledged before
  // the stop, are not shipped again (pull answers, counted apart, may send some).
  REQUIRE(c.wait_converged());
  auto s1 = (*c.status(1))["stats"];
  INFO(s1.dump());
  CHECK(s1["events_sent"].get<uint64_t>() - s1["pull_events_served"].get<uint64_t>() < 10);
  // Its next write continues its own counter and reaches everyone.
  auto w = c.connect(1)->put("after-restart", "y");
  REQUIRE(w);
  // n1's next write under its one incarnation: the dot ends in ".101".
  CHECK(w->substr(w->rfind('.')) == ".101");
  CHECK(c.wait_converged());
}

TEST_CASE("durable mesh N=3 --sync batch: 20 SIGKILLs at random moments lose no acknowledged "
          "write") {
  process_cluster c(3, "mesh", {}, "batch");
  std::mt19937 rng(2026);
  std::mutex mtx;
  std::set<std::string> acked;
  std::atomic<bool> stop{false};
  // One writer per node, writing unique keys without pause; a write counts only once the
  // node acknowledged it (under --sync batch: after the fsync that covers it).
  std::vector<std::thread> writers;
  for (size_t node = 0; node < 3; ++node)
    writers.emplace_back([&, node] {
      int k = 0;
      while (!stop) {
        auto conn = client::connection::open(c.client_address(node), 1000ms);
        if (!conn) {
          std::this_thread::sleep_for(20ms); // the node is down or restarting
          continue;
        }
        while (!stop) {
          auto key = "n" + std::to_string(node) + "-" + std::to_string(k++);
          if (!(*conn)->put(key, "v"))
            break; // killed mid-request: not acknowledged, so not counted
          std::lock_guard<std::mutex> guard(mtx);
          acked.insert(key);
        }
      }
    });
  for (int round = 0; round < 20; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 250));
    auto victim = rng() % 3;
    c.node(victim).signal(SIGKILL);
    c.node(victim).wait(5s);
    c.start(victim);
    REQUIRE(c.wait_ready(victim));
  }
  stop = true;
  for (auto& w : writers)
    w.join();
  INFO(c.logs());
  REQUIRE(c.wait_converged(60s));
  REQUIRE(acked.size() > 100);
  size_t missing = 0;
  for (size_t i = 0; i < 3; ++i) {
    auto conn = c.connect(i);
    for (auto& key : acked) {
      auto g = conn->get(key);
      if (!g || g->siblings.empty())
        ++missing;
    }
  }
  WARN(acked.size() << " acknowledged writes, 20 kills, " << missing << " missing");
  CHECK(missing == 0);
}

TEST_CASE("durable: a data directory of another node is refused, a damaged one is explained") {
  process_cluster c(2, "mesh", {}, "batch");
  REQUIRE(c.connect(0)->put("k", "v"));
  c.node(0).signal(SIGTERM);
  REQUIRE(c.node(0).wait(10s) == 0);
  auto foreign = run_command({MLR_NODE_BIN, "--id", "n1", "--cluster-file",
                              c.dir() + "/cluster.txt", "--data-dir", c.data_dir(0)});
  CHECK(foreign.first == 2);
  CHECK(foreign.second.find("belongs to node 'n0' of cluster 'itest', not to node 'n1'") !=
        std::string::npos);
  auto bad = c.dir() + "/damaged";
  ::mkdir(bad.c_str(), 0755);
  {
    std::ofstream f(bad + "/CURRENT");
    f << "not a manifest name\n";
  }
  auto damaged = run_command(
    {MLR_NODE_BIN, "--id", "n0", "--cluster-file", c.dir() + "/cluster.txt", "--data-dir", bad});
  CHECK(damaged.first == 1);
  CHECK(damaged.second.find("cannot open data directory") != std::string::npos);
  CHECK(damaged.second.find("move it away") != std::string::npos);

  // The same node under a membership that would renumber the nodes: refused.
  auto moved = c.dir() + "/renumbered.txt";
  {
    std::ofstream f(moved);
    f << "cluster itest\ntopology mesh\nnode a-new 127.0.0.1:" << free_port()
      << "\nnode n0 127.0.0.1:" << c.ports(0).peer << "\nnode n1 127.0.0.1:" << c.ports(1).peer
      << "\n";
  }
  auto renumbered =
    run_command({MLR_NODE_BIN, "--id", "n0", "--cluster-file", moved, "--data-dir", c.data_dir(0)});
  CHECK(renumbered.first == 2);
  CHECK(renumbered.second.find("node indexes would change") != std::string::npos);
}

TEST_CASE("durable mesh N=3: a node wiped after its peers compacted their logs catches up by "
          "state transfer, and its old incarnation is retired everywhere") {
  process_cluster c(3, "mesh", {"--log-retention", "0"}, "batch");
  auto a = c.connect(0);
  auto z = c.connect(2);
  for (int k = 0; k < 400; ++k) {
    REQUIRE(a->put("a" + std::to_string(k), std::string(100, 'a')));
    if (k % 4 == 0)
      REQUIRE(z->put("z" + std::to_string(k), "old n2"));
  }
  REQUIRE(c.wait_converged());
  // Every node's log is compacted: what n2 will lack is no longer in any log.
  REQUIRE(eventually(
    [&] {
      for (size_t i = 0; i < 3; ++i)
        if ((*c.status(i))["log_begin"].get<uint64_t>() < 400)
          return false;
      return true;
    },
    20s));
  auto old_incarnation = (*c.status(2))["incarnation"].get<std::string>();
  c.node(2).kill_hard();
  std::filesystem::remove_all(c.data_dir(2));
  c.start(2);
  REQUIRE(c.wait_ready(2));
  INFO(c.logs());
  REQUIRE(c.wait_converged(30s));
  auto s2 = *c.status(2);
  CHECK(s2["incarnation"].get<std::string>() != old_incarnation);
  CHECK(s2["stats"]["transfers_received"].get<uint64_t>() >= 1);
  CHECK(s2["stats"]["transfer_keys_received"].get<uint64_t>() >= 500);
  CHECK(s2["keys"].get<uint64_t>() >= 500);
  auto n2_log = read_file(c.dir() + "/n2.log");
  CHECK(n2_log.find("state transfer from") != std::string::npos);
  CHECK(n2_log.find("done:") != std::string::npos);

  // Its next writes reach everyone.
  REQUIRE(c.connect(2)->put("after-wipe", "new n2"));
  REQUIRE(c.wait_converged(20s));
  auto got = c.connect(0)->get("after-wipe");
  REQUIRE(got);
  REQUIRE(got->siblings.size() == 1);

  // The old incarnation leaves every version vector for the retired table.
  REQUIRE(eventually(
    [&] {
      for (size_t i = 0; i < 3; ++i) {
        auto s = *c.status(i);
        if (s["applied"].size() > 3 || s["retired"].size() != 1)
          return false;
      }
      return true;
    },
    20s));
  CHECK(c.wait_converged());
}
