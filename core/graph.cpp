#include "core/graph.hpp"

#include <algorithm>
#include <cctype>
#include <queue>
#include <sstream>

namespace mlr::core {

graph::graph(std::vector<std::string> names) : names_(std::move(names)), out_(names_.size()) {}

int graph::find(const std::string& name) const {
  auto i = std::find(names_.begin(), names_.end(), name);
  return i == names_.end() ? -1 : static_cast<int>(i - names_.begin());
}

void graph::add_edge(node_index from, node_index to) {
  if (from == to || from >= size() || to >= size())
    return;
  auto& out = out_[from];
  auto i = std::lower_bound(out.begin(), out.end(), to);
  if (i == out.end() || *i != to)
    out.insert(i, to);
}

bool graph::has_edge(node_index from, node_index to) const {
  if (from >= size())
    return false;
  return std::binary_search(out_[from].begin(), out_[from].end(), to);
}

std::vector<std::pair<node_index, node_index>> graph::edges() const {
  std::vector<std::pair<node_index, node_index>> out;
  for (node_index a = 0; a < size(); ++a)
    for (auto b : out_[a])
      out.emplace_back(a, b);
  return out;
}

size_t graph::edge_count() const {
  size_t n = 0;
  for (auto& o : out_)
    n += o.size();
  return n;
}

std::vector<std::string> default_names(size_t count) {
  std::vector<std::string> out;
  for (size_t i = 0; i < count; ++i)
    out.push_back("n" + std::to_string(i));
  return out;
}

graph make_ring(std::vector<std::string> names) {
  graph g(std::move(names));
  auto n = static_cast<node_index>(g.size());
  for (node_index i = 0; i < n && n > 1; ++i)
    g.add_edge(i, (i + 1) % n);
  return g;
}

graph make_star(std::vector<std::string> names, node_index hub) {
  graph g(std::move(names));
  for (node_index i = 0; i < g.size(); ++i) {
    g.add_edge(hub, i);
    g.add_edge(i, hub);
  }
  return g;
}

graph make_mesh(std::vector<std::string> names) {
  graph g(std::move(names));
  for (node_index a = 0; a < g.size(); ++a)
    for (node_index b = 0; b < g.size(); ++b)
      g.add_edge(a, b);
  return g;
}

namespace {

bool valid_name(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos)
    return {};
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> split_names(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',' || c == ' ' || c == '\t') {
      if (!cur.empty())
        out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty())
    out.push_back(cur);
  return out;
}

error bad(size_t line, const std::string& what) {
  return error{errc::bad_topology, "line " + std::to_string(line) + ": " + what};
}

// Reachability from `start`, following edges forwards or backwards.
std::vector<bool> reach(const graph& g, node_index start, bool forwards) {
  std::vector<std::vector<node_index>> in(g.size());
  if (!forwards)
    for (auto [a, b] : g.edges())
      in[b].push_back(a);
  std::vector<bool> seen(g.size(), false);
  std::vector<node_index> todo{start};
  seen[start] = true;
  while (!todo.empty()) {
    auto x = todo.back();
    todo.pop_back();
    for (auto y : forwards ? g.successors(x) : in[x])
      if (!seen[y]) {
        seen[y] = true;
        todo.push_back(y);
      }
  }
  return seen;
}

} // namespace

result<graph> parse_edge_list(const std::string& text) {
  std::vector<std::string> names;
  std::vector<std::pair<std::string, std::string>> edges;
  bool names_fixed = false;
  auto note = [&](const std::string& n) {
    if (std::find(names.begin(), names.end(), n) == names.end())
      names.push_back(n);
  };
  std::istringstream in(text);
  std::string raw;
  size_t line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    auto line = trim(raw.substr(0, raw.find('#')));
    if (line.empty())
      continue;
    if (line.rfind("nodes:", 0) == 0) {
      if (names_fixed || !edges.empty())
        return bad(line_no, "'nodes:' must come once, before any edge");
      for (auto& n : split_names(line.substr(6))) {
        if (!valid_name(n))
          return bad(line_no, "'" + n + "' is not a node name (letters, digits, '-', '_', '.')");
        if (std::find(names.begin(), names.end(), n) != names.end())
          return bad(line_no, "node '" + n + "' is listed twice");
        names.push_back(n);
      }
      names_fixed = true;
      continue;
    }
    bool both = line.find("<->") != std::string::npos;
    auto arrow = line.find(both ? "<->" : "->");
    if (arrow == std::string::npos)
      return bad(line_no, "expected 'a -> b', 'a <-> b' or 'nodes: a b c', got '" + line + "'");
    auto lhs = trim(line.substr(0, arrow));
    auto rhs = split_names(line.substr(arrow + (both ? 3 : 2)));
    if (!valid_name(lhs))
      return bad(line_no, "'" + lhs + "' is not a node name (letters, digits, '-', '_', '.')");
    if (rhs.empty())
      return bad(line_no, "no node after the arrow");
    for (auto& r : rhs) {
      if (!valid_name(r))
        return bad(line_no, "'" + r + "' is not a node name (letters, digits, '-', '_', '.')");
      if (r == lhs)
        return bad(line_no, "edge from '" + lhs + "' to itself");
      for (auto* n : {&lhs, &r}) {
        if (names_fixed && std::find(names.begin(), names.end(), *n) == names.end())
          return bad(line_no, "node '" + *n + "' is not in the 'nodes:' list");
        note(*n);
      }
      edges.emplace_back(lhs, r);
      if (both)
        edges.emplace_back(r, lhs);
    }
  }
  if (names.empty())
    return error{errc::bad_topology, "the topology has no nodes; write edges like 'a -> b'"};
  graph g(names);
  for (auto& [a, b] : edges)
    g.add_edge(static_cast<node_index>(g.find(a)), static_cast<node_index>(g.find(b)));
  return g;
}

std::optional<shape> parse_shape(const std::string& spec) {
  auto b = spec.find_first_not_of(" \t\r\n");
  if (b == std::string::npos)
    return std::nullopt;
  auto w = spec.substr(b, spec.find_last_not_of(" \t\r\n") + 1 - b);
  if (w == "ring")
    return shape{shape::kind::ring, {}};
  if (w == "mesh" || w == "all-to-all")
    return shape{shape::kind::mesh, {}};
  if (w == "star")
    return shape{shape::kind::star, {}};
  if (w.rfind("star:", 0) == 0 && w.size() > 5 && w.find_first_of(" \t\r\n") == std::string::npos)
    return shape{shape::kind::star, w.substr(5)};
  return std::nullopt;
}

result<graph> build_shape(const shape& s, const std::vector<std::string>& names,
                          const std::vector<node_index>& up) {
  graph g(names);
  if (up.empty())
    return error{errc::bad_topology, "the topology has no nodes"};
  switch (s.k) {
  case shape::kind::ring:
    for (size_t i = 0; i < up.size(); ++i)
      g.add_edge(up[i], up[(i + 1) % up.size()]);
    break;
  case shape::kind::mesh:
    for (auto a : up)
      for (auto b : up)
        g.add_edge(a, b);
    break;
  case shape::kind::star: {
    auto hub = s.hub.empty() ? names[up.front()] : s.hub;
    auto h = g.find(hub);
    if (h < 0 || std::find(up.begin(), up.end(), static_cast<node_index>(h)) == up.end())
      return error{errc::unknown_node, "the star's hub '" + hub + "' is not a member"};
    for (auto x : up) {
      g.add_edge(static_cast<node_index>(h), x);
      g.add_edge(x, static_cast<node_index>(h));
    }
    break;
  }
  }
  return g;
}

result<graph> make_topology(const std::string& spec, std::vector<std::string> names,
                            const std::string& hub, const text_reader& read) {
  if (auto s = parse_shape(spec)) {
    if (s->k == shape::kind::star && s->hub.empty())
      s->hub = hub;
    std::vector<node_index> all(names.size());
    for (node_index i = 0; i < all.size(); ++i)
      all[i] = i;
    return build_shape(*s, names, all);
  }
  auto text = read ? read(spec) : std::nullopt;
  if (!text)
    return error{errc::bad_topology, "'" + spec +
                                       "' is neither ring, mesh, star nor star:HUB, and no "
                                       "readable edge-list file has that name"};
  auto g = parse_edge_list(*text);
  if (!g)
    return error{errc::bad_topology, spec + ": " + g.err().message};
  return g;
}

result<bool> validate(const graph& g) {
  if (g.size() == 0)
    return error{errc::bad_topology, "the topology has no nodes"};
  auto from0 = reach(g, 0, true);
  auto to0 = reach(g, 0, false);
  std::string unreachable;
  std::string stuck;
  for (node_index i = 0; i < g.size(); ++i) {
    if (!from0[i])
      unreachable += (unreachable.empty() ? "" : ", ") + g.name(i);
    if (!to0[i])
      stuck += (stuck.empty() ? "" : ", ") + g.name(i);
  }
  if (unreachable.empty() && stuck.empty())
    return true;
  std::string msg = "topology is not strongly connected, so some writes could never reach "
                    "some nodes:";
  if (!unreachable.empty())
    msg += " writes from " + g.name(0) + " cannot reach " + unreachable + ";";
  if (!stuck.empty())
    msg += " writes from " + stuck + " cannot reach " + g.name(0) + ";";
  msg += " add edges so that every node can reach every other";
  return error{errc::bad_topology, msg};
}

std::vector<std::vector<std::vector<node_index>>> spanning_trees(const graph& g) {
  auto n = g.size();
  std::vector<std::vector<std::vector<node_index>>> trees(n,
                                                          std::vector<std::vector<node_index>>(n));
  for (node_index origin = 0; origin < n; ++origin) {
    std::vector<bool> seen(n, false);
    std::queue<node_index> todo;
    seen[origin] = true;
    todo.push(origin);
    while (!todo.empty()) {
      auto x = todo.front();
      todo.pop();
      for (auto y : g.successors(x))
        if (!seen[y]) {
          seen[y] = true;
          trees[origin][x].push_back(y);
          todo.push(y);
        }
    }
  }
  return trees;
}

std::vector<std::vector<node_index>>
forwarding_table(const std::vector<std::vector<std::vector<node_index>>>& trees, node_index self) {
  std::vector<std::vector<node_index>> out(trees.size());
  for (size_t origin = 0; origin < trees.size(); ++origin)
    if (self < trees[origin].size())
      out[origin] = trees[origin][self];
  return out;
}

std::vector<node_index>
detour_candidates(const graph& g, const std::vector<std::vector<std::vector<node_index>>>& trees,
                  node_index from, node_index to, const std::vector<node_index>& preferred) {
  bool relays = false;
  for (node_index o = 0; o < trees.size(); ++o)
    relays |= o != to && o != from && to < trees[o].size() && !trees[o][to].empty();
  // `from`'s own writes count too: the node after `to` needs them.
  relays |= from < trees.size() && to < trees[from].size() && !trees[from][to].empty();
  if (!relays)
    return {};
  std::vector<node_index> out;
  auto add = [&](node_index n) {
    if (n != from && n != to && n < g.size() && std::find(out.begin(), out.end(), n) == out.end())
      out.push_back(n);
  };
  for (auto n : preferred)
    add(n);
  std::vector<bool> seen(g.size(), false);
  std::vector<node_index> queue{to};
  seen[to] = true;
  for (size_t i = 0; i < queue.size(); ++i)
    for (auto next : g.successors(queue[i]))
      if (!seen[next]) {
        seen[next] = true;
        add(next);
        queue.push_back(next);
      }
  return out;
}

} // namespace mlr::core
