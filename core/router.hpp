#pragma once
// A leader's `route` (actors::leader_config::route): turns the topology key's value into
// the routing of one node. The one parser and validator of runtime topologies: every node
// routes through it, and a change is checked by it before it is written.

#include "core/graph.hpp"
#include "core/replica.hpp"

#include <functional>
#include <string>
#include <vector>

namespace mlr::core {

/// A leader's `route`: turns a topology into the routing of node `self`, with
/// `standby_hubs` first among a star spoke's detours. A topology is optional lines
/// 'members A B C ...' (the current members in order, new ones appended) and 'removed X ...',
/// then "ring", "star" (hub: the first live node), "star:HUB", "mesh" or an edge list
/// ("a -> b" lines); 'address NAME HOST:PORT' lines tell processes where a new member
/// listens. Members only grow (a shorter list keeps the current one) and removals stick:
/// the current routing (null: `names`, all live) is the base. Refuses unknown names,
/// reordered members, and graphs that are not strongly connected over the live members.
/// Names are 1-64 letters, digits, '-', '_' or '.', each listed once; a cluster has at most
/// `max_members` members and a topology at most `max_topology_bytes`. With
/// `require_addresses` (processes) every member added after `names` needs an 'address' line.
/// Every node routes through this one parser, and a change is validated by it before it is
/// written, so a change accepted at one node is accepted everywhere.
inline constexpr size_t max_members = 256;

/// A topology's lines, split by kind (the one reader of them: the router validates what it
/// finds, the replica merges concurrent changes with it). Each 'members', 'removed' and
/// 'address' line gives its words after the keyword; every other line is the shape.
struct topology_lines {
  std::vector<std::vector<std::string>> members;
  std::vector<std::vector<std::string>> removed;
  std::vector<std::vector<std::string>> addresses;
  std::string shape; ///< the other lines, each followed by a newline (empty ones too)
};
topology_lines split_topology(const std::string& text);

inline constexpr size_t max_topology_bytes = 64u << 10;
inline constexpr size_t max_name_bytes = 64;
std::function<result<core::routing>(const std::string&, const core::routing*)>
make_router(std::vector<std::string> names, node_index self,
            std::vector<node_index> standby_hubs = {}, bool require_addresses = false);

} // namespace mlr::core
