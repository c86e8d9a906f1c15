#include "topology/wiring.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <cctype>
#include <random>
#include <sstream>

namespace mlr::topology {

void set_static_routing(actors::leader_config& cfg, const graph& g, const spanning_trees_t& trees,
                        node_index n, const std::vector<node_index>& standby_hubs,
                        const std::string& hub_return, bool require_addresses) {
  cfg.replica.forward_to = forwarding_table(trees, n);
  cfg.replica.trees = trees;
  cfg.out_edges = g.successors(n);
  cfg.route = make_router(g.names(), n, standby_hubs, require_addresses);
  if (hub_return == "spoke" && !standby_hubs.empty() && standby_hubs[0] == n) {
    // The hub: the node every other node links to.
    for (node_index x = 0; x < g.size(); ++x)
      if (g.successors(x).size() + 1 == g.size() && x != n)
        cfg.take_over_from = x;
    cfg.take_over_spec = "star:" + g.name(n);
  }
}

actors::link_actor spawn_static_link(caf::actor_system& sys, const graph& g,
                                     const spanning_trees_t& trees,
                                     const std::vector<node_index>& standby_hubs,
                                     actors::link_config link, node_index from, node_index to,
                                     const actors::leader_actor& source,
                                     const std::function<actors::sink_actor(node_index)>& reach) {
  link.from = from;
  link.to = to;
  link.detours = detour_candidates(g, trees, from, to, standby_hubs);
  std::vector<actors::sink_actor> detour_sinks;
  for (auto d : link.detours)
    detour_sinks.push_back(reach(d));
  return actors::spawn_replication_link(sys, link, source, reach(to), std::move(detour_sinks));
}

namespace {

// A leader's configuration as the cluster spec says, routing left to the caller.
actors::leader_config base_config(const cluster_spec& spec, node_index n, uint64_t incarnation) {
  actors::leader_config cfg;
  cfg.replica.self = n;
  cfg.replica.incarnation = incarnation;
  cfg.relay_ack_timeout = spec.link.ack_timeout;
  cfg.replica.max_buffered = spec.max_buffered;
  cfg.wall_clock_ms = spec.wall_clock_ms;
  if (n < spec.clock_skew_ms.size() && spec.clock_skew_ms[n] != 0 && cfg.wall_clock_ms)
    cfg.wall_clock_ms = [clock = spec.wall_clock_ms, skew = spec.clock_skew_ms[n]] {
      return static_cast<uint64_t>(static_cast<int64_t>(clock()) + skew);
    };
  cfg.resolver_timeout = spec.resolver_timeout;
  cfg.limits = spec.limits;
  cfg.make_resolver = spec.make_resolver;
  cfg.resolver_name = spec.resolver_name;
  cfg.tick_interval = spec.tick_interval;
  cfg.pull_timeout = spec.pull_timeout;
  cfg.replica.pull_grace_ms = static_cast<uint64_t>(spec.pull_grace.count());
  cfg.replica.observer = spec.observer;
  cfg.replica.log_retention = spec.log_retention;
  cfg.replica.sync = spec.sync;
  return cfg;
}

std::unique_ptr<storage::store> store_for(const cluster_spec& spec, node_index n) {
  return spec.make_store ? spec.make_store(n) : storage::make_memory_store();
}

// A node of the static topology: its routing from the spanning trees and its out-edges.
actors::leader_config static_config(const cluster_spec& spec, const spanning_trees_t& trees,
                                    node_index n, uint64_t incarnation) {
  auto cfg = base_config(spec, n, incarnation);
  set_static_routing(cfg, spec.topology, trees, n, spec.standby_hubs, spec.hub_return);
  return cfg;
}

actors::sink_actor sink_for(const cluster_spec& spec, node_index from, node_index to,
                            const actors::leader_actor& dest) {
  return spec.make_sink ? spec.make_sink(from, to, dest) : actors::sink_actor{dest};
}

actors::link_actor spawn_static_link(caf::actor_system& sys, const cluster_spec& spec,
                                     const spanning_trees_t& trees,
                                     const std::vector<std::vector<actors::sink_actor>>& reach,
                                     node_index from, node_index to,
                                     const actors::leader_actor& source) {
  return topology::spawn_static_link(sys, spec.topology, trees, spec.standby_hubs, spec.link, from,
                                     to, source, [&](node_index d) { return reach[from][d]; });
}

} // namespace

result<node_index> add_node(caf::actor_system& sys, const cluster_spec& spec, cluster_handles& h,
                            const std::string& name, const std::string& topology, node_index via) {
  if (std::find(h.members.begin(), h.members.end(), name) != h.members.end())
    return error{errc::invalid_argument, "'" + name + "' is a member already"};
  if (via >= h.leaders.size())
    return error{errc::unknown_node,
                 "no node " + std::to_string(via) + " to write the topology at"};
  auto n = static_cast<node_index>(h.leaders.size());
  auto members = h.members;
  members.push_back(name);
  std::string full = "members";
  for (auto& m : members)
    full += " " + m;
  full += "\n" + topology;
  auto route = make_router(members, n, spec.standby_hubs);
  auto r = route(full, nullptr);
  if (!r)
    return r.err();
  std::mt19937_64 rng(spec.seed * 1000003 + n);
  uint64_t incarnation = 0;
  while (incarnation == 0)
    incarnation = rng();
  auto cfg = base_config(spec, n, incarnation);
  cfg.replica.forward_to = r->forward_to;
  cfg.replica.trees = r->trees;
  cfg.route = route;
  for (auto& [dest, detours] : r->links)
    cfg.out_edges.push_back(dest);
  auto resolver = spec.make_resolver(sys);
  auto leader = actors::spawn_leader(sys, std::move(cfg), store_for(spec, n), resolver);
  h.leaders.push_back(leader);
  h.resolvers.push_back(resolver);
  h.incarnations.push_back(incarnation);
  h.members = members;
  for (node_index x = 0; x < n; ++x)
    h.reach[x].push_back(sink_for(spec, x, n, leader));
  h.reach.emplace_back(n + 1);
  for (node_index x = 0; x < n; ++x)
    h.reach[n][x] = sink_for(spec, n, x, h.leaders[x]);
  for (auto& [dest, detours] : r->links) {
    auto link_cfg = spec.link;
    link_cfg.from = n;
    link_cfg.to = dest;
    link_cfg.detours = detours;
    std::vector<actors::sink_actor> detour_sinks;
    for (auto d : detours)
      detour_sinks.push_back(h.reach[n][d]);
    h.links.push_back(actors::spawn_replication_link(sys, link_cfg, leader, h.reach[n][dest],
                                                     std::move(detour_sinks)));
    h.link_from.push_back(n);
  }
  for (node_index x = 0; x <= n; ++x)
    caf::anon_send(h.leaders[x], actors::peers_atom::value, h.reach[x]);
  caf::anon_send(h.leaders[via], actors::topology_atom::value, full);
  return n;
}

result<bool> restart_node(caf::actor_system& sys, const cluster_spec& spec, cluster_handles& h,
                          node_index n, std::unique_ptr<storage::store> store,
                          uint64_t incarnation) {
  if (n >= h.leaders.size() || n >= spec.topology.size())
    return error{errc::unknown_node, "no node " + std::to_string(n) + " of the static topology"};
  if (!spec.make_sink)
    return error{errc::invalid_argument,
                 "restart_node needs cluster_spec.make_sink: the other nodes' links must "
                 "reach the new leader through it"};
  auto trees = spanning_trees(spec.topology);
  auto cfg = static_config(spec, trees, n, incarnation);
  auto resolver = spec.make_resolver(sys);
  auto leader = actors::spawn_leader(sys, std::move(cfg), std::move(store), resolver);
  h.leaders[n] = leader;
  h.resolvers[n] = resolver;
  h.incarnations[n] = incarnation;
  for (node_index x = 0; x < h.leaders.size(); ++x)
    if (x != n)
      h.reach[x][n] = sink_for(spec, x, n, leader);
  auto edges = spec.topology.edges();
  for (size_t i = 0; i < h.links.size() && i < edges.size(); ++i) {
    if (h.link_from[i] != n)
      continue;
    auto [from, to] = edges[i];
    h.links[i] = spawn_static_link(sys, spec, trees, h.reach, from, to, leader);
  }
  caf::anon_send(leader, actors::peers_atom::value, h.reach[n]);
  return true;
}

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
    // A node without durable state cannot prove its past: it always takes a new
    // incarnation. Zero is reserved for "none".
    uint64_t incarnation = 0;
    do
      incarnation = rng();
    while (incarnation == 0);
    auto cfg = static_config(spec, trees, n, incarnation);
    h.incarnations.push_back(cfg.replica.incarnation);
    auto resolver = spec.make_resolver(sys);
    h.resolvers.push_back(resolver);
    h.leaders.push_back(actors::spawn_leader(sys, std::move(cfg), store_for(spec, n), resolver));
  }
  auto n = spec.topology.size();
  std::vector<std::vector<actors::sink_actor>> reach(n, std::vector<actors::sink_actor>(n));
  for (node_index from = 0; from < n; ++from)
    for (node_index to = 0; to < n; ++to)
      if (from != to)
        reach[from][to] = sink_for(spec, from, to, h.leaders[to]);
  for (auto [from, to] : spec.topology.edges()) {
    h.links.push_back(spawn_static_link(sys, spec, trees, reach, from, to, h.leaders[from]));
    h.link_from.push_back(from);
  }
  for (node_index from = 0; from < n; ++from)
    caf::anon_send(h.leaders[from], actors::peers_atom::value, reach[from]);
  h.members = spec.topology.names();
  h.reach = std::move(reach);
  return h;
}

} // namespace mlr::topology
