// mlr-demo: N leaders in one process, wired along a topology, writing concurrently (some
// to the same keys), then a per-node table and whether every replica converged.
// Exits 0 when converged, 1 when not, 2 on bad input.

#include "resolvers/resolver.hpp"
#include "topology/cluster.hpp"

#include <boost/program_options.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <random>
#include <thread>

namespace po = boost::program_options;
using namespace mlr;

namespace {

struct demo_options {
  std::string topology = "mesh";
  size_t nodes = 3;
  size_t writes = 1000;
  size_t shared_keys = 10;
  std::string resolver = "lww";
  std::string hub;
  uint64_t seed = 1;
  size_t timeout_s = 30;
};

int usage_error(const std::string& msg) {
  std::cerr << "mlr-demo: " << msg << "\nRun 'mlr-demo --help' for the options.\n";
  return 2;
}

std::string short_hex(uint64_t x) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

// Parses the command line into `o`; returns the exit status when there is nothing to run.
std::optional<int> parse(int argc, char** argv, demo_options& o) {
  po::options_description desc(
    "mlr-demo: runs N replicated leaders in one process. Every node writes concurrently,\n"
    "some writes to keys that all nodes share (so conflicts happen and the resolver decides);\n"
    "then it waits for replication, prints each node's state and 'converged: yes' or\n"
    "'converged: no'. Exit status: 0 converged, 1 not converged, 2 bad input.\n\nOptions");
  desc.add_options()("help,h", "print this help and exit")(
    "topology", po::value(&o.topology)->default_value(o.topology),
    "ring, star, mesh, or the path of an edge-list file (lines like 'a -> b', 'a <-> b', "
    "'nodes: a b c'; '#' comments)")(
    "nodes", po::value(&o.nodes)->default_value(o.nodes),
    "number of leaders for ring/star/mesh (1-256); ignored for a file")(
    "hub", po::value(&o.hub), "the hub of a star, by name (default: n0)")(
    "writes", po::value(&o.writes)->default_value(o.writes),
    "writes per node")("shared-keys", po::value(&o.shared_keys)->default_value(o.shared_keys),
                       "keys every node writes to (a third of all writes go to them); 0 for none")(
    "resolver", po::value(&o.resolver)->default_value(o.resolver),
    "lww (last writer wins), multi (keep siblings), max (largest number wins) or tags "
    "(merge comma-separated tags into their union)")(
    "seed", po::value(&o.seed)->default_value(o.seed), "seed for keys, values and incarnations")(
    "timeout", po::value(&o.timeout_s)->default_value(o.timeout_s),
    "seconds to wait for convergence");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return usage_error(e.what());
  }
  if (vm.count("help")) {
    std::cout << desc << "\nExample: mlr-demo --topology ring --nodes 5 --resolver multi\n";
    return 0;
  }
  if (o.nodes < 1 || o.nodes > 256)
    return usage_error("--nodes must be between 1 and 256, got " + std::to_string(o.nodes));
  if (!resolvers::builtin_resolver(o.resolver))
    return usage_error("--resolver must be lww, multi, max or tags, got '" + o.resolver + "'");
  return std::nullopt;
}

// One writer thread per node, so writes at different nodes are truly concurrent.
void write_everywhere(topology::cluster& c, const demo_options& o) {
  auto n = c.size();
  std::vector<std::thread> writers;
  std::vector<std::string> failures(n);
  for (size_t node = 0; node < n; ++node) {
    writers.emplace_back([&, node] {
      std::mt19937_64 rng(o.seed * 1000003 + node);
      for (size_t i = 0; i < o.writes; ++i) {
        bool shared = o.shared_keys > 0 && rng() % 3 == 0;
        auto key = shared ? "shared-" + std::to_string(rng() % o.shared_keys)
                          : c.topology().name(node) + "-" + std::to_string(i);
        auto value = std::to_string(rng() % 1000000);
        if (auto r = c.put(node, key, value); !r) {
          failures[node] = r.err().message;
          return;
        }
      }
    });
  }
  for (auto& w : writers)
    w.join();
  for (size_t node = 0; node < n; ++node)
    if (!failures[node].empty())
      std::cerr << "mlr-demo: a write at " << c.topology().name(node)
                << " failed: " << failures[node] << "\n";
}

// The per-node table; false if a node did not answer.
bool print_nodes(topology::cluster& c) {
  bool ok = true;
  std::printf("\n%-8s %-16s %-16s %8s %8s %8s %6s %9s %10s  %s\n", "node", "incarnation",
              "state digest", "applied", "sent", "received", "dups", "conflicts", "unresolved",
              "version vector");
  for (size_t node = 0; node < c.size(); ++node) {
    auto s = c.status(node);
    if (!s) {
      std::printf("%-8s (no answer: %s)\n", c.topology().name(node).c_str(),
                  s.err().message.c_str());
      ok = false;
      continue;
    }
    std::printf("%-8s %-16s %-16s %8llu %8llu %8llu %6llu %9llu %10llu  %s\n",
                c.topology().name(node).c_str(), short_hex(s->incarnation).c_str(),
                short_hex(s->digest).c_str(), static_cast<unsigned long long>(s->applied.total()),
                static_cast<unsigned long long>(s->stats.events_sent),
                static_cast<unsigned long long>(s->stats.events_received),
                static_cast<unsigned long long>(s->stats.duplicates),
                static_cast<unsigned long long>(s->stats.conflicts),
                static_cast<unsigned long long>(s->stats.unresolved),
                messages::to_string(s->applied).c_str());
  }
  return ok;
}

} // namespace

int main(int argc, char** argv) {
  demo_options o;
  if (auto done = parse(argc, argv, o))
    return *done;
  topology::cluster_options copts;
  copts.topology = o.topology;
  copts.nodes = o.nodes;
  copts.hub = o.hub;
  copts.resolver = o.resolver;
  copts.seed = o.seed;
  auto started = topology::cluster::start(copts);
  if (!started)
    return usage_error(started.err().message);
  auto& c = **started;
  auto n = c.size();
  std::cout << "mlr-demo: " << n << " nodes, topology " << o.topology << " ("
            << c.topology().edge_count() << " links), resolver " << o.resolver << ", " << o.writes
            << " writes per node\n";
  auto t0 = std::chrono::steady_clock::now();
  write_everywhere(c, o);
  bool ok = c.wait_converged(std::chrono::seconds(o.timeout_s));
  auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ok = print_nodes(c) && ok;
  auto total = static_cast<double>(o.writes * n);
  std::printf("\n%.0f writes in %.3f s (%.0f replicated writes/s, wall clock incl. start-up)\n",
              total, elapsed, elapsed > 0 ? total / elapsed : 0.0);
  std::cout << "converged: " << (ok ? "yes" : "no") << std::endl;
  return ok ? 0 : 1;
}
