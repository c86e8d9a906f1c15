#include "topology/wiring.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <random>
#include <sstream>

namespace mlr::topology {

namespace {

result<graph> graph_for(const std::string& spec, const std::vector<std::string>& names) {
  if (spec == "ring")
    return make_ring(names);
  if (spec == "mesh")
    return make_mesh(names);
  if (spec == "star" || spec.rfind("star:", 0) == 0) {
    auto hub = spec == "star" ? names.front() : spec.substr(5);
    auto it = std::find(names.begin(), names.end(), hub);
    if (it == names.end())
      return error{errc::unknown_node, "the star's hub '" + hub + "' is not a member"};
    return make_star(names, static_cast<node_index>(it - names.begin()));
  }
  if (spec.find("->") == std::string::npos)
    return error{errc::bad_topology, "topology '" + spec +
                                       "': write ring, mesh, star, star:HUB or 'a -> b' lines"};
  graph g(names);
  std::istringstream in(spec);
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    line = line.substr(0, line.find('#'));
    auto arrow = line.find("->");
    auto trim = [](std::string x) {
      x.erase(0, x.find_first_not_of(" \t\r"));
      x.erase(x.find_last_not_of(" \t\r") + 1);
      return x;
    };
    if (trim(line).empty())
      continue;
    if (arrow == std::string::npos)
      return error{errc::bad_topology,
                   "topology line " + std::to_string(line_no) + ": write 'a -> b'"};
    auto a = trim(line.substr(0, arrow));
    auto b = trim(line.substr(arrow + 2));
    auto from = g.find(a);
    auto to = g.find(b);
    if (from < 0 || to < 0)
      return error{errc::unknown_node, "topology line " + std::to_string(line_no) + " names '" +
                                         (from < 0 ? a : b) + "', which is not a member"};
    g.add_edge(static_cast<node_index>(from), static_cast<node_index>(to));
  }
  return g;
}

} // namespace

std::function<result<actors::routing>(const std::string&)>
make_router(std::vector<std::string> names, node_index self, std::vector<node_index> standby) {
  return [names = std::move(names), self,
          standby = std::move(standby)](const std::string& spec) -> result<actors::routing> {
    auto g = graph_for(spec, names);
    if (!g)
      return g.err();
    if (auto ok = validate(*g); !ok)
      return ok.err();
    actors::routing r;
    for (auto [from, to] : g->edges())
      r.canonical += g->name(from) + " -> " + g->name(to) + "\n";
    r.trees = spanning_trees(*g);
    r.forward_to = forwarding_table(r.trees, self);
    for (auto to : g->successors(self))
      r.links.emplace_back(to, detour_candidates(*g, r.trees, self, to, standby));
    return r;
  };
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
    cfg.route = make_router(spec.topology.names(), n, spec.standby_hubs);
    if (spec.hub_return == "spoke" && !spec.standby_hubs.empty() && spec.standby_hubs[0] == n) {
      // The hub: the node every other node links to.
      for (node_index x = 0; x < spec.topology.size(); ++x)
        if (spec.topology.successors(x).size() + 1 == spec.topology.size() && x != n)
          cfg.take_over_from = x;
      cfg.take_over_spec = "star:" + spec.topology.name(n);
    }
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
