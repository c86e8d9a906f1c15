#pragma once
// Topology graphs: which leader sends to which. A graph is a set of named nodes (index =
// position) and directed edges. Builders exist for the classic shapes; `parse_edge_list`
// reads the custom text format; `validate` refuses graphs that cannot deliver every write
// to every node; `spanning_trees` gives the per-origin routing that makes every strongly
// connected graph cost N-1 transmissions per write.
//
// The edge-list format (one statement a line, '#' starts a comment):
//
//     nodes: a b c d          # optional; fixes the node order (else: first appearance)
//     a -> b                  # an edge from a to b
//     b -> c, d               # several edges from b
//     c <-> d                 # edges both ways
//
// Node names are letters, digits, '-', '_' and '.'.

#include "messages/dot.hpp"
#include "messages/error.hpp"

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mlr::core {

using messages::node_index;

class graph {
public:
  graph() = default;
  explicit graph(std::vector<std::string> names);

  size_t size() const { return names_.size(); }
  const std::vector<std::string>& names() const { return names_; }
  const std::string& name(node_index n) const { return names_.at(n); }
  /// Index of a node by name, or -1.
  int find(const std::string& name) const;

  /// Adds the edge from -> to (ignored if present or a self-loop).
  void add_edge(node_index from, node_index to);
  bool has_edge(node_index from, node_index to) const;
  /// Out-neighbours of a node, ascending.
  const std::vector<node_index>& successors(node_index n) const { return out_.at(n); }
  std::vector<std::pair<node_index, node_index>> edges() const;
  size_t edge_count() const;

private:
  std::vector<std::string> names_;
  std::vector<std::vector<node_index>> out_;
};

/// Default names n0 … n{count-1}.
std::vector<std::string> default_names(size_t count);

/// n0 -> n1 -> … -> n{N-1} -> n0 (classic circular replication).
graph make_ring(std::vector<std::string> names);
/// hub <-> every other node.
graph make_star(std::vector<std::string> names, node_index hub = 0);
/// every node <-> every other node.
graph make_mesh(std::vector<std::string> names);

/// Parses the edge-list format above. Errors name the line and what to write instead.
result<graph> parse_edge_list(const std::string& text);

/// A topology named by a keyword, the one grammar of the shapes that start-up (--topology),
/// `mlr topology set/check` and the replicated topology key accept: "ring", "mesh" (also
/// "all-to-all"), "star" (hub: the first member, or the one given beside it) and "star:HUB".
struct shape {
  enum class kind { ring, mesh, star };
  kind k = kind::mesh;
  std::string hub; ///< star: the hub's name (empty: the first member)
};
/// The shape `spec` names, or nothing when it is not a keyword (an edge list, or a file of
/// one). Leading and trailing white space is ignored.
std::optional<shape> parse_shape(const std::string& spec);
/// The shape over the members `up` of a graph of `names` (indexes stay put; the others get
/// no edges). Errors: the hub is not one of `up`.
result<graph> build_shape(const shape& s, const std::vector<std::string>& names,
                          const std::vector<node_index>& up);

/// Reads the whole text of a file, or nothing if it cannot be read. The core reads no files
/// itself: whoever builds a topology from a file name passes a reader (the shell's is
/// topology::read_text_file, topology/text_file.hpp; tests may pass their own).
using text_reader = std::function<std::optional<std::string>(const std::string& path)>;

/// Builds a topology from a shape keyword (parse_shape) over `names`, or, when `spec` is
/// anything else, from the edge list in the file of that name, read with `read` (none: only
/// the shapes). `hub` names the star's hub when `spec` does not (default: first node).
result<graph> make_topology(const std::string& spec, std::vector<std::string> names,
                            const std::string& hub = {}, const text_reader& read = {});

/// Ok if every node can reach every other node; otherwise an error naming the nodes that
/// some node cannot reach.
result<bool> validate(const graph& g);

/// Per-origin shortest-path trees (breadth-first, lowest index first, so every node derives
/// the same trees). trees[o][x] = children of x in o's tree: the nodes x forwards o's
/// writes to.
std::vector<std::vector<std::vector<node_index>>> spanning_trees(const graph& g);

/// The forwarding table one leader needs: forward_to[o] = its children in o's tree.
std::vector<std::vector<node_index>>
forwarding_table(const std::vector<std::vector<std::vector<node_index>>>& trees, node_index self);

/// Where the link from -> to ships when `to` stops answering, best first: the nodes in
/// `preferred` (a star's standby hubs), then the nodes `to` reaches, nearest first (a
/// ring's successor's successor, then the next). Empty when `to` forwards nothing of other
/// origins (a mesh, a star's spoke): then there is nothing to route around.
std::vector<node_index>
detour_candidates(const graph& g, const std::vector<std::vector<std::vector<node_index>>>& trees,
                  node_index from, node_index to, const std::vector<node_index>& preferred = {});

} // namespace mlr::core
