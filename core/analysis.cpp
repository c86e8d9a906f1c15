#include "core/analysis.hpp"

#include <algorithm>
#include <cstdio>
#include <queue>

namespace mlr::core {

namespace {

// Strong connectivity of `g` without the node `skip_node` and without the link
// `skip_from -> skip_to` (either may be "none": size()).
bool connected_without(const graph& g, size_t skip_node, size_t skip_from, size_t skip_to) {
  auto n = g.size();
  size_t start = skip_node == 0 ? 1 : 0;
  if (start >= n)
    return true;
  auto reach = [&](bool forwards) {
    std::vector<std::vector<node_index>> adj(n);
    for (auto [a, b] : g.edges()) {
      if (a == skip_node || b == skip_node || (a == skip_from && b == skip_to))
        continue;
      if (forwards)
        adj[a].push_back(b);
      else
        adj[b].push_back(a);
    }
    std::vector<bool> seen(n, false);
    std::vector<size_t> todo{start};
    seen[start] = true;
    while (!todo.empty()) {
      auto x = todo.back();
      todo.pop_back();
      for (auto y : adj[x])
        if (!seen[y]) {
          seen[y] = true;
          todo.push_back(y);
        }
    }
    for (size_t i = 0; i < n; ++i)
      if (i != skip_node && !seen[i])
        return false;
    return true;
  };
  return reach(true) && reach(false);
}

} // namespace

topology_report analyze(const graph& g) {
  topology_report r;
  r.nodes = g.size();
  r.links = g.edge_count();
  auto ok = validate(g);
  r.strongly_connected = static_cast<bool>(ok);
  if (!ok)
    r.problem = ok.err().message;
  auto n = g.size();
  for (node_index i = 0; i < n; ++i)
    r.out_degree.push_back(g.successors(i).size());
  if (!r.strongly_connected)
    return r;
  for (node_index v = 0; v < n && n > 2; ++v)
    if (!connected_without(g, v, n, n))
      r.spof_nodes.push_back(g.name(v));
  for (auto [a, b] : g.edges())
    if (!connected_without(g, n, a, b))
      r.spof_links.emplace_back(g.name(a), g.name(b));
  for (node_index s = 0; s < n; ++s) {
    std::vector<size_t> dist(n, SIZE_MAX);
    std::queue<node_index> q;
    dist[s] = 0;
    q.push(s);
    while (!q.empty()) {
      auto x = q.front();
      q.pop();
      for (auto y : g.successors(x))
        if (dist[y] == SIZE_MAX) {
          dist[y] = dist[x] + 1;
          q.push(y);
        }
    }
    for (auto d : dist)
      r.diameter = std::max(r.diameter, d);
  }
  auto trees = spanning_trees(g);
  r.tree_fan_out.assign(n, 0);
  for (size_t o = 0; o < n; ++o)
    for (size_t x = 0; x < n; ++x) {
      r.messages_per_write += trees[o][x].size();
      r.tree_fan_out[x] += static_cast<double>(trees[o][x].size()) / static_cast<double>(n);
    }
  r.messages_per_write /= n;
  return r;
}

std::string to_text(const graph& g, const topology_report& r) {
  std::string out = std::to_string(r.nodes) + " nodes, " + std::to_string(r.links) + " links\n";
  if (!r.strongly_connected)
    return out + "strongly connected: no\n" + r.problem + "\n";
  out += "strongly connected: yes\n";
  out += "single points of failure (nodes): ";
  if (r.spof_nodes.empty())
    out += "none";
  for (size_t i = 0; i < r.spof_nodes.size(); ++i)
    out += (i ? ", " : "") + r.spof_nodes[i];
  out += "\nsingle points of failure (links): ";
  if (r.spof_links.empty())
    out += "none";
  for (size_t i = 0; i < r.spof_links.size(); ++i)
    out += (i ? ", " : "") + r.spof_links[i].first + "->" + r.spof_links[i].second;
  out += "\ndiameter: " + std::to_string(r.diameter) + " hops\n";
  out += "messages per write: " + std::to_string(r.messages_per_write) +
         " (per-origin spanning trees)\n";
  out += "fan-out per node (links out / sends per write, averaged over origins):\n";
  for (size_t i = 0; i < r.nodes; ++i) {
    char buf[128];
    std::snprintf(buf, sizeof(buf), "  %-12s %3zu / %.2f\n",
                  g.name(static_cast<node_index>(i)).c_str(), r.out_degree[i], r.tree_fan_out[i]);
    out += buf;
  }
  return out;
}

result<graph> graph_from_spec(const std::string& spec, const text_reader& read) {
  auto colon = spec.find(':');
  if (colon != std::string::npos) {
    auto kind = spec.substr(0, colon);
    if (kind == "ring" || kind == "star" || kind == "mesh") {
      char* end = nullptr;
      auto n = std::strtoul(spec.c_str() + colon + 1, &end, 10);
      if (*end != '\0' || n < 1 || n > 4096)
        return error{errc::bad_topology, "'" + spec + "': the node count after ':' must be 1-4096"};
      return make_topology(kind, default_names(n));
    }
  }
  return make_topology(spec, {}, {}, read);
}

} // namespace mlr::core
