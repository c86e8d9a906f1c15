// mlr-failover: what a node failure costs a ring or a star of 5 mlr-node processes on
// loopback. It starts the nodes, measures messages per write with everyone up, kills one
// node with SIGKILL (the ring's n3, the star's hub n0), then prints
//   - the time from the kill until a write taken after it at one side (ring: n2; star:
//     spoke n1) is visible on the other side (ring: n4; star: spoke n3): writes flowing
//     again;
//   - events shipped per write while the node is down, next to the figure with everyone up.
// Processes are stopped at the end. Extra arguments go to every mlr-node.
//
// `--failure stop` sends SIGSTOP instead: a hung node (or a partition), whose connections
// stay open, so peers notice only by missing acknowledgements and heartbeats.
//
//   mlr-failover --topology ring|star [--failure kill|stop] [--writes N]
//                [--node-flag=--FLAG=VALUE ...]

#include "client/native_client.hpp"

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

namespace po = boost::program_options;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

extern char** environ;

namespace {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

struct node {
  pid_t pid = -1;
  int client_port = 0;
  std::string client() const { return "127.0.0.1:" + std::to_string(client_port); }
};

std::optional<nlohmann::json> status(const node& n) {
  auto c = mlr::client::connection::open(n.client(), std::chrono::milliseconds(1000));
  if (!c)
    return std::nullopt;
  auto s = (*c)->status();
  if (!s)
    return std::nullopt;
  return nlohmann::json::parse(*s);
}

// Events all live nodes shipped so far (links and pull answers).
uint64_t events_sent(const std::vector<node>& nodes) {
  uint64_t total = 0;
  for (auto& n : nodes)
    if (n.pid > 0)
      if (auto s = status(n))
        total += (*s)["stats"]["events_sent"].get<uint64_t>();
  return total;
}

// Until every live node holds `total` events (or 30 s pass).
bool wait_applied(const std::vector<node>& nodes, uint64_t total) {
  auto deadline = clock_type::now() + 30s;
  while (clock_type::now() < deadline) {
    bool all = true;
    for (auto& n : nodes)
      if (n.pid > 0) {
        auto s = status(n);
        all &= s && (*s)["applied_total"].get<uint64_t>() >= total;
      }
    if (all)
      return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

} // namespace

int main(int argc, char** argv) {
  std::string topology = "ring";
  size_t writes = 1000;
  std::string node_bin;
  std::vector<std::string> passthrough;
  bool keep = false;
  std::string failure = "kill";
  po::options_description desc(
    "mlr-failover: kill a node of a 5-node ring or star, time until writes flow again\n\nOptions");
  desc.add_options()("help,h", "print this help")(
    "topology", po::value(&topology)->default_value(topology), "ring or star")(
    "failure", po::value(&failure)->default_value(failure),
    "kill (SIGKILL: connections close) or stop (SIGSTOP: a hung node, connections stay open)")(
    "writes", po::value(&writes)->default_value(writes),
    "writes for each messages-per-write figure (spread over the live nodes)")(
    "node", po::value(&node_bin), "path of mlr-node (default: next to this program)")(
    "node-flag", po::value(&passthrough)->composing(), "a flag for every mlr-node (repeat)")(
    "keep", po::bool_switch(&keep), "keep the nodes' logs (their directory is printed)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "mlr-failover: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  if (topology != "ring" && topology != "star") {
    std::cerr << "mlr-failover: --topology must be ring or star\n";
    return 2;
  }
  if (failure != "kill" && failure != "stop") {
    std::cerr << "mlr-failover: --failure must be kill or stop\n";
    return 2;
  }
  if (node_bin.empty())
    node_bin = (std::filesystem::canonical("/proc/self/exe").parent_path().parent_path() / "apps" /
                "mlr-node")
                 .string();
  auto dir =
    std::filesystem::temp_directory_path() / ("mlr-failover-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const size_t n = 5;
  std::vector<node> nodes(n);
  {
    std::ofstream cf(dir / "cluster.txt");
    cf << "cluster failover\ntopology " << topology << "\n";
    if (topology == "star")
      cf << "hub n0\nstandby-hubs n1\n";
    for (size_t i = 0; i < n; ++i) {
      nodes[i].client_port = free_port();
      cf << "node n" << i << " 127.0.0.1:" << free_port()
         << " client=127.0.0.1:" << nodes[i].client_port << "\n";
    }
  }
  for (size_t i = 0; i < n; ++i) {
    std::vector<std::string> args{node_bin,
                                  "--id",
                                  "n" + std::to_string(i),
                                  "--cluster-file",
                                  (dir / "cluster.txt").string(),
                                  "--log-level",
                                  "warn"};
    args.insert(args.end(), passthrough.begin(), passthrough.end());
    std::vector<char*> argv_c;
    for (auto& a : args)
      argv_c.push_back(a.data());
    argv_c.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    auto log = (dir / ("n" + std::to_string(i) + ".log")).string();
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (posix_spawn(&nodes[i].pid, node_bin.c_str(), &fa, nullptr, argv_c.data(), environ) != 0) {
      std::cerr << "mlr-failover: cannot start " << node_bin << "\n";
      return 1;
    }
    posix_spawn_file_actions_destroy(&fa);
  }
  auto stop_all = [&] {
    for (auto& x : nodes)
      if (x.pid > 0) {
        ::kill(x.pid, SIGTERM);
        ::waitpid(x.pid, nullptr, 0);
        x.pid = -1;
      }
    if (keep)
      std::printf("logs kept in %s\n", dir.c_str());
    else
      std::filesystem::remove_all(dir);
  };
  for (auto& x : nodes) {
    auto deadline = clock_type::now() + 10s;
    while (!status(x) && clock_type::now() < deadline)
      std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(500ms); // every peer connected

  std::vector<std::unique_ptr<mlr::client::connection>> conns(n);
  for (size_t i = 0; i < n; ++i) {
    auto c = mlr::client::connection::open(nodes[i].client());
    if (!c) {
      std::cerr << "mlr-failover: " << c.err().message << "\n";
      stop_all();
      return 1;
    }
    conns[i] = std::move(*c);
  }
  uint64_t total = 0;
  auto write_spread = [&](const std::string& tag, size_t count) {
    size_t i = 0;
    for (size_t k = 0; k < count; ++i) {
      auto at = i % n;
      if (nodes[at].pid <= 0)
        continue;
      if (conns[at]->put(tag + std::to_string(k), "v"))
        ++total;
      ++k;
    }
  };

  // Everyone up: events shipped per write.
  write_spread("warm-", 100);
  wait_applied(nodes, total);
  auto sent0 = events_sent(nodes);
  write_spread("up-", writes);
  wait_applied(nodes, total);
  double up_per_write = static_cast<double>(events_sent(nodes) - sent0) / writes;

  // The failure.
  size_t victim = topology == "ring" ? 3 : 0;
  size_t writer = topology == "ring" ? 2 : 1;
  size_t reader = topology == "ring" ? 4 : 3;
  pid_t stopped = -1;
  if (failure == "kill") {
    ::kill(nodes[victim].pid, SIGKILL);
    ::waitpid(nodes[victim].pid, nullptr, 0);
  } else {
    ::kill(nodes[victim].pid, SIGSTOP);
    stopped = nodes[victim].pid;
  }
  nodes[victim].pid = -1;
  auto before_kill = events_sent(nodes); // the survivors'
  conns[victim].reset();
  auto killed = clock_type::now();
  double flowing_ms = -1;
  for (int i = 0; clock_type::now() - killed < 30s; ++i) {
    auto key = "probe-" + std::to_string(i);
    if (conns[writer]->put(key, "v"))
      ++total;
    auto polled_until = clock_type::now() + 20ms;
    bool seen = false;
    while (!seen && clock_type::now() < polled_until) {
      auto got = conns[reader]->get(key);
      seen = got && !got->siblings.empty();
    }
    if (seen) {
      flowing_ms = std::chrono::duration<double, std::milli>(clock_type::now() - killed).count();
      break;
    }
  }
  wait_applied(nodes, total);
  auto sent1 = events_sent(nodes);
  write_spread("down-", writes);
  wait_applied(nodes, total);
  double down_per_write = static_cast<double>(events_sent(nodes) - sent1) / writes;
  std::printf("%s of %zu, n%zu %s: writes from n%zu visible at n%zu again after %.0f ms\n",
              topology.c_str(), n, victim, failure == "kill" ? "killed" : "stopped", writer, reader,
              flowing_ms);
  std::printf("events shipped per write: %.2f with every node up (minimum %zu), %.2f while n%zu "
              "is down (minimum %zu): %+.2f over the minimum; %llu events shipped by the "
              "survivors from the kill until writes flowed again\n",
              up_per_write, n - 1, down_per_write, victim, n - 2,
              down_per_write - static_cast<double>(n - 2),
              static_cast<unsigned long long>(sent1 - before_kill));
  if (stopped > 0) {
    ::kill(stopped, SIGKILL);
    ::waitpid(stopped, nullptr, 0);
  }
  stop_all();
  return flowing_ms < 0 ? 1 : 0;
}
