#include "topology/wiring.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <cctype>
#include <random>
#include <sstream>

namespace mlr::topology {

out_links set_static_routing(actors::leader_config& cfg, const graph& g,
                             const spanning_trees_t& trees, node_index n,
                             const std::vector<node_index>& standby_hubs,
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
  out_links links;
  for (auto to : cfg.out_edges)
    links.emplace_back(to, detour_candidates(g, trees, n, to, standby_hubs));
  return links;
}

result<member_actors> spawn_member(caf::actor_system& sys, actors::leader_config cfg,
                                   std::unique_ptr<storage::store> store) {
  if (!cfg.make_resolver)
    return error{errc::invalid_argument, "the leader configuration has no make_resolver"};
  member_actors m;
  m.resolver = cfg.make_resolver(sys);
  m.leader = actors::spawn_leader(sys, std::move(cfg), std::move(store), m.resolver);
  return m;
}

std::vector<actors::link_actor>
spawn_links(caf::actor_system& sys, const actors::link_config& base, node_index from,
            const out_links& links, const actors::leader_actor& source,
            const std::function<actors::sink_actor(node_index)>& reach) {
  std::vector<actors::link_actor> out;
  for (auto& [to, detours] : links) {
    auto lc = base;
    lc.from = from;
    lc.to = to;
    lc.detours = detours;
    std::vector<actors::sink_actor> detour_sinks;
    for (auto d : detours)
      detour_sinks.push_back(reach(d));
    out.push_back(
      actors::spawn_replication_link(sys, lc, source, reach(to), std::move(detour_sinks)));
  }
  return out;
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
  cfg.replica.text_compact_after = spec.text_compact_after;
  cfg.replica.sync = spec.sync;
  return cfg;
}

std::unique_ptr<storage::store> store_for(const cluster_spec& spec, node_index n) {
  return spec.make_store ? spec.make_store(n) : storage::make_memory_store();
}

actors::sink_actor sink_for(const cluster_spec& spec, node_index from, node_index to,
                            const actors::leader_actor& dest) {
  return spec.make_sink ? spec.make_sink(from, to, dest) : actors::sink_actor{dest};
}

// Spawns member n's links and records them in h.
void add_links(caf::actor_system& sys, const cluster_spec& spec, cluster_handles& h, node_index n,
               const out_links& links) {
  for (auto& l : spawn_links(sys, spec.link, n, links, h.leaders[n],
                             [&](node_index d) { return h.reach[n][d]; })) {
    h.links.push_back(l);
    h.link_from.push_back(n);
  }
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
  auto m = spawn_member(sys, std::move(cfg), store_for(spec, n));
  if (!m)
    return m.err();
  h.leaders.push_back(m->leader);
  h.resolvers.push_back(m->resolver);
  h.incarnations.push_back(incarnation);
  h.members = members;
  for (node_index x = 0; x < n; ++x)
    h.reach[x].push_back(sink_for(spec, x, n, m->leader));
  h.reach.emplace_back(n + 1);
  for (node_index x = 0; x < n; ++x)
    h.reach[n][x] = sink_for(spec, n, x, h.leaders[x]);
  add_links(sys, spec, h, n, r->links);
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
  auto cfg = base_config(spec, n, incarnation);
  auto links = set_static_routing(cfg, spec.topology, trees, n, spec.standby_hubs, spec.hub_return);
  auto m = spawn_member(sys, std::move(cfg), std::move(store));
  if (!m)
    return m.err();
  h.leaders[n] = m->leader;
  h.resolvers[n] = m->resolver;
  h.incarnations[n] = incarnation;
  for (node_index x = 0; x < h.leaders.size(); ++x)
    if (x != n)
      h.reach[x][n] = sink_for(spec, x, n, m->leader);
  // Node n's links are consecutive in h.links (in its out-links' order): replace them.
  auto fresh =
    spawn_links(sys, spec.link, n, links, m->leader, [&](node_index d) { return h.reach[n][d]; });
  size_t next = 0;
  for (size_t i = 0; i < h.links.size() && next < fresh.size(); ++i)
    if (h.link_from[i] == n)
      h.links[i] = fresh[next++];
  caf::anon_send(m->leader, actors::peers_atom::value, h.reach[n]);
  return true;
}

result<cluster_handles> wire_cluster(caf::actor_system& sys, const cluster_spec& spec) {
  if (auto ok = validate(spec.topology); !ok)
    return ok.err();
  if (!spec.make_resolver)
    return error{errc::invalid_argument, "cluster_spec.make_resolver is empty"};
  cluster_handles h;
  h.topology = spec.topology;
  h.members = spec.topology.names();
  auto trees = spanning_trees(spec.topology);
  auto n = spec.topology.size();
  std::vector<out_links> links(n);
  std::mt19937_64 rng(spec.seed);
  for (node_index x = 0; x < n; ++x) {
    // A node without durable state cannot prove its past: it always takes a new
    // incarnation. Zero is reserved for "none".
    uint64_t incarnation = 0;
    do
      incarnation = rng();
    while (incarnation == 0);
    auto cfg = base_config(spec, x, incarnation);
    links[x] = set_static_routing(cfg, spec.topology, trees, x, spec.standby_hubs, spec.hub_return);
    auto m = spawn_member(sys, std::move(cfg), store_for(spec, x));
    if (!m)
      return m.err();
    h.incarnations.push_back(incarnation);
    h.resolvers.push_back(m->resolver);
    h.leaders.push_back(m->leader);
  }
  h.reach.assign(n, std::vector<actors::sink_actor>(n));
  for (node_index from = 0; from < n; ++from)
    for (node_index to = 0; to < n; ++to)
      if (from != to)
        h.reach[from][to] = sink_for(spec, from, to, h.leaders[to]);
  for (node_index from = 0; from < n; ++from)
    add_links(sys, spec, h, from, links[from]);
  for (node_index from = 0; from < n; ++from)
    caf::anon_send(h.leaders[from], actors::peers_atom::value, h.reach[from]);
  return h;
}

} // namespace mlr::topology
