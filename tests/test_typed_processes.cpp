// Typed keys between real processes with real redis-cli clients: three mlr-node processes,
// one cut off from the other two (restarted from its data directory with a cluster file in
// which their addresses lead nowhere, and they with one in which its address does). During
// the cut every node takes 300 INCRBY, one side removes a set member that the other side
// adds again, and the two sides set different fields of one hash. After the heal every
// node shows the exact sum, the re-added member and both fields.

#include "process_harness.hpp"
#include "process_partition.hpp"
#include "raw_socket.hpp"

#include <csignal>
#include <fstream>

using namespace mlr;
using namespace mlr::testing;
using namespace std::chrono_literals;

TEST_CASE("processes mesh N=3: counters, sets and hashes merge after a partition (redis-cli)") {
  process_cluster c(3, "mesh", {}, "batch");
  INFO(c.logs());
  redis_cli(c, 0, "SADD tags x y\\nHSET ev title standup\\n");
  REQUIRE(c.wait_converged());

  cut_off_n2(c); // n2 on one side, n0 and n1 on the other

  std::string incr;
  for (int k = 0; k < 300; ++k)
    incr += "INCRBY cnt 1\\n";
  for (size_t i = 0; i < 3; ++i)
    redis_cli(c, i, incr);
  CHECK(redis_cli(c, 2, "SREM tags x\\n") == "1\n"); // saw the first x
  CHECK(redis_cli(c, 0, "SADD tags x\\n") == "0\n"); // already there here: a new tag all the same
  CHECK(redis_cli(c, 0, "HSET ev start 9:00\\n") == "1\n");
  CHECK(redis_cli(c, 2, "HSET ev room 4.01\\n") == "1\n");
  // The cut holds: each side sees only its own writes.
  CHECK(redis_cli(c, 2, "GET cnt\\nSISMEMBER tags x\\n") == "300\n0\n");
  CHECK(eventually([&] { return redis_cli(c, 1, "GET cnt\\n") == "600\n"; }, 10s)); // n0's reach n1

  for (size_t i = 0; i < 3; ++i)
    restart(c, i);
  REQUIRE(c.wait_converged(30s));
  for (size_t i = 0; i < 3; ++i) {
    INFO("node n" << i);
    CHECK(redis_cli(c, i, "GET cnt\\nTYPE cnt\\n") == "900\nstring\n");
    CHECK(redis_cli(c, i, "SMEMBERS tags\\n") == "x\ny\n");
    CHECK(redis_cli(c, i, "HGETALL ev\\n") == "room\n4.01\nstart\n9:00\ntitle\nstandup\n");
    CHECK(redis_cli(c, i, "INCR tags\\n") ==
          "WRONGTYPE Operation against a key holding the wrong kind "
          "of value\n\n");
  }
}

TEST_CASE("processes mesh N=2: the mlr CLI and the native protocol speak counters, sets and maps") {
  process_cluster c(2, "mesh");
  INFO(c.logs());
  auto mlr = [&](size_t i, std::vector<std::string> args) {
    args.insert(args.begin(), {MLR_CLI_BIN, "--node", c.client_address(i)});
    return run_command(args);
  };
  CHECK(mlr(0, {"incr", "likes", "5"}) == std::make_pair(0, std::string("5\n")));
  CHECK(mlr(1, {"incr", "likes"}).first == 0);
  CHECK(mlr(0, {"sadd", "cart", "apples"}) == std::make_pair(0, std::string("1\n")));
  CHECK(mlr(1, {"hset", "event", "title", "standup"}) == std::make_pair(0, std::string("1\n")));
  CHECK(mlr(1, {"hincr", "event", "seats", "--", "-2"}) == std::make_pair(0, std::string("-2\n")));
  CHECK(eventually(
    [&] {
      return mlr(0, {"read", "likes"}).second == "type: counter\n6\n" &&
             mlr(1, {"read", "cart"}).second == "type: set\napples\n" &&
             mlr(0, {"read", "event"}).second == "type: hash\nseats=-2\ntitle=standup\n";
    },
    10s));
  auto wrong = mlr(0, {"incr", "cart"});
  CHECK(wrong.first == 1);
  CHECK(wrong.second.find("WRONGTYPE") != std::string::npos);
  CHECK(mlr(0, {"incr", "likes", "ten"}).first == 2); // usage: not an integer
  CHECK(mlr(0, {"get", "likes"}).second.rfind("6\n", 0) == 0);
  CHECK(mlr(0, {"read", "nothing"}) == std::make_pair(1, std::string("type: none\n")));

  // The native protocol refuses an operation a client may not send (clear): the node
  // closes that connection, saying why in its log, and goes on serving.
  auto conn = c.connect(0);
  CHECK_FALSE(conn->typed(messages::op_kind::clear, "cart", {}));
  CHECK(eventually([&] { return c.node(0).log().find("send 2 incr") != std::string::npos; }, 5s));
  auto again = c.connect(0)->typed(messages::op_kind::incr, "likes", {}, {}, 4);
  REQUIRE(again);
  CHECK(*again == 10);
}

TEST_CASE("processes mesh N=3 --resolver tags: concurrent SETs during a cut merge into the "
          "union of their tags at every node (redis-cli)") {
  process_cluster c(3, "mesh", {"--resolver", "tags"}, "batch");
  INFO(c.logs());
  redis_cli(c, 0, "SET labels base\\n");
  REQUIRE(c.wait_converged());
  cut_off_n2(c);
  CHECK(redis_cli(c, 0, "SET labels base,red\\n") == "OK\n");
  CHECK(redis_cli(c, 2, "SET labels sale,base\\n") == "OK\n");
  CHECK(redis_cli(c, 2, "GET labels\\n") == "sale,base\n"); // each side its own during the cut
  for (size_t i = 0; i < 3; ++i)
    restart(c, i);
  REQUIRE(c.wait_converged(30s));
  for (size_t i = 0; i < 3; ++i) {
    INFO("node n" << i);
    CHECK(eventually([&] { return redis_cli(c, i, "GET labels\\n") == "base,red,sale\n"; }, 10s));
  }
  CHECK(redis_cli(c, 1, "SET labels done\\n") == "OK\n"); // a write that saw the merge replaces it
  for (size_t i = 0; i < 3; ++i)
    CHECK(eventually([&] { return redis_cli(c, i, "GET labels\\n") == "done\n"; }, 10s));
}

TEST_CASE("processes mesh N=2: Redis keyspace notifications reach a redis-cli subscriber, for "
          "local and remote changes, in apply order") {
  process_cluster c(2, "mesh");
  INFO(c.logs());
  auto port = std::to_string(c.ports(1).resp);
  auto out = c.dir() + "/subscriber.txt";
  auto sub = process::start(
    {"/usr/bin/redis-cli", "-p", port, "PSUBSCRIBE", "__keyspace@0__:cart*", "__keyevent@0__:del"},
    out);
  REQUIRE(eventually(
    [&] { return read_file(out).find("__keyevent@0__:del\n2\n") != std::string::npos; }, 10s));
  redis_cli(
    c, 0, "SET cart:1 apples\\nSADD cart:2 pears\\nINCRBY cart:3 4\\nSET other x\\nDEL cart:1\\n");
  // n1 applies n0's changes (remote) before its own HSET (local): wait until it has them.
  REQUIRE(
    eventually([&] { return redis_cli(c, 1, "GET cart:3\\nEXISTS cart:1\\n") == "4\n0\n"; }, 10s));
  redis_cli(c, 1, "HSET cart:4 size L\\n");
  auto want = std::string("pmessage\n__keyspace@0__:cart*\n__keyspace@0__:cart:1\nset\n") +
              "pmessage\n__keyspace@0__:cart*\n__keyspace@0__:cart:2\nsadd\n" +
              "pmessage\n__keyspace@0__:cart*\n__keyspace@0__:cart:3\nincrby\n" +
              "pmessage\n__keyspace@0__:cart*\n__keyspace@0__:cart:1\ndel\n" +
              "pmessage\n__keyevent@0__:del\n__keyevent@0__:del\ncart:1\n" +
              "pmessage\n__keyspace@0__:cart*\n__keyspace@0__:cart:4\nhset\n";
  CHECK(eventually([&] { return read_file(out).find(want) != std::string::npos; }, 10s));
  INFO(read_file(out));
  CHECK(read_file(out).find("other") == std::string::npos);
  // A subscribed connection may only (un)subscribe, ping or quit.
  raw_socket raw(c.ports(1).resp);
  auto command = [](std::vector<std::string> args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (auto& a : args)
      out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
    return out;
  };
  raw.send(command({"SUBSCRIBE", "__keyspace@0__:x"}) + command({"GET", "x"}) + command({"PING"}) +
           command({"UNSUBSCRIBE"}) + command({"GET", "x"}));
  auto expected = std::string("*3\r\n$9\r\nsubscribe\r\n$16\r\n__keyspace@0__:x\r\n:1\r\n") +
                  "-ERR Can't execute 'GET': only (P)SUBSCRIBE / (P)UNSUBSCRIBE / PING / QUIT "
                  "are allowed in this context\r\n" +
                  "*2\r\n$4\r\npong\r\n$0\r\n\r\n" +
                  "*3\r\n$11\r\nunsubscribe\r\n$16\r\n__keyspace@0__:x\r\n:0\r\n" +
                  "$-1\r\n"; // out of subscribed mode: GET works again
  CHECK(raw.read_some(5s, expected.size()) == expected);
  sub.signal(SIGTERM);
  sub.wait(5s);
}

TEST_CASE("processes mesh N=2: mlr watch-keys prints the changes under a prefix, remote ones "
          "included, over the native protocol") {
  process_cluster c(2, "mesh");
  INFO(c.logs());
  auto out = c.dir() + "/watch-keys.txt";
  auto watcher =
    process::start({MLR_CLI_BIN, "--node", c.client_address(1), "watch-keys", "cart:"}, out);
  // The subscription starts when the node has it: probe until the watcher shows a write.
  REQUIRE(eventually(
    [&] {
      redis_cli(c, 0, "SET cart:probe 1\\n");
      return read_file(out).find("set cart:probe = 1 (string, ") != std::string::npos;
    },
    10s));
  redis_cli(c, 0, "SET cart:1 apples\\nHINCRBY cart:2 seats 3\\nSET other x\\nSREM cart:9 none\\n");
  CHECK(eventually(
    [&] {
      auto text = read_file(out);
      auto a = text.find("set cart:1 = apples (string, ");
      auto b = text.find("hincrby cart:2 seats = 3 (hash, ");
      return a != std::string::npos && b != std::string::npos && a < b;
    },
    10s));
  INFO(read_file(out));
  CHECK(read_file(out).find("other") == std::string::npos);
  CHECK(watcher.running());
  watcher.signal(SIGTERM);
  watcher.wait(5s);

  // --count: the watcher exits 0 after that many changes.
  auto counted = c.dir() + "/watch-count.txt";
  auto two = process::start(
    {MLR_CLI_BIN, "--node", c.client_address(0), "watch-keys", "", "--count", "2"}, counted);
  REQUIRE(eventually(
    [&] {
      redis_cli(c, 1, "INCR n\\n");
      return !two.running();
    },
    10s));
  CHECK(two.wait(1s) == 0);
  auto lines = read_file(counted);
  CHECK(std::count(lines.begin(), lines.end(), '\n') == 2);

  // Seventeen pipelined watches on one connection: sixteen are taken, the last refused.
  raw_socket raw(c.ports(0).client);
  messages::client_request w;
  w.kind = messages::client_request::op::watch;
  w.key = "p";
  for (uint64_t id = 1; id <= 17; ++id)
    raw.send(messages::wire_kind::client_request, messages::encode(w), id);
  int watching = 0, refused = 0;
  for (int k = 0; k < 17; ++k) {
    auto m = raw.message(5s);
    REQUIRE(m);
    auto r = messages::decode_client_response(m->second);
    REQUIRE(r);
    watching += r->kind == messages::client_response::op::written && r->written == "watching";
    if (r->kind == messages::client_response::op::failure) {
      ++refused;
      CHECK(r->fail.message == "more than 16 watches on one connection; watch a shorter prefix");
    }
  }
  CHECK(watching == 16);
  CHECK(refused == 1);
}
