// The README's embedding example (a notes service with its own API, built from the README at
// configure time) as two real processes, in one cluster with an mlr-node: what one program
// saves, the other program and the mlr-node read, and the other way round.

#include "process_harness.hpp"
#include "raw_socket.hpp"

#include <cstdlib>

#include <catch2/catch.hpp>

using namespace mlr;
using namespace mlr::testing;
using namespace std::chrono_literals;

namespace {

// One request line to a notes API port; its one answer line (empty if none came).
std::string ask(uint16_t port, const std::string& line) {
  raw_socket s(port);
  s.send(line + "\n");
  std::string answer;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (answer.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline)
    answer += s.read_some(500ms);
  return answer.substr(0, answer.find('\n'));
}

bool serving(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

} // namespace

TEST_CASE("embedding: two processes of the README's notes program and an mlr-node replicate "
          "to each other") {
  auto dir = temp_dir();
  std::ofstream(dir + "/secret") << "notes-cluster-secret\n";
  ::setenv("NOTES_SECRET", "notes-cluster-secret", 1);
  auto peer_a = free_port(), peer_b = free_port(), peer_n = free_port();
  auto api_a = free_port(), api_b = free_port(), client_n = free_port();
  auto addr = [](uint16_t p) { return "127.0.0.1:" + std::to_string(p); };
  std::vector<std::string> members{"a=" + addr(peer_a), "b=" + addr(peer_b), "n0=" + addr(peer_n)};
  auto notes = [&](const std::string& id, uint16_t api) {
    std::vector<std::string> args{MLR_NOTES_BIN, id, std::to_string(api)};
    args.insert(args.end(), members.begin(), members.end());
    return process::start(args, dir + "/" + id + ".log");
  };
  auto a = notes("a", api_a);
  auto b = notes("b", api_b);
  auto n0 =
    process::start({MLR_NODE_BIN, "--id", "n0", "--cluster", "notes", "--listen", addr(peer_n),
                    "--peer", members[0], "--peer", members[1], "--client-listen", addr(client_n),
                    "--cluster-secret-file", dir + "/secret"},
                   dir + "/n0.log");
  REQUIRE(eventually([&] { return serving(api_a) && serving(api_b) && serving(client_n); }, 20s));
  CHECK(eventually(
    [&] {
      return a.log().find("notes a: peers on 127.0.0.1:" + std::to_string(peer_a)) !=
             std::string::npos;
    },
    5s));

  CHECK(ask(api_a, "note groceries apples and pears") == "saved");
  CHECK(eventually([&] { return ask(api_b, "read groceries") == "apples and pears"; }, 10s));
  auto conn = client::connection::open(addr(client_n));
  REQUIRE(conn);
  CHECK(eventually(
    [&] {
      auto g = (*conn)->get("note:groceries");
      return g && g->siblings == std::vector<std::string>{"apples and pears"};
    },
    10s));
  REQUIRE((*conn)->put("note:todo", "written at the mlr-node"));
  CHECK(eventually([&] { return ask(api_a, "read todo") == "written at the mlr-node"; }, 10s));
  CHECK(ask(api_b, "note todo replaced at b") == "saved");
  CHECK(eventually([&] { return ask(api_a, "read todo") == "replaced at b"; }, 10s));
  CHECK(ask(api_a, "read nothing-here") == "(none)");
  // Both programs proved the cluster secret to the mlr-node; nothing was refused.
  INFO("a: " << a.log() << "\nb: " << b.log() << "\nn0: " << n0.log());
  CHECK(n0.log().find("accepted node a from") != std::string::npos);
  CHECK(n0.log().find("accepted node b from") != std::string::npos);
  CHECK(n0.log().find("refused connection") == std::string::npos);
}
