// Ring bypass and star hub failover with real mlr-node processes on loopback: a node is
// killed with SIGKILL while the others write, the others keep converging through the
// detour, and the node restarted from its data directory catches up. Pulls wait 20 s
// here, so what arrives within 15 s came by the detour.

#include "process_harness.hpp"

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

TEST_CASE("processes star N=5 --standby-hubs n2: the hub killed during writes, spokes converge "
          "through the standby, the hub restarts and everything converges") {
  process_cluster c(5, "star", {"--standby-hubs", "n2", "--pull-grace-ms", "20000"}, "batch");
  write_at(c, {0, 1, 2, 3, 4}, "before", 5);
  REQUIRE(c.wait_converged());
  c.node(0).kill_hard();
  auto during = write_at(c, {1, 2, 3, 4}, "during", 20);
  INFO(c.logs());
  CHECK(eventually([&] { return everywhere(c, {1, 2, 3, 4}, during); }, 15s));
  CHECK(node_stat(c, 2, "relayed") > 0); // the standby relays as the hub would
  c.start(0);
  REQUIRE(c.wait_ready(0));
  CHECK(c.wait_converged(30s));
  CHECK(everywhere(c, {0}, during));
}
