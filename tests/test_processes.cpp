// Integration: real mlr-node processes on loopback, talking TCP with Cap'n Proto framing.
// Each test starts its processes on ports picked at run time and stops them at the end,
// pass or fail.

#include "process_harness.hpp"
#include "raw_socket.hpp"

#include "core/replica_stats.hpp"
#include "messages/codec.hpp"
#include "transport/handshake.hpp"

#include <netinet/tcp.h>
#include <poll.h>

#include <atomic>
#include <random>

using namespace mlr;
using namespace mlr::testing;
using namespace std::chrono_literals;

namespace {

// Checks that node `i` still serves clients, and still replicates to node `other`.
void check_still_serving(process_cluster& c, size_t i, size_t other, const std::string& key) {
  auto conn = c.connect(i);
  REQUIRE(conn->put(key, "still-ok"));
  CHECK(eventually(
    [&] {
      auto g = c.connect(other)->get(key);
      return g && g->siblings == std::vector<std::string>{"still-ok"};
    },
    10s));
}

void check_convergence(const std::string& topology) {
  process_cluster c(3, topology);
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (size_t i = 0; i < 3; ++i)
    writers.emplace_back([&, i] {
      auto conn = client::connection::open(c.client_address(i));
      if (!conn) {
        ++failures;
        return;
      }
      for (int k = 0; k < 100; ++k) {
        auto key = k % 4 == 0 ? "shared-" + std::to_string(k % 8)
                              : "n" + std::to_string(i) + "-" + std::to_string(k);
        if (!(*conn)->put(key, "v" + std::to_string(k) + "@" + std::to_string(i)))
          ++failures;
      }
    });
  for (auto& w : writers)
    w.join();
  REQUIRE(failures == 0);
  INFO(c.logs());
  REQUIRE(c.wait_converged());
  size_t counters = 0;
  const core::replica_stats none;
  core::for_each_stat(none, [&](auto&&...) { ++counters; });
  for (size_t i = 0; i < 3; ++i) {
    auto s = *c.status(i);
    CHECK(s["applied_total"].get<uint64_t>() == 300);
    CHECK(s["stats"].size() == counters); // status shows every counter of the one table
    for (auto& p : s["peers"]) {
      CHECK(p["up"].get<bool>());
      CHECK(p["lag_events"].get<uint64_t>() == 0);
      CHECK(p["lag_seconds"].get<double>() == 0.0);
      CHECK(p["protocol_version"].get<int>() == 2);
    }
  }
  auto expected = c.connect(0)->get("shared-0");
  REQUIRE(expected);
  for (size_t i = 1; i < 3; ++i)
    CHECK(c.connect(i)->get("shared-0")->siblings == expected->siblings);
}

} // namespace

TEST_CASE("processes ring N=3: concurrent client writes at every node converge, zero lag") {
  check_convergence("ring");
}
TEST_CASE("processes star N=3: concurrent client writes at every node converge, zero lag") {
  check_convergence("star");
}
TEST_CASE("processes mesh N=3: concurrent client writes at every node converge, zero lag") {
  check_convergence("mesh");
}

TEST_CASE("processes mesh N=3: a node killed and restarted empty catches up, its writes spread") {
  process_cluster c(3, "mesh");
  auto a = c.connect(0);
  for (int k = 0; k < 200; ++k)
    REQUIRE(a->put("before-" + std::to_string(k), std::to_string(k)));
  REQUIRE(c.connect(1)->put("from-n1-old", "x"));
  REQUIRE(c.wait_converged());
  auto old_incarnation = (*c.status(1))["incarnation"];
  c.node(1).signal(SIGKILL);
  c.node(1).wait(5s);
  for (int k = 0; k < 50; ++k)
    REQUIRE(a->put("during-" + std::to_string(k), std::to_string(k)));
  c.start(1);
  REQUIRE(c.wait_ready(1));
  INFO(c.logs());
  REQUIRE(c.wait_converged());
  auto s = *c.status(1);
  CHECK(s["incarnation"] != old_incarnation); // empty restart: a new incarnation
  CHECK(s["applied_total"].get<uint64_t>() == 251);
  CHECK(c.connect(1)->get("from-n1-old")->siblings == std::vector<std::string>{"x"});
  REQUIRE(c.connect(1)->put("from-n1-new", "y"));
  for (size_t i : {0, 2})
    CHECK(eventually([&] { return c.connect(i)->get("from-n1-new")->siblings.size() == 1; }, 10s));
  CHECK(c.wait_converged());
}

TEST_CASE(
  "processes mesh N=3: a node paused with SIGSTOP converges after SIGCONT, losing nothing") {
  process_cluster c(3, "mesh");
  REQUIRE(c.connect(2)->put("before-pause", "kept"));
  c.node(2).signal(SIGSTOP);
  auto a = c.connect(0);
  auto b = c.connect(1);
  for (int k = 0; k < 60; ++k) {
    REQUIRE(a->put("a-" + std::to_string(k), "1"));
    REQUIRE(b->put("b-" + std::to_string(k), "2"));
    std::this_thread::sleep_for(50ms); // 3 s of writes while n2 is stopped
  }
  CHECK(eventually(
    [&] {
      auto s = c.status(0);
      for (auto& p : (*s)["peers"])
        if (p["id"] == "n2")
          return !p["up"].get<bool>();
      return false;
    },
    5s));
  c.node(2).signal(SIGCONT);
  INFO(c.logs());
  REQUIRE(c.wait_converged(30s));
  for (size_t i = 0; i < 3; ++i) {
    CHECK((*c.status(i))["applied_total"].get<uint64_t>() == 121);
    CHECK(c.connect(i)->get("before-pause")->siblings == std::vector<std::string>{"kept"});
  }
}

TEST_CASE("processes mesh N=3: with the TCP link n0 -> n1 cut, n0's writes reach n1 by pull") {
  process_cluster c(3, "mesh");
  // Restart n0 with a cluster file in which n1's address leads nowhere: n0 can never
  // send to n1, while every other direction works.
  auto text = read_file(c.dir() + "/cluster.txt");
  auto real = "127.0.0.1:" + std::to_string(c.ports(1).peer) + " ";
  auto pos = text.find(real);
  REQUIRE(pos != std::string::npos);
  text.replace(pos, real.size(), "127.0.0.1:" + std::to_string(free_port()) + " ");
  auto cut_file = c.dir() + "/cluster-n0-cut.txt";
  {
    std::ofstream f(cut_file);
    f << text;
  }
  c.node(0).signal(SIGKILL);
  c.node(0).wait(5s);
  c.start(0, cut_file);
  REQUIRE(c.wait_ready(0));
  auto a = c.connect(0);
  for (int k = 0; k < 20; ++k)
    REQUIRE(a->put("cut-" + std::to_string(k), std::to_string(k)));
  INFO(c.logs());
  CHECK(eventually(
    [&] {
      auto g = c.connect(1)->get("cut-19");
      return g && g->siblings == std::vector<std::string>{"19"};
    },
    15s));
  auto s1 = *c.status(1);
  CHECK(s1["stats"]["pulled_events"].get<uint64_t>() >= 20);
  auto s0 = *c.status(0);
  for (auto& p : s0["peers"])
    if (p["id"] == "n1")
      CHECK_FALSE(p["up"].get<bool>()); // the link really is cut
}

TEST_CASE("processes mesh N=2: redis-cli SET at A is read at B, redis-benchmark has no errors") {
  process_cluster c(2, "mesh");
  auto pa = std::to_string(c.ports(0).resp);
  auto pb = std::to_string(c.ports(1).resp);
  auto set = run_command({"/usr/bin/redis-cli", "-p", pa, "SET", "greeting", "hello"});
  CHECK(set.first == 0);
  CHECK(set.second.find("OK") != std::string::npos);
  CHECK(eventually(
    [&] {
      auto get = run_command({"/usr/bin/redis-cli", "-p", pb, "GET", "greeting"});
      return get.second == "hello\n";
    },
    10s));
  auto bench =
    run_command({"/usr/bin/redis-benchmark", "-p", pa, "-t", "set,get", "-n", "20000", "-q"}, 120s);
  INFO(bench.second);
  CHECK(bench.first == 0);
  CHECK(bench.second.find("SET: ") != std::string::npos);
  CHECK(bench.second.find("GET: ") != std::string::npos);
  CHECK(bench.second.find("ERR") == std::string::npos);
  auto dbsize = run_command({"/usr/bin/redis-cli", "-p", pb, "DBSIZE"});
  CHECK(eventually(
    [&] {
      return run_command({"/usr/bin/redis-cli", "-p", pb, "EXISTS", "greeting"}).second == "1\n";
    },
    5s));
  auto unknown = run_command({"/usr/bin/redis-cli", "-p", pa, "FLUSHALL"});
  CHECK(unknown.second.find("ERR unknown command") != std::string::npos);
  auto info = run_command({"/usr/bin/redis-cli", "-p", pa, "INFO"});
  CHECK(info.second.find("# Replication") != std::string::npos);
  CHECK(info.second.find("version_vector:") != std::string::npos);
  CHECK(c.wait_converged());
}

TEST_CASE("processes: every RESP command of the table answers as Redis does, wrong argument "
          "counts are named") {
  process_cluster c(1, "mesh");
  auto port = std::to_string(c.ports(0).resp);
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/redis-cli", "-p", port});
    return run_command(args).second;
  };
  CHECK(cli({"PING"}) == "PONG\n");
  CHECK(cli({"PING", "hi"}) == "hi\n");
  CHECK(cli({"SET", "k", "v", "EX", "10"}) == "ERR SET options (EX, PX, NX, XX, ...) are not "
                                              "supported\n\n");
  CHECK(cli({"SET", "k"}) == "ERR wrong number of arguments for 'SET' command\n\n");
  CHECK(cli({"MSET", "a", "1", "b", "2"}) == "OK\n");
  CHECK(cli({"MSET", "a"}) == "ERR wrong number of arguments for 'MSET' command\n\n");
  CHECK(cli({"MSET", "a", "1", "b"}) == "ERR wrong number of arguments for 'MSET' command\n\n");
  CHECK(cli({"MGET", "a", "b", "nope"}) == "1\n2\n\n");
  CHECK(cli({"EXISTS", "a", "b", "nope"}) == "2\n");
  CHECK(cli({"DEL", "a", "nope"}) == "1\n");
  CHECK(cli({"GET", "a"}) == "\n");
  CHECK(cli({"GET", "a", "b"}) == "ERR wrong number of arguments for 'GET' command\n\n");
  CHECK(cli({"DBSIZE"}) == "1\n");
  CHECK(cli({"CONFIG", "GET", "save"}) == "save\n\n");
  CHECK(cli({"CONFIG", "SET", "save", ""}) == "ERR only CONFIG GET is supported\n\n");
  CHECK(cli({"COMMAND"}) == "\n"); // an empty array
  CHECK(cli({"QUIT"}) == "OK\n");
  CHECK(cli({"flushall"}) == "ERR unknown command 'flushall'\n\n");
}

TEST_CASE(
  "processes mesh N=2 bad input: each is refused with a clear log line, node keeps serving") {
  process_cluster c(2, "mesh");
  auto& n0 = c.node(0);
  auto peer = c.ports(0).peer;
  auto log_has = [&](const std::string& what) {
    return eventually([&] { return n0.log().find(what) != std::string::npos; }, 5s);
  };

  SECTION("garbage bytes on the peer port") {
    raw_socket s(peer);
    s.send(garbage(256, 1));
    CHECK(s.closed_by_peer());
    CHECK(log_has("closing connection from 127.0.0.1"));
    check_still_serving(c, 0, 1, "after-garbage");
  }
  SECTION("a frame claiming 2^31 words") {
    raw_socket s(peer);
    std::string huge("\0\0\0\0\0\0\0\x80", 8); // one segment of 2^31 words
    s.send(huge);
    CHECK(s.closed_by_peer());
    CHECK(log_has("more than the limit"));
    check_still_serving(c, 0, 1, "after-huge");
  }
  SECTION("a wrong cluster secret") {
    raw_socket s(peer);
    auto h = hello_from("n1");
    s.send(messages::wire_kind::hello, messages::encode(h));
    REQUIRE(s.frame());     // header
    auto reply = s.frame(); // hello reply
    REQUIRE(reply);
    REQUIRE(messages::decode_hello_reply(*reply));
    s.send(messages::wire_kind::proof, messages::encode_proof(std::string(32, 'x')));
    CHECK(s.closed_by_peer());
    CHECK(log_has("wrong cluster name or secret"));
    check_still_serving(c, 0, 1, "after-secret");
  }
  SECTION("an unknown node id, with the right secret") {
    raw_socket s(peer);
    CHECK_FALSE(handshake_as(s, "intruder", "itest", "test-secret"));
    CHECK(s.closed_by_peer());
    CHECK(log_has("unknown node id 'intruder'"));
    check_still_serving(c, 0, 1, "after-unknown");
  }
  SECTION("an incompatible protocol range") {
    raw_socket s(peer);
    auto h = hello_from("n1");
    h.min_version = 5;
    h.max_version = 9;
    s.send(messages::wire_kind::hello, messages::encode(h));
    CHECK(s.closed_by_peer());
    CHECK(log_has("no common protocol version: this node speaks 2-2, the peer 5-9"));
    check_still_serving(c, 0, 1, "after-version");
  }
  SECTION("garbage on the client port") {
    raw_socket s(c.ports(0).client);
    s.send(garbage(300, 2));
    CHECK(s.closed_by_peer());
    CHECK(log_has("closing client connection from"));
    check_still_serving(c, 0, 1, "after-client-garbage");
  }
  SECTION("garbage on the RESP port") {
    raw_socket s(c.ports(0).resp);
    s.send(std::string("*zz\r\n"));
    CHECK(s.closed_by_peer());
    CHECK(log_has("closing RESP connection from"));
    auto ping = run_command({"/usr/bin/redis-cli", "-p", std::to_string(c.ports(0).resp), "PING"});
    CHECK(ping.second == "PONG\n");
    check_still_serving(c, 0, 1, "after-resp-garbage");
  }
  auto inbound = (*c.status(0))["inbound"];
  INFO(inbound.dump());
  CHECK(c.status(0).has_value());
}

TEST_CASE("processes: a batch captured off the wire decodes with the capnp tool") {
  // n0 is a real node; n1 is this test, speaking the protocol by hand on n1's port.
  auto dir = temp_dir();
  auto p0 = free_port(), p1 = free_port(), client0 = free_port();
  {
    std::ofstream cf(dir + "/cluster.txt");
    cf << "cluster itest\ntopology mesh\nnode n0 127.0.0.1:" << p0
       << " client=127.0.0.1:" << client0 << "\nnode n1 127.0.0.1:" << p1 << "\n";
    std::ofstream secret(dir + "/secret");
    secret << "wire-secret\n";
  }
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(p1);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  REQUIRE(::listen(listener, 4) == 0);
  auto node = process::start({MLR_NODE_BIN, "--id", "n0", "--cluster-file", dir + "/cluster.txt",
                              "--cluster-secret-file", dir + "/secret"},
                             dir + "/n0.log");
  pollfd pl{listener, POLLIN, 0};
  REQUIRE(::poll(&pl, 1, 10000) == 1);
  raw_socket s(::accept(listener, nullptr, nullptr));
  ::close(listener);
  // Handshake as the acceptor, with the real secret.
  auto hello_msg = s.message();
  REQUIRE(hello_msg);
  auto hello = messages::decode_hello(hello_msg->second);
  REQUIRE(hello);
  CHECK(hello->node_id == "n0");
  messages::hello_reply r;
  r.version = 2;
  r.nonce = actors::random_nonce();
  auto challenge = messages::encode(r);
  s.send(messages::wire_kind::hello_reply, challenge);
  auto t = actors::transcript(hello_msg->second, challenge);
  auto proof_msg = s.message();
  REQUIRE(proof_msg);
  auto proof = messages::decode_proof(proof_msg->second);
  REQUIRE(proof);
  CHECK(actors::same_proof(*proof, actors::dialer_proof("wire-secret", "itest", t)));
  messages::welcome w;
  w.node_id = "n1";
  w.incarnation = 7;
  w.proof = actors::acceptor_proof("wire-secret", "itest", t, *proof, actors::welcome_fields(w));
  s.send(messages::wire_kind::welcome, messages::encode(w));
  // A write at n0 comes to n1 as a batch.
  REQUIRE(eventually(
    [&] {
      return static_cast<bool>(client::connection::open("127.0.0.1:" + std::to_string(client0)));
    },
    10s));
  auto conn = client::connection::open("127.0.0.1:" + std::to_string(client0));
  REQUIRE((*conn)->put("wire-key", "wire-value"));
  std::optional<messages::frame> batch;
  for (int i = 0; i < 50 && !batch; ++i) {
    auto h = s.frame();
    REQUIRE(h);
    auto header = messages::decode_header(*h);
    REQUIRE(header);
    auto payload = s.frame();
    REQUIRE(payload);
    if (header->kind == messages::wire_kind::batch)
      batch = payload;
  }
  REQUIRE(batch);
  auto bin = dir + "/batch.bin";
  {
    std::ofstream out(bin, std::ios::binary);
    out.write(reinterpret_cast<const char*>(batch->bytes.data()),
              static_cast<std::streamsize>(batch->bytes.size()));
  }
  auto decoded =
    run_command({"/bin/sh", "-c", "capnp decode --short " MLR_SCHEMA " EventBatch < " + bin});
  INFO(decoded.second);
  CHECK(decoded.first == 0);
  CHECK(decoded.second.find("key = \"wire-key\"") != std::string::npos);
  CHECK(decoded.second.find("put = \"wire-value\"") != std::string::npos);
  CHECK(decoded.second.find("counter = 1") != std::string::npos);
}

TEST_CASE("processes: bad flags and broken files are named, with a non-zero exit") {
  auto dir = temp_dir();
  auto run_node = [&](std::vector<std::string> args) {
    args.insert(args.begin(), MLR_NODE_BIN);
    return run_command(args, 20s);
  };
  auto bogus = run_node({"--id", "n0", "--listen", "127.0.0.1:1", "--bogus-flag"});
  CHECK(bogus.first == 2);
  CHECK(bogus.second.find("unrecognised option '--bogus-flag'") != std::string::npos);
  auto port = run_node({"--id", "n0", "--listen", "127.0.0.1:99999"});
  CHECK(port.first == 2);
  CHECK(port.second.find("'99999' in '127.0.0.1:99999' is not a port number") != std::string::npos);
  {
    std::ofstream f(dir + "/broken.txt");
    f << "cluster x\nnode n0 127.0.0.1:7000\nnodes n1 127.0.0.1:7001\n";
  }
  auto broken = run_node({"--id", "n0", "--cluster-file", dir + "/broken.txt"});
  CHECK(broken.first == 2);
  CHECK(broken.second.find("line 3: unknown statement 'nodes'") != std::string::npos);
  auto missing = run_node({"--id", "n0", "--cluster-file", dir + "/nope.txt"});
  CHECK(missing.first == 2);
  CHECK(missing.second.find("cannot read cluster file") != std::string::npos);
  auto ring = run_node({"--id", "a", "--listen", "127.0.0.1:1", "--peer", "b=127.0.0.1:2",
                        "--topology", dir + "/nope.topo"});
  CHECK(ring.first == 2);
  CHECK(ring.second.find("no readable edge-list file") != std::string::npos);
  {
    // A port in use is a failure to start (status 1), not bad flags (2).
    int busy = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    auto taken = free_port();
    a.sin_port = htons(taken);
    REQUIRE(::bind(busy, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    REQUIRE(::listen(busy, 1) == 0);
    auto in_use = run_node({"--id", "n0", "--listen", "127.0.0.1:" + std::to_string(taken)});
    ::close(busy);
    CHECK(in_use.first == 1);
    CHECK(in_use.second.find(std::to_string(taken)) != std::string::npos);
  }
  auto help = run_node({"--help"});
  CHECK(help.first == 0);
  CHECK(help.second.find("--cluster-secret-file") != std::string::npos);
  CHECK(help.second.find("scheduler.") == std::string::npos); // CAF's options stay out
}

TEST_CASE("processes mesh N=2: SIGTERM stops a node cleanly, links flushed") {
  process_cluster c(2, "mesh");
  REQUIRE(c.connect(0)->put("k", "v"));
  c.node(0).signal(SIGTERM);
  CHECK(c.node(0).wait(10s) == 0);
  auto log = read_file(c.dir() + "/n0.log");
  CHECK(log.find("stopping on SIGTERM") != std::string::npos);
  CHECK(log.find("links flushed") != std::string::npos);
  CHECK(c.connect(1)->get("k")->siblings == std::vector<std::string>{"v"});
}

TEST_CASE("mlr topology check: star:5 names the hub, ring:5 every node, mesh:5 none, "
          "a disconnected file is refused") {
  auto star = run_command({MLR_CLI_BIN, "topology", "check", "star:5"});
  CHECK(star.first == 0);
  CHECK(star.second.find("single points of failure (nodes): n0\n") != std::string::npos);
  auto ring = run_command({MLR_CLI_BIN, "topology", "check", "ring:5"});
  CHECK(ring.second.find("single points of failure (nodes): n0, n1, n2, n3, n4\n") !=
        std::string::npos);
  CHECK(ring.second.find("diameter: 4 hops") != std::string::npos);
  auto mesh = run_command({MLR_CLI_BIN, "topology", "check", "mesh:5"});
  CHECK(mesh.second.find("single points of failure (nodes): none") != std::string::npos);
  CHECK(mesh.second.find("messages per write: 4") != std::string::npos);
  auto dir = temp_dir();
  {
    std::ofstream f(dir + "/split.txt");
    f << "a <-> b\nc <-> d\n";
  }
  auto split = run_command({MLR_CLI_BIN, "topology", "check", dir + "/split.txt"});
  CHECK(split.first == 1);
  CHECK(split.second.find("cannot reach c, d") != std::string::npos);
}
