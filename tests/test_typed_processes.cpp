// Typed keys between real processes with real redis-cli clients: three mlr-node processes,
// one cut off from the other two (restarted from its data directory with a cluster file in
// which their addresses lead nowhere, and they with one in which its address does). During
// the cut every node takes 300 INCRBY, one side removes a set member that the other side
// adds again, and the two sides set different fields of one hash. After the heal every
// node shows the exact sum, the re-added member and both fields.

#include "process_harness.hpp"

#include <csignal>
#include <fstream>

using namespace mlr;
using namespace mlr::testing;
using namespace std::chrono_literals;

namespace {

std::string cli(process_cluster& c, size_t i, const std::string& commands) {
  auto port = std::to_string(c.ports(i).resp);
  auto out =
    run_command({"/bin/sh", "-c", "printf '" + commands + "' | /usr/bin/redis-cli -p " + port});
  INFO("redis-cli at n" << i << " exited " << out.first << ":\n" << out.second);
  REQUIRE(out.first == 0);
  return out.second;
}

// The shared cluster file with the peer addresses of `dead` pointing at unused ports.
std::string cluster_file_without(process_cluster& c, const std::vector<size_t>& dead,
                                 const std::string& name) {
  auto text = read_file(c.dir() + "/cluster.txt");
  for (auto i : dead) {
    auto real = "127.0.0.1:" + std::to_string(c.ports(i).peer) + " ";
    auto pos = text.find(real);
    REQUIRE(pos != std::string::npos);
    text.replace(pos, real.size(), "127.0.0.1:" + std::to_string(free_port()) + " ");
  }
  auto path = c.dir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

void restart(process_cluster& c, size_t i, const std::string& file = {}) {
  c.node(i).signal(SIGTERM);
  REQUIRE(c.node(i).wait(10s) == 0);
  c.start(i, file);
  REQUIRE(c.wait_ready(i));
}

} // namespace

TEST_CASE("processes mesh N=3: counters, sets and hashes merge after a partition (redis-cli)") {
  process_cluster c(3, "mesh", {}, "batch");
  INFO(c.logs());
  cli(c, 0, "SADD tags x y\\nHSET ev title standup\\n");
  REQUIRE(c.wait_converged());

  // The cut: n2 on one side, n0 and n1 on the other.
  restart(c, 2, cluster_file_without(c, {0, 1}, "cut-n2.txt"));
  auto side = cluster_file_without(c, {2}, "cut-n01.txt");
  restart(c, 0, side);
  restart(c, 1, side);

  std::string incr;
  for (int k = 0; k < 300; ++k)
    incr += "INCRBY cnt 1\\n";
  for (size_t i = 0; i < 3; ++i)
    cli(c, i, incr);
  CHECK(cli(c, 2, "SREM tags x\\n") == "1\n"); // saw the first x
  CHECK(cli(c, 0, "SADD tags x\\n") == "0\n"); // already there here: a new tag all the same
  CHECK(cli(c, 0, "HSET ev start 9:00\\n") == "1\n");
  CHECK(cli(c, 2, "HSET ev room 4.01\\n") == "1\n");
  // The cut holds: each side sees only its own writes.
  CHECK(cli(c, 2, "GET cnt\\nSISMEMBER tags x\\n") == "300\n0\n");
  CHECK(cli(c, 1, "GET cnt\\n") == "600\n");

  for (size_t i = 0; i < 3; ++i)
    restart(c, i);
  REQUIRE(c.wait_converged(30s));
  for (size_t i = 0; i < 3; ++i) {
    INFO("node n" << i);
    CHECK(cli(c, i, "GET cnt\\nTYPE cnt\\n") == "900\nstring\n");
    CHECK(cli(c, i, "SMEMBERS tags\\n") == "x\ny\n");
    CHECK(cli(c, i, "HGETALL ev\\n") == "room\n4.01\nstart\n9:00\ntitle\nstandup\n");
    CHECK(cli(c, i, "INCR tags\\n") == "WRONGTYPE Operation against a key holding the wrong kind "
                                       "of value\n\n");
  }
}
