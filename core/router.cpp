// The router every node uses for its topology key (router.hpp): one parser for the
// 'members', 'removed' and 'address' lines and the shape, with the validation that makes a
// change accepted at one node acceptable everywhere. CAF-free (the fuzzer drives it).

#include "core/router.hpp"

#include "core/analysis.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <sstream>

namespace mlr::core {

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
  if (auto s = parse_shape(body)) {
    if (up.empty())
      return error{errc::bad_topology, "the topology has no live members"};
    return build_shape(*s, names, up);
  }
  auto kind = trim(body);
  if (body.find("->") == std::string::npos)
    return error{errc::bad_topology,
                 "topology '" + kind +
                   "': write ring, mesh, star, star:HUB, all-to-all or 'a -> b' lines"};
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

using address_list = std::vector<std::pair<std::string, std::string>>;

// Applies the 'members' lines: names well formed and unique, the current members first in
// order (node indexes are never reused), new ones last. Members only grow.
std::optional<error> merge_members(std::vector<std::string>& members,
                                   const std::vector<std::vector<std::string>>& lines) {
  for (auto& listed : lines) {
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
  return std::nullopt;
}

// Applies the 'address' lines (a later line for a name replaces the earlier one) and checks
// that every address names a member and, for processes, that every member added since the
// start has one: nobody could reach it otherwise.
std::optional<error> merge_addresses(address_list& addresses,
                                     const std::vector<std::vector<std::string>>& lines,
                                     const std::vector<std::string>& members, size_t initial,
                                     bool require_addresses) {
  for (auto& w : lines) {
    if (w.size() != 2 || !well_formed_address(w[1]))
      return error{errc::bad_topology, "write 'address NAME HOST:PORT'"};
    addresses.erase(
      std::remove_if(addresses.begin(), addresses.end(), [&](auto& a) { return a.first == w[0]; }),
      addresses.end());
    addresses.emplace_back(w[0], w[1]);
  }
  for (auto& [name, where] : addresses)
    if (std::find(members.begin(), members.end(), name) == members.end())
      return error{errc::unknown_node, "'address' names '" + name + "', which is not a member"};
  if (require_addresses)
    for (size_t i = initial; i < members.size(); ++i)
      if (std::none_of(addresses.begin(), addresses.end(),
                       [&](auto& a) { return a.first == members[i]; }))
        return error{errc::bad_topology, "new member '" + members[i] + "' has no 'address " +
                                           members[i] + " HOST:PORT' line: nobody could reach it"};
  return std::nullopt;
}

result<std::vector<bool>> liveness(const std::vector<std::string>& members,
                                   const std::vector<std::string>& removed) {
  std::vector<bool> live(members.size(), true);
  for (auto& r : removed) {
    auto i = std::find(members.begin(), members.end(), r);
    if (i == members.end())
      return error{errc::unknown_node, "'removed' names '" + r + "', which is not a member"};
    live[static_cast<size_t>(i - members.begin())] = false;
  }
  if (std::count(live.begin(), live.end(), true) == 0)
    return error{errc::bad_topology, "a topology needs at least one member left"};
  return live;
}

// The graph must be strongly connected over the live members.
result<bool> validate_live(const graph& g, const std::vector<std::string>& members,
                           const std::vector<bool>& live) {
  std::vector<std::string> up_names;
  std::vector<int> sub_index(members.size(), -1);
  for (node_index i = 0; i < members.size(); ++i)
    if (live[i]) {
      sub_index[i] = static_cast<int>(up_names.size());
      up_names.push_back(members[i]);
    }
  graph sub(up_names);
  for (auto [from, to] : g.edges())
    sub.add_edge(static_cast<node_index>(sub_index[from]), static_cast<node_index>(sub_index[to]));
  return validate(sub);
}

// The routing of a checked topology: its canonical text (what every node compares), the
// text stored in the topology key, and this node's trees, forwarding table and links.
core::routing routing_for(const graph& g, const std::string& body, std::vector<std::string> members,
                          std::vector<bool> live, address_list addresses, node_index self,
                          const std::vector<node_index>& standby) {
  core::routing r;
  r.canonical = "members";
  for (auto& m : members)
    r.canonical += " " + m;
  r.canonical += "\n";
  for (auto& [name, where] : addresses)
    r.canonical += "address " + name + " " + where + "\n";
  if (std::count(live.begin(), live.end(), false) > 0) {
    r.canonical += "removed";
    for (node_index i = 0; i < members.size(); ++i)
      if (!live[i])
        r.canonical += " " + members[i];
    r.canonical += "\n";
  }
  r.stored = r.canonical + trim(body) + "\n";
  for (auto [from, to] : g.edges())
    r.canonical += g.name(from) + " -> " + g.name(to) + "\n";
  r.trees = spanning_trees(g);
  if (self < members.size()) {
    r.forward_to = forwarding_table(r.trees, self);
    for (auto to : g.successors(self))
      r.links.emplace_back(to, detour_candidates(g, r.trees, self, to, standby));
  }
  r.members = std::move(members);
  r.live = std::move(live);
  r.addresses = std::move(addresses);
  return r;
}

// Optional 'members', 'removed' and 'address' lines, then the topology. Members only grow
// and removals stick: what the current topology has is kept.
result<core::routing> route(const std::vector<std::string>& initial, node_index self,
                            const std::vector<node_index>& standby, bool require_addresses,
                            const std::string& spec, const core::routing* current) {
  if (spec.size() > max_topology_bytes)
    return error{errc::bad_topology, "the topology is " + std::to_string(spec.size()) +
                                       " bytes; at most " + std::to_string(max_topology_bytes) +
                                       " are accepted"};
  auto members = current ? current->members : initial;
  std::vector<std::string> removed;
  auto addresses = current ? current->addresses : address_list{};
  if (current)
    for (size_t i = 0; i < current->members.size() && i < current->live.size(); ++i)
      if (!current->live[i])
        removed.push_back(current->members[i]);
  auto lines = split_topology(spec);
  if (auto err = merge_members(members, lines.members))
    return *err;
  for (auto& r : lines.removed)
    removed.insert(removed.end(), r.begin(), r.end());
  if (auto err =
        merge_addresses(addresses, lines.addresses, members, initial.size(), require_addresses))
    return *err;
  auto live = liveness(members, removed);
  if (!live)
    return live.err();
  auto g = graph_for(lines.shape, members, *live);
  if (!g)
    return g.err();
  if (auto ok = validate_live(*g, members, *live); !ok)
    return ok.err();
  return routing_for(*g, lines.shape, std::move(members), std::move(*live), std::move(addresses),
                     self, standby);
}

} // namespace

std::function<result<core::routing>(const std::string&, const core::routing*)>
make_router(std::vector<std::string> names, node_index self, std::vector<node_index> standby,
            bool require_addresses) {
  return [initial = std::move(names), self, standby = std::move(standby),
          require_addresses](const std::string& spec, const core::routing* current) {
    return route(initial, self, standby, require_addresses, spec, current);
  };
}

} // namespace mlr::core
