// mlr-node: one leader per process, replicating over TCP to the other nodes of its cluster.
// See `mlr-node --help`. Exit status: 0 after a clean stop (SIGTERM or SIGINT), 2 on bad
// flags or files, 1 when the node cannot start (a port in use, ...), 3 when its leader
// stopped while running (the log says why). The node itself is node/node.hpp; this file
// parses flags and handles signals.

#include "core/replica.hpp"
#include "node/node.hpp"
#include "node_options.hpp"

#include <boost/program_options.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <signal.h>
#include <thread>
#include <unistd.h>

namespace po = boost::program_options;
using namespace mlr;
using apps::bad_input;
using apps::make_options;
using apps::node_options;

namespace {

// Why an essential actor stopped (the leader or a resolver); set before SIGUSR1 is raised.
std::mutex fatal_mutex;
std::string fatal_reason;

// What --fault installs, so tests can see what the process does when its leader dies
// (it throws when a write to `key` is applied) or stalls (it sleeps 11 s first, longer
// than the gateways wait).
class fault_on_key : public core::replica_observer {
public:
  fault_on_key(std::string key, bool stall) : key_(std::move(key)), stall_(stall) {}
  void on_apply(messages::node_index, const messages::event& e, bool) override {
    if (e.key != key_)
      return;
    if (stall_)
      std::this_thread::sleep_for(std::chrono::seconds(11));
    else
      throw std::runtime_error("fault injected by --fault: a write to '" + key_ + "'");
  }
  void on_handled(const core::replica&) override {}

private:
  std::string key_;
  bool stall_;
};

// The flags, then a --config file's (flags win). Only CAF's own options pass through
// unrecognised (e.g. --scheduler.max-throughput=...); any other is a typo to hear about.
std::optional<std::string> parse(int argc, char** argv, const po::options_description& desc,
                                 po::variables_map& vm, std::vector<std::string>& caf_args) {
  try {
    auto parsed = po::command_line_parser(argc, argv).options(desc).allow_unregistered().run();
    po::store(parsed, vm);
    for (auto& u : po::collect_unrecognized(parsed.options, po::exclude_positional)) {
      if (u.rfind("--scheduler.", 0) == 0 || u.rfind("--middleman.", 0) == 0 ||
          u.rfind("--stream.", 0) == 0)
        caf_args.push_back(u);
      else
        return "unrecognised option '" + u + "'";
    }
    if (vm.count("config")) {
      std::ifstream cf(vm["config"].as<std::string>());
      if (!cf)
        return "cannot read config file '" + vm["config"].as<std::string>() + "'";
      po::store(po::parse_config_file(cf, desc), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

// --fault: what the leader does when a key is written (tests of a dying or stalled leader).
std::optional<std::string> install_fault(const std::string& fault, node::node_options& n) {
  if (fault.empty())
    return std::nullopt;
  const std::string throws = "leader-throws-on-key:", stalls = "leader-stalls-on-key:";
  bool stall = fault.rfind(stalls, 0) == 0;
  if (!stall && fault.rfind(throws, 0) != 0)
    return "--fault must be leader-throws-on-key:KEY or leader-stalls-on-key:KEY, got '" + fault +
           "'";
  auto key = fault.substr((stall ? stalls : throws).size());
  n.observer = std::make_shared<fault_on_key>(key, stall);
  spdlog::warn("fault injection on: the leader {} when '{}' is written",
               stall ? "stalls for 11 s" : "throws", key);
  return std::nullopt;
}

} // namespace

int main(int argc, char** argv) {
  node_options o;
  auto desc = make_options(o);
  po::variables_map vm;
  std::vector<std::string> caf_args;
  if (auto err = parse(argc, argv, desc, vm, caf_args))
    return bad_input(*err);
  if (vm.count("help")) {
    std::cout << desc
              << "\nExample (three nodes on one machine):\n"
                 "  mlr-node --id n0 --listen 127.0.0.1:7000 --peer n1=127.0.0.1:7001 "
                 "--peer n2=127.0.0.1:7002 --client-listen 127.0.0.1:7100\n";
    return 0;
  }
  auto level = spdlog::level::from_str(o.log_level);
  if (level == spdlog::level::off && o.log_level != "off")
    return bad_input("--log-level must be trace, debug, info, warn, error or off");
  spdlog::set_default_logger(spdlog::stderr_color_mt("mlr"));
  spdlog::set_level(level);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [" + (o.id.empty() ? "?" : o.id) + "] %v");
  auto n = apps::to_node_options(o, vm);
  if (!n)
    return bad_input(n.err().message);
  n->caf_args = caf_args;
  n->log = [](const std::string& level, const std::string& line) {
    spdlog::log(spdlog::level::from_str(level), "{}", line);
  };
  if (auto err = install_fault(o.fault, *n))
    return bad_input(*err);
  // A node whose leader stopped must not go on listening while every request fails: the
  // process exits non-zero with the reason, so a supervisor (systemd, Kubernetes) restarts
  // it, from its data directory when it has one.
  n->on_failure = [](const std::string& what) {
    {
      std::lock_guard<std::mutex> guard(fatal_mutex);
      fatal_reason = what;
    }
    ::kill(::getpid(), SIGUSR1);
  };
  // Block the stop signals before CAF starts threads, so only sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGUSR1); // an essential actor stopped (on_failure)
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  auto members = n->members.size();
  auto started = node::node::start(std::move(*n));
  if (!started) {
    auto& e = started.err();
    if (e.code == errc::invalid_argument || e.code == errc::bad_topology)
      return bad_input(e.message);
    spdlog::error("{}", e.message);
    return 1;
  }
  auto& node = **started;
  spdlog::info("node {} of cluster '{}' ({} nodes, topology {}, resolver {}) listening: {}", o.id,
               o.cluster, members, o.topology, o.resolver, node.where());
  int sig = 0;
  sigwait(&stop_signals, &sig);
  if (sig == SIGUSR1) {
    std::lock_guard<std::mutex> guard(fatal_mutex);
    spdlog::critical("{}; exiting (status 3) instead of serving requests that would all fail; "
                     "restart the node (from its data directory, if it has one)",
                     fatal_reason);
    node.stop(std::chrono::milliseconds(0));
    return 3;
  }
  spdlog::info("stopping on {}: flushing links", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  node.stop(std::chrono::seconds(2));
  return 0;
}
