#pragma once
// What the deterministic fault scenarios share: a cluster spec routed through a simulated
// network with short timeouts, moving simulated time, and cutting nodes or pairs off.

#include "harness.hpp"
#include "invariant_checker.hpp"
#include "sim_channel.hpp"

#include <chrono>
#include <memory>

namespace mlr::testing {

/// Links ack within 200 ms, leaders tick every 50 ms, pulls wait `pull_grace` (a long
/// grace makes what arrives arrive by the links); every message goes through `net`.
inline topology::cluster_spec sim_spec(topology::graph g, sim_network& net,
                                       std::shared_ptr<invariant_checker> checker,
                                       std::chrono::milliseconds pull_grace) {
  using namespace std::chrono_literals;
  topology::cluster_spec spec;
  spec.topology = std::move(g);
  spec.make_resolver = resolvers::builtin_resolver("lww");
  spec.observer = std::move(checker);
  spec.link.ack_timeout = 200ms;
  spec.link.probe_interval = 200ms;
  spec.tick_interval = 50ms;
  spec.pull_grace = pull_grace;
  spec.pull_timeout = 200ms;
  spec.make_sink = [&net](topology::node_index from, topology::node_index to,
                          actors::leader_actor dest) { return net.sink(from, to, dest); };
  return spec;
}

/// Moves simulated time forward in 50 ms steps.
inline void run_for(sim_cluster& c, std::chrono::milliseconds total) {
  using namespace std::chrono_literals;
  for (auto t = 0ms; t < total; t += 50ms)
    c.advance(50ms);
}

/// Cuts (or heals) both directions between `a` and `b`.
inline void cut_between(sim_network& net, size_t a, size_t b, bool cut) {
  auto x = static_cast<topology::node_index>(a);
  auto y = static_cast<topology::node_index>(b);
  for (auto ch : {net.at(x, y), net.at(y, x)}) {
    if (cut)
      caf::anon_send(ch, cut_atom::value);
    else
      caf::anon_send(ch, heal_atom::value);
  }
}

/// Every channel to and from `n` (a crashed node, as its peers see it), or heals them.
inline void set_down(sim_network& net, size_t nodes, size_t n, bool down) {
  for (size_t x = 0; x < nodes; ++x)
    if (x != n)
      cut_between(net, x, n, down);
}

/// The seeded scenarios' message faults on every channel: 2-14% dropped (by seed), 10%
/// duplicated, 30% delayed by up to 150 ms (so reordered).
inline void start_faults(sim_network& net, uint64_t seed) {
  fault_config faults;
  faults.drop = 0.02 + static_cast<double>(seed % 7) * 0.02;
  faults.duplicate = 0.1;
  faults.delay = 0.3;
  faults.max_delay_ms = 150;
  for (auto& [pair, ch] : net.channels())
    caf::anon_send(ch, faults_atom::value, faults);
}

} // namespace mlr::testing
