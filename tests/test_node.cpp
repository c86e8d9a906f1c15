// The embedding API (node/node.hpp) in process: a node started from options, its checks,
// its blocking API, and the logger it is given (nothing goes to a global logger).

#include "node/node.hpp"
#include "process_harness.hpp"

#include <mutex>

#include <catch2/catch.hpp>

using namespace mlr;
using namespace std::chrono_literals;

TEST_CASE("node: options are checked and named, lines go to the given logger, the blocking "
          "API writes and reads") {
  auto port = testing::free_port();
  node::node_options o;
  o.cluster = "embedded";
  o.id = "solo";
  o.members = {{"solo", "127.0.0.1:" + std::to_string(port)}};
  std::mutex m;
  std::vector<std::string> lines;
  o.log = [&](const std::string& level, const std::string& line) {
    std::lock_guard<std::mutex> guard(m);
    lines.push_back(level + " " + line);
  };
  {
    auto bad = o;
    bad.sync = "sometimes";
    auto r = node::node::start(bad);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == errc::invalid_argument);
    CHECK(r.err().message == "sync (--sync) must be always, batch or none, got 'sometimes'");
    bad = o;
    bad.id = "stranger";
    CHECK(node::node::start(bad).err().message == "node 'stranger' is not one of the members");
  }
  auto started = node::node::start(o);
  REQUIRE(started);
  auto& n = **started;
  CHECK(n.peer_port() == port);
  REQUIRE(n.put("k", "v"));
  auto got = n.get("k");
  REQUIRE(got);
  REQUIRE(got->siblings.size() == 1);
  CHECK(got->siblings[0].value == "v");
  REQUIRE(n.del("k"));
  CHECK(n.get("k")->siblings.empty());
  n.stop();
  std::lock_guard<std::mutex> guard(m);
  auto has = [&](const std::string& what) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(what) != std::string::npos; });
  };
  CHECK(
    has("warn no cluster secret: any process that can reach 127.0.0.1:" + std::to_string(port)));
  CHECK(has("info no admin secret"));
  CHECK(has("info links flushed"));
}
