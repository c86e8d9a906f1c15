// Clients and admins authenticate (issue "Replies never reach the wrong client; clients and
// admins authenticate ..."): a node started with a client secret serves nothing before it
// (RESP: AUTH and HELLO 3 AUTH, as redis-cli, redis-benchmark and hiredis send them; the
// mlr CLI: --secret-file or MLR_SECRET); topology changes need a distinct admin secret and
// are logged with who made them; without a client secret a node listens on loopback only.

#include "process_harness.hpp"
#include "raw_socket.hpp"

#include <fstream>

using namespace mlr;
using namespace mlr::testing;
using namespace std::chrono_literals;

namespace {

std::string write_file(const std::string& dir, const std::string& name, const std::string& text) {
  auto path = dir + "/" + name;
  std::ofstream(path) << text << "\n";
  return path;
}

std::string redis_cli(uint16_t port, std::vector<std::string> args) {
  args.insert(args.begin(), {"/usr/bin/redis-cli", "-p", std::to_string(port)});
  return run_command(args).second;
}

} // namespace

TEST_CASE("client auth: with --client-secret-file, RESP and native clients must authenticate "
          "first, redis-cli -a, redis-benchmark -a, HELLO 3 AUTH and mlr --secret-file work") {
  auto dir = temp_dir();
  auto secret = write_file(dir, "client-secret", "s3cret-for-clients");
  process_cluster c(2, "mesh", {"--client-secret-file", secret});
  auto resp = c.ports(0).resp;
  CHECK(redis_cli(resp, {"SET", "k", "v"}).find("NOAUTH Authentication required.") !=
        std::string::npos);
  CHECK(redis_cli(resp, {"-a", "wrong", "--no-auth-warning", "SET", "k", "v"}).find("WRONGPASS") !=
        std::string::npos);
  CHECK(redis_cli(resp, {"-a", "s3cret-for-clients", "--no-auth-warning", "SET", "k", "v"}) ==
        "OK\n");
  CHECK(eventually(
    [&] {
      return redis_cli(c.ports(1).resp,
                       {"-a", "s3cret-for-clients", "--no-auth-warning", "GET", "k"}) == "v\n";
    },
    10s));
  auto bench = run_command({"/usr/bin/redis-benchmark", "-p", std::to_string(resp), "-a",
                            "s3cret-for-clients", "-t", "set,get", "-n", "5000", "-q"},
                           120s);
  INFO(bench.second);
  CHECK(bench.first == 0);
  CHECK(bench.second.find("SET: ") != std::string::npos);
  CHECK(bench.second.find("NOAUTH") == std::string::npos);
  // HELLO 3 AUTH (RESP3, as newer clients send it): a map, then RESP3 nulls.
  {
    raw_socket s(resp);
    s.send("*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$18\r\ns3cret-for-"
           "clients\r\n");
    auto hello = s.read_some(2s, 20);
    CHECK(hello.rfind("%7\r\n", 0) == 0);
    CHECK(hello.find("proto") != std::string::npos);
    s.send("*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n");
    CHECK(s.read_some(2s, 3) == "_\r\n");
  }
  // Native: refused before auth, served after; the CLI reads the secret from a file or
  // from MLR_SECRET.
  {
    auto opened = client::connection::open(c.client_address(0));
    REQUIRE(opened);
    auto& conn = *opened;
    auto r = conn->put("n", "1");
    REQUIRE_FALSE(r);
    CHECK(r.err().message.find("authentication required") != std::string::npos);
    CHECK(r.err().code == errc::unauthenticated); // what to do: authenticate
    auto wrong = conn->auth("nope");
    REQUIRE_FALSE(wrong);
    CHECK(wrong.err().code == errc::unauthenticated);
    REQUIRE(conn->auth("s3cret-for-clients"));
    CHECK(conn->put("n", "1"));
  }
  auto cli =
    run_command({MLR_CLI_BIN, "--node", c.client_address(0), "--secret-file", secret, "get", "n"});
  CHECK(cli.first == 0);
  CHECK(cli.second.rfind("1\n", 0) == 0);
  auto refused = run_command({MLR_CLI_BIN, "--node", c.client_address(0), "get", "n"});
  CHECK(refused.first == 1);
  CHECK(refused.second.find("authentication required") != std::string::npos);
  auto env = run_command({"/usr/bin/env", "MLR_SECRET=s3cret-for-clients", MLR_CLI_BIN, "--node",
                          c.client_address(0), "get", "n"});
  CHECK(env.first == 0);
}

TEST_CASE("admin auth: topology set needs the admin secret, distinct from the client secret, "
          "and every change is logged with who made it") {
  auto dir = temp_dir();
  auto secret = write_file(dir, "client-secret", "data-secret");
  process_cluster c(3, "ring", {"--client-secret-file", secret});
  auto as_client = run_command({MLR_CLI_BIN, "--node", c.client_address(0), "--secret-file", secret,
                                "topology", "set", "mesh"});
  CHECK(as_client.first == 1);
  CHECK(as_client.second.find("topology changes need the admin secret") != std::string::npos);
  auto wrong = write_file(dir, "wrong-admin", "not-it");
  auto bad = run_command({MLR_CLI_BIN, "--node", c.client_address(0), "--admin-secret-file", wrong,
                          "topology", "set", "mesh"});
  CHECK(bad.first == 1);
  CHECK(bad.second.find("wrong secret") != std::string::npos);
  auto ok = run_command({MLR_CLI_BIN, "--node", c.client_address(0), "--admin-secret-file",
                         c.admin_secret_file(), "topology", "set", "mesh"});
  INFO(ok.second);
  CHECK(ok.first == 0);
  CHECK(ok.second.rfind("epoch ", 0) == 0);
  CHECK(eventually(
    [&] {
      auto log = c.node(0).log();
      return log.find("topology set by admin client 127.0.0.1:") != std::string::npos &&
             log.find(": accepted, epoch ") != std::string::npos &&
             log.find("topology set refused: not authenticated as admin") != std::string::npos;
    },
    5s));
}

TEST_CASE("protected mode: without a client secret a node refuses to listen for clients beyond "
          "loopback, naming the flag that opens it, with the flag it starts") {
  auto dir = temp_dir();
  auto p0 = free_port();
  std::ofstream(dir + "/cluster.txt")
    << "cluster pm\ntopology mesh\nnode n0 127.0.0.1:" << p0 << "\n";
  auto open = run_command({MLR_NODE_BIN, "--id", "n0", "--cluster-file", dir + "/cluster.txt",
                           "--resp-listen", "0.0.0.0:" + std::to_string(free_port())});
  CHECK(open.first == 2);
  CHECK(open.second.find("without a secret: give client_secret (--client-secret-file FILE") !=
        std::string::npos);
  CHECK(open.second.find("(--allow-unauthenticated-clients) to open it deliberately") !=
        std::string::npos);
  auto port = free_port();
  auto node = process::start({MLR_NODE_BIN, "--id", "n0", "--cluster-file", dir + "/cluster.txt",
                              "--resp-listen", "0.0.0.0:" + std::to_string(port),
                              "--allow-unauthenticated-clients"},
                             dir + "/n0.log");
  CHECK(eventually([&] { return redis_cli(port, {"PING"}) == "PONG\n"; }, 10s));
  auto loop = process::start({MLR_NODE_BIN, "--id", "n0", "--cluster-file", dir + "/cluster.txt",
                              "--listen", "127.0.0.1:" + std::to_string(free_port()),
                              "--resp-listen", "127.0.0.1:" + std::to_string(free_port())},
                             dir + "/loop.log");
  CHECK(eventually(
    [&] {
      return read_file(dir + "/loop.log").find("serving loopback clients only (protected mode)") !=
             std::string::npos;
    },
    10s));
}

TEST_CASE("client auth: before AUTH a RESP client may send only small requests, requirepass in "
          "a --config file works like --client-secret-file") {
  auto dir = temp_dir();
  auto secret = write_file(dir, "client-secret", "small-first");
  process_cluster c(1, "mesh", {"--client-secret-file", secret});
  {
    raw_socket s(c.ports(0).resp);
    std::string eleven = "*11\r\n";
    for (int i = 0; i < 11; ++i)
      eleven += "$1\r\nx\r\n";
    s.send(eleven);
    auto got = s.read_some(3s, 10);
    CHECK(got.find("-ERR Protocol error: unauthenticated invalid multibulk length 11") == 0);
    CHECK(s.closed_by_peer());
  }
  {
    raw_socket s(c.ports(0).resp);
    s.send("*2\r\n$4\r\nAUTH\r\n$20000\r\n" + std::string(20000, 'a') + "\r\n");
    auto got = s.read_some(3s, 10);
    INFO(got);
    CHECK(got.find("-ERR Protocol error: bulk string of 20000 bytes is above 16384 bytes "
                   "(unauthenticated)") == 0);
  }
  // After AUTH the usual limits apply.
  CHECK(redis_cli(c.ports(0).resp, {"-a", "small-first", "--no-auth-warning", "SET", "big",
                                    std::string(100000, 'b')}) == "OK\n");
  // requirepass in a config file, on a non-loopback client address (allowed: it has a secret).
  auto p0 = free_port(), resp = free_port();
  std::ofstream(dir + "/cluster.txt")
    << "cluster rp\ntopology mesh\nnode n0 127.0.0.1:" << p0 << "\n";
  std::ofstream(dir + "/node.conf") << "requirepass = from-config\n";
  auto node =
    process::start({MLR_NODE_BIN, "--id", "n0", "--cluster-file", dir + "/cluster.txt", "--config",
                    dir + "/node.conf", "--resp-listen", "0.0.0.0:" + std::to_string(resp)},
                   dir + "/rp.log");
  CHECK(eventually(
    [&] {
      return redis_cli(resp, {"-a", "from-config", "--no-auth-warning", "PING"}) == "PONG\n";
    },
    10s));
  CHECK(redis_cli(resp, {"PING"}).find("NOAUTH") != std::string::npos);
}
