// The router every node uses for its topology key (router.hpp): one parser for the
// 'members', 'removed' and 'address' lines and the shape, with the validation that makes a
// change accepted at one node acceptable everywhere. CAF-free (the fuzzer drives it).

#include "core/router.hpp"

#include "core/analysis.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace mlr::topology {

namespace {

std::string trim(std::string x) {
  x.erase(0, x.find_first_not_of(" \t\r\n"));
  x.erase(x.find_last_not_of(" \t\r\n") + 1);
  return x;
}

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;)
    out.push_back(w);
  return out;
}

// The graph over every member (indexes stay put; removed members have no edges).
result<graph> graph_for(const std::string& body, const std::vector<std::string>& names,
                        const std::vector<bool>& live) {
  graph g(names);
  std::vector<node_index> up;
  for (node_index i = 0; i < names.size(); ++i)
    if (live[i])
      up.push_back(i);
  auto kind = trim(body);
  if (kind == "ring") {
    for (size_t i = 0; i < up.size(); ++i)
      g.add_edge(up[i], up[(i + 1) % up.size()]);
    return g;
  }
  if (kind == "mesh") {
    for (auto a : up)
      for (auto b : up)
        g.add_edge(a, b);
    return g;
  }
  if (kind == "star" || kind.rfind("star:", 0) == 0) {
    auto hub = kind == "star" ? names[up.front()] : kind.substr(5);
    auto h = g.find(hub);
    if (h < 0 || !live[static_cast<size_t>(h)])
      return error{errc::unknown_node, "the star's hub '" + hub + "' is not a member"};
    for (auto x : up) {
      g.add_edge(static_cast<node_index>(h), x);
      g.add_edge(x, static_cast<node_index>(h));
    }
    return g;
  }
  if (body.find("->") == std::string::npos)
    return error{errc::bad_topology,
                 "topology '" + kind + "': write ring, mesh, star, star:HUB or 'a -> b' lines"};
  // The same edge-list grammar as a topology file at start-up (parse_edge_list), so that
  // what a node starts with is accepted by `mlr topology set` too.
  auto edges = parse_edge_list(body);
  if (!edges)
    return error{errc::bad_topology, "topology " + edges.err().message};
  for (auto [a, b] : edges->edges()) {
    auto from = g.find(edges->name(a));
    auto to = g.find(edges->name(b));
    if (from < 0 || to < 0)
      return error{errc::unknown_node, "the topology names '" + edges->name(from < 0 ? a : b) +
                                         "', which is not a member"};
    if (!live[static_cast<size_t>(from)] || !live[static_cast<size_t>(to)])
      continue; // a removed member's edges go with it (a concurrent removal merged in)
    g.add_edge(static_cast<node_index>(from), static_cast<node_index>(to));
  }
  return g;
}

} // namespace

topology_lines split_topology(const std::string& text) {
  topology_lines out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto w = words(line);
    if (!w.empty() && (w[0] == "members" || w[0] == "removed" || w[0] == "address")) {
      auto& to = w[0] == "members" ? out.members : w[0] == "removed" ? out.removed : out.addresses;
      to.emplace_back(w.begin() + 1, w.end());
    } else {
      out.shape += line + "\n";
    }
  }
  return out;
}

namespace {

bool well_formed_name(const std::string& n) {
  return !n.empty() && n.size() <= max_name_bytes &&
         std::all_of(n.begin(), n.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '-' || c == '_' || c == '.';
         });
}

bool well_formed_address(const std::string& a) {
  auto colon = a.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == a.size() || a.size() > 300)
    return false;
  auto port = a.substr(colon + 1);
  return port.size() <= 5 && std::all_of(port.begin(), port.end(), ::isdigit) &&
         std::stoul(port) > 0 && std::stoul(port) < 65536;
}

} // namespace

std::function<result<actors::routing>(const std::string&, const actors::routing*)>
make_router(std::vector<std::string> names, node_index self, std::vector<node_index> standby,
            bool require_addresses) {
  return [initial = std::move(names), self, standby = std::move(standby), require_addresses](
           const std::string& spec, const actors::routing* current) -> result<actors::routing> {
    if (spec.size() > max_topology_bytes)
      return error{errc::bad_topology, "the topology is " + std::to_string(spec.size()) +
                                         " bytes; at most " + std::to_string(max_topology_bytes) +
                                         " are accepted"};
    // Optional 'members', 'removed' and 'address' lines, then the topology. Members only
    // grow and removals stick: what the current topology has is kept.
    auto members = current ? current->members : initial;
    std::vector<std::string> removed;
    auto addresses =
      current ? current->addresses : std::vector<std::pair<std::string, std::string>>{};
    if (current)
      for (size_t i = 0; i < current->members.size() && i < current->live.size(); ++i)
        if (!current->live[i])
          removed.push_back(current->members[i]);
    auto lines = split_topology(spec);
    for (auto& listed : lines.members) {
      if (listed.size() > max_members)
        return error{errc::bad_topology, "'members' lists " + std::to_string(listed.size()) +
                                           " members; a cluster has at most " +
                                           std::to_string(max_members)};
      for (size_t i = 0; i < listed.size(); ++i) {
        if (!well_formed_name(listed[i]))
          return error{errc::bad_topology, "member name '" + listed[i].substr(0, 80) +
                                             "' is not 1-64 letters, digits, '-', '_' or '.'"};
        if (std::find(listed.begin(), listed.begin() + static_cast<long>(i), listed[i]) !=
            listed.begin() + static_cast<long>(i))
          return error{errc::bad_topology, "'members' names '" + listed[i] + "' twice"};
      }
      auto common = std::min(listed.size(), members.size());
      if (!std::equal(members.begin(), members.begin() + static_cast<long>(common), listed.begin()))
        return error{errc::bad_topology,
                     "'members' must list the current members in order, new ones last "
                     "(node indexes are never reused)"};
      if (listed.size() > members.size())
        members = listed;
    }
    for (auto& r : lines.removed)
      removed.insert(removed.end(), r.begin(), r.end());
    for (auto& w : lines.addresses) {
      if (w.size() != 2 || !well_formed_address(w[1]))
        return error{errc::bad_topology, "write 'address NAME HOST:PORT'"};
      addresses.erase(std::remove_if(addresses.begin(), addresses.end(),
                                     [&](auto& a) { return a.first == w[0]; }),
                      addresses.end());
      addresses.emplace_back(w[0], w[1]);
    }
    auto& body = lines.shape;
    for (auto& [name, where] : addresses)
      if (std::find(members.begin(), members.end(), name) == members.end())
        return error{errc::unknown_node, "'address' names '" + name + "', which is not a member"};
    // Processes must know where every member listens: those they started with, and an
    // 'address' line for each one added since.
    if (require_addresses)
      for (size_t i = initial.size(); i < members.size(); ++i)
        if (std::none_of(addresses.begin(), addresses.end(),
                         [&](auto& a) { return a.first == members[i]; }))
          return error{errc::bad_topology, "new member '" + members[i] + "' has no 'address " +
                                             members[i] +
                                             " HOST:PORT' line: nobody could reach it"};
    std::vector<bool> live(members.size(), true);
    for (auto& r : removed) {
      auto i = std::find(members.begin(), members.end(), r);
      if (i == members.end())
        return error{errc::unknown_node, "'removed' names '" + r + "', which is not a member"};
      live[static_cast<size_t>(i - members.begin())] = false;
    }
    if (std::count(live.begin(), live.end(), true) == 0)
      return error{errc::bad_topology, "a topology needs at least one member left"};
    auto g = graph_for(body, members, live);
    if (!g)
      return g.err();
    // Strongly connected over the live members.
    std::vector<std::string> up_names;
    std::vector<int> sub_index(members.size(), -1);
    for (node_index i = 0; i < members.size(); ++i)
      if (live[i]) {
        sub_index[i] = static_cast<int>(up_names.size());
        up_names.push_back(members[i]);
      }
    graph sub(up_names);
    for (auto [from, to] : g->edges())
      sub.add_edge(static_cast<node_index>(sub_index[from]),
                   static_cast<node_index>(sub_index[to]));
    if (auto ok = validate(sub); !ok)
      return ok.err();
    actors::routing r;
    r.members = members;
    r.live = live;
    r.addresses = addresses;
    r.canonical = "members";
    for (auto& m : members)
      r.canonical += " " + m;
    r.canonical += "\n";
    for (auto& [name, where] : addresses)
      r.canonical += "address " + name + " " + where + "\n";
    if (!removed.empty()) {
      r.canonical += "removed";
      for (node_index i = 0; i < members.size(); ++i)
        if (!live[i])
          r.canonical += " " + members[i];
      r.canonical += "\n";
    }
    r.stored = r.canonical + trim(body) + "\n";
    for (auto [from, to] : g->edges())
      r.canonical += g->name(from) + " -> " + g->name(to) + "\n";
    r.trees = spanning_trees(*g);
    if (self < members.size()) {
      r.forward_to = forwarding_table(r.trees, self);
      for (auto to : g->successors(self))
        r.links.emplace_back(to, detour_candidates(*g, r.trees, self, to, standby));
    }
    return r;
  };
}

} // namespace mlr::topology
