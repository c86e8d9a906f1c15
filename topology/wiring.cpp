#include "topology/wiring.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include <random>

namespace mlr::topology {

result<cluster_handles> wire_cluster(caf::actor_system& sys, const cluster_spec& spec) {
  if (auto ok = validate(spec.topology); !ok)
    return ok.err();
  if (!spec.make_resolver)
    return error{errc::invalid_argument, "cluster_spec.make_resolver is empty"};
  cluster_handles h;
  h.topology = spec.topology;
  auto trees = spanning_trees(spec.topology);
  std::mt19937_64 rng(spec.seed);
  for (node_index n = 0; n < spec.topology.size(); ++n) {
    actors::leader_config cfg;
    cfg.replica.self = n;
    // A node without durable state cannot prove its past: it always takes a new
    // incarnation. Zero is reserved for "none".
    do
      cfg.replica.incarnation = rng();
    while (cfg.replica.incarnation == 0);
    cfg.replica.forward_to = forwarding_table(trees, n);
    cfg.replica.trees = trees;
    cfg.out_edges = spec.topology.successors(n);
    cfg.relay_ack_timeout = spec.link.ack_timeout;
    cfg.replica.max_buffered = spec.max_buffered;
    cfg.wall_clock_ms = spec.wall_clock_ms;
    cfg.resolver_timeout = spec.resolver_timeout;
    cfg.limits = spec.limits;
    cfg.tick_interval = spec.tick_interval;
    cfg.pull_timeout = spec.pull_timeout;
    cfg.replica.pull_grace_ms = static_cast<uint64_t>(spec.pull_grace.count());
    cfg.replica.observer = spec.observer;
    cfg.replica.log_retention = spec.log_retention;
    h.incarnations.push_back(cfg.replica.incarnation);
    auto resolver = spec.make_resolver(sys);
    h.resolvers.push_back(resolver);
    h.leaders.push_back(
      actors::spawn_leader(sys, std::move(cfg), storage::make_memory_store(), resolver));
  }
  auto n = spec.topology.size();
  std::vector<std::vector<actors::sink_actor>> reach(n, std::vector<actors::sink_actor>(n));
  for (node_index from = 0; from < n; ++from)
    for (node_index to = 0; to < n; ++to)
      if (from != to)
        reach[from][to] = spec.make_sink ? spec.make_sink(from, to, h.leaders[to])
                                         : actors::sink_actor{h.leaders[to]};
  for (auto [from, to] : spec.topology.edges()) {
    auto link_cfg = spec.link;
    link_cfg.from = from;
    link_cfg.to = to;
    link_cfg.detours = detour_candidates(spec.topology, trees, from, to, spec.standby_hubs);
    std::vector<actors::sink_actor> detour_sinks;
    for (auto d : link_cfg.detours)
      detour_sinks.push_back(reach[from][d]);
    h.links.push_back(actors::spawn_replication_link(sys, link_cfg, h.leaders[from],
                                                     reach[from][to], std::move(detour_sinks)));
  }
  for (node_index from = 0; from < n; ++from)
    caf::anon_send(h.leaders[from], actors::peers_atom::value, std::move(reach[from]));
  return h;
}

} // namespace mlr::topology
