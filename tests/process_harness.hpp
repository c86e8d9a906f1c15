#pragma once
// Real mlr-node processes on loopback ports picked at run time, for integration tests.
// Every process is stopped when its owner goes away, pass or fail (SIGKILL as a last
// resort), and its log is kept in a temporary directory for the failure message.

#include "client/native_client.hpp"
#include "temp_dirs.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace mlr::testing {

/// A TCP port on 127.0.0.1 that was free a moment ago.
/// A loopback port nobody listens on, drawn below the kernel's ephemeral range (32768 and
/// up): a port the kernel handed out would be free again once closed, and a test running
/// beside this one (ctest -j2) could take it as the local port of an outgoing connection
/// before the node binds it.
inline uint16_t free_port() {
  static std::mt19937 rng(
    static_cast<uint32_t>(::getpid()) * 2654435761u ^
    static_cast<uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  for (int attempt = 0; attempt < 1000; ++attempt) {
    auto port = static_cast<uint16_t>(10000 + rng() % 22000);
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ::close(fd);
    // Never the same port twice in one test program: a cluster draws all its ports before
    // any node binds one.
    static std::set<uint16_t> handed_out;
    if (ok && handed_out.insert(port).second)
      return port;
  }
  FAIL("no free loopback port below 32000 after 1000 tries");
  return 0;
}

/// CPU seconds (user + system) process `pid` has used, from /proc.
inline double cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos)
    return 0;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14)
      utime = std::stoull(field);
    if (i == 15)
      stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

/// A size field of /proc/PID/status in KiB ("VmRSS:", "VmSize:").
inline uint64_t proc_status_kib(pid_t pid, const std::string& field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field, 0) == 0)
      return std::stoull(line.substr(field.size()));
  return 0;
}

/// True in the sanitizer build: ASan's allocator keeps freed memory in quarantine, so the
/// node's resident memory says nothing about what it holds; memory bounds are checked in
/// the Release build only.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool rss_meaningful = false;
#else
inline constexpr bool rss_meaningful = true;
#endif

/// Resident memory of process `pid` in KiB.
inline uint64_t rss_kib(pid_t pid) {
  return proc_status_kib(pid, "VmRSS:");
}

inline std::string temp_dir() {
  return temp_dirs::instance().make();
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

class process {
public:
  process() = default;
  process(const process&) = delete;
  process& operator=(const process&) = delete;
  process(process&& other) noexcept { *this = std::move(other); }
  process& operator=(process&& other) noexcept {
    std::swap(pid_, other.pid_);
    std::swap(log_, other.log_);
    return *this;
  }
  ~process() { kill_hard(); }

  /// Starts `args[0]` with its output (stdout and stderr) appended to `log`.
  static process start(const std::vector<std::string>& args, const std::string& log) {
    process p;
    p.log_ = log;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    // In the sanitizer build: CAF 0.17 leaves messages scheduled on its clock (pending
    // request timeouts, delayed sends) unreleased when an actor system shuts down, which
    // LeakSanitizer reports as indirect leaks when a node exits cleanly. Leak checking stays
    // on for the unit and simulation tests; it is off for the processes started here.
    std::vector<std::string> env_storage{"ASAN_OPTIONS=detect_leaks=0"};
    for (char** e = environ; *e; ++e)
      if (std::string(*e).rfind("ASAN_OPTIONS=", 0) != 0)
        env_storage.emplace_back(*e);
    std::vector<char*> env;
    for (auto& e : env_storage)
      env.push_back(const_cast<char*>(e.c_str()));
    env.push_back(nullptr);
    if (posix_spawn(&p.pid_, argv[0], &fa, nullptr, argv.data(), env.data()) != 0)
      p.pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    return p;
  }

  bool running() {
    if (pid_ <= 0)
      return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      pid_ = -1;
      return false;
    }
    return true;
  }

  void signal(int sig) {
    if (pid_ > 0)
      ::kill(pid_, sig);
  }

  /// Waits for the process to exit; returns its exit status, or -1 on timeout.
  int wait(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (running()) {
      if (std::chrono::steady_clock::now() > deadline)
        return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return exit_status_;
  }

  void kill_hard() {
    if (pid_ > 0) {
      ::kill(pid_, SIGCONT);
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  std::string log() const { return read_file(log_); }
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_; }

private:
  pid_t pid_ = -1;
  int exit_status_ = -1;
  std::string log_;
};

/// Runs a command to completion; returns (exit status, output).
inline std::pair<int, std::string>
run_command(const std::vector<std::string>& args,
            std::chrono::seconds timeout = std::chrono::seconds(60)) {
  auto dir = temp_dir();
  auto out = dir + "/out.txt";
  auto p = process::start(args, out);
  int status = p.wait(timeout);
  return {status, read_file(out)};
}

/// Polls `pred` every 50 ms until it holds or `timeout` passes.
template <class F> bool eventually(F pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

/// A node's `status --json`, asked at its client address, or nothing if it does not answer.
inline std::optional<nlohmann::json> status_at(const std::string& client_address,
                                               const std::string& secret = {}) {
  auto c = client::connection::open(client_address, std::chrono::milliseconds(2000));
  if (!c)
    return std::nullopt;
  if (!secret.empty() && !(*c)->auth(secret))
    return std::nullopt;
  auto s = (*c)->status();
  if (!s)
    return std::nullopt;
  return nlohmann::json::parse(*s);
}

struct node_ports {
  uint16_t peer = 0;
  uint16_t client = 0;
  uint16_t resp = 0;
};

/// How many rounds a test repeating a race runs: all of them in the Release build, a fifth
/// under the sanitizers (ten times slower; the Release run of the same suite does them all).
inline int rounds(int full) {
#ifdef MLR_SANITIZED
  return std::max(full / 5, 1);
#else
  return full;
#endif
}

/// N mlr-node processes of one cluster, configured through a shared cluster file.
class process_cluster {
public:
  /// `sync`: empty for in-memory nodes, else every node gets a data directory and this
  /// --sync policy.
  process_cluster(size_t n, const std::string& topology, std::vector<std::string> extra = {},
                  std::string sync = {})
      : dir_(temp_dir()), extra_(std::move(extra)), sync_(std::move(sync)) {
    for (size_t a = 0; a + 1 < extra_.size(); ++a)
      if (extra_[a] == "--client-secret-file") {
        client_secret_ = read_file(extra_[a + 1]);
        while (!client_secret_.empty() && client_secret_.back() == '\n')
          client_secret_.pop_back();
      }
    {
      std::ofstream secret(dir_ + "/secret");
      secret << "test-secret\n";
      std::ofstream admin(dir_ + "/admin-secret");
      admin << "test-admin-secret\n";
    }
    std::ofstream cf(dir_ + "/cluster.txt");
    cf << "cluster itest\ntopology " << topology << "\n";
    for (size_t i = 0; i < n; ++i) {
      node_ports p{free_port(), free_port(), free_port()};
      ports_.push_back(p);
      cf << "node n" << i << " 127.0.0.1:" << p.peer << " client=127.0.0.1:" << p.client
         << " resp=127.0.0.1:" << p.resp << "\n";
    }
    cf.close();
    nodes_.resize(n);
    for (size_t i = 0; i < n; ++i)
      start(i);
    for (size_t i = 0; i < n; ++i)
      if (!wait_ready(i)) // say why (a port taken meanwhile, ...)
        FAIL("node " << i << " did not come up within 20 s:\n" << logs());
  }

  size_t size() const { return nodes_.size(); }
  const std::string& dir() const { return dir_; }
  const node_ports& ports(size_t i) const { return ports_[i]; }
  process& node(size_t i) { return nodes_[i]; }
  std::string client_address(size_t i) const {
    return "127.0.0.1:" + std::to_string(ports_[i].client);
  }

  /// Every node keeps its state in <dir>/n<i>.db with this --sync policy from now on.
  void use_data_dirs(const std::string& sync) { sync_ = sync; }
  std::string data_dir(size_t i) const { return dir_ + "/n" + std::to_string(i) + ".db"; }
  /// The admin secret every node was started with (for 'mlr --admin-secret-file').
  std::string admin_secret_file() const { return dir_ + "/admin-secret"; }

  /// (Re)starts node i (from its data directory, or empty), from the shared cluster file or
  /// another one.
  void start(size_t i, const std::string& cluster_file = {}) {
    std::vector<std::string> args{MLR_NODE_BIN,
                                  "--id",
                                  "n" + std::to_string(i),
                                  "--cluster-file",
                                  cluster_file.empty() ? dir_ + "/cluster.txt" : cluster_file,
                                  "--cluster-secret-file",
                                  dir_ + "/secret",
                                  "--admin-secret-file",
                                  dir_ + "/admin-secret",
                                  "--heartbeat-ms",
                                  "100",
                                  "--peer-timeout-ms",
                                  "1000",
                                  "--ack-timeout-ms",
                                  "500",
                                  "--pull-grace-ms",
                                  "300"};
    // A flag in `extra` replaces the default above.
    for (size_t a = 0; a < extra_.size(); ++a) {
      auto d = std::find(args.begin() + 5, args.end(), extra_[a]);
      if (d != args.end() && extra_[a].rfind("--", 0) == 0 && d + 1 != args.end())
        args.erase(d, d + 2);
    }
    args.insert(args.end(), extra_.begin(), extra_.end());
    if (!sync_.empty()) {
      args.insert(args.end(), {"--data-dir", data_dir(i), "--sync", sync_});
    }
    nodes_[i] = process::start(args, dir_ + "/n" + std::to_string(i) + ".log");
  }

  /// Waits until node i answers on its client port.
  bool wait_ready(size_t i) {
    return eventually([&] { return status(i).has_value(); }, std::chrono::seconds(20));
  }

  /// A client connection to node i, authenticated when the nodes take a client secret.
  std::unique_ptr<client::connection> connect(size_t i) {
    auto c = client::connection::open(client_address(i));
    if (!c)
      FAIL("cannot connect to node " << i << ": " << c.err().message << "\nlog:\n" << logs());
    if (!client_secret_.empty() && !(*c)->auth(client_secret_))
      FAIL("node " << i << " refused the client secret");
    return std::move(*c);
  }

  std::optional<nlohmann::json> status(size_t i) {
    return status_at(client_address(i), client_secret_);
  }

  /// Every node reachable, equal version vectors and digests, every peer up with zero lag.
  bool converged() {
    std::optional<nlohmann::json> first;
    for (size_t i = 0; i < size(); ++i) {
      auto s = status(i);
      if (!s)
        return false;
      for (auto& p : (*s)["peers"])
        if (!p["up"].get<bool>() || p["lag_events"].get<uint64_t>() != 0)
          return false;
      if ((*s)["stats"]["buffered"].get<uint64_t>() != 0)
        return false;
      if (!first)
        first = s;
      else if ((*s)["applied"] != (*first)["applied"] ||
               (*s)["state_digest"] != (*first)["state_digest"])
        return false;
    }
    return true;
  }

  bool wait_converged(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    return eventually([&] { return converged(); }, timeout);
  }

  std::string logs() const {
    std::string out;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      auto text = read_file(dir_ + "/n" + std::to_string(i) + ".log");
      if (text.size() > 4000)
        text = "..." + text.substr(text.size() - 4000);
      out += "--- n" + std::to_string(i) + " ---\n" + text;
    }
    return out;
  }

private:
  std::string dir_;
  std::vector<std::string> extra_;
  std::string sync_;
  std::string client_secret_; ///< from --client-secret-file in `extra`, if any
  std::vector<node_ports> ports_;
  std::vector<process> nodes_;
};

/// Pipes `commands` (printf syntax, "\\n" between them) into redis-cli at node `i`'s RESP port;
/// its output (a failed run fails the test, with the output).
inline std::string redis_cli(process_cluster& c, size_t i, const std::string& commands) {
  auto port = std::to_string(c.ports(i).resp);
  auto out =
    run_command({"/bin/sh", "-c", "printf '" + commands + "' | /usr/bin/redis-cli -p " + port});
  INFO("redis-cli at n" << i << " exited " << out.first << ":\n" << out.second);
  REQUIRE(out.first == 0);
  return out.second;
}

} // namespace mlr::testing
