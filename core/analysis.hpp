#pragma once
// What a topology costs and where it breaks: strong connectivity, single points of failure
// (the nodes and the links whose loss leaves the rest unable to reach each other), the
// diameter in hops, messages per write under per-origin tree routing, and fan-out per node.
// `mlr topology check` prints this; CAF-free.

#include "core/graph.hpp"

#include <string>
#include <utility>
#include <vector>

namespace mlr::core {

struct topology_report {
  size_t nodes = 0;
  size_t links = 0;
  bool strongly_connected = false;
  std::string problem;                 ///< why not, naming the unreachable nodes
  std::vector<std::string> spof_nodes; ///< nodes whose loss disconnects the others
  std::vector<std::pair<std::string, std::string>> spof_links; ///< links (from, to) likewise
  size_t diameter = 0;              ///< most hops a write travels to reach a node
  size_t messages_per_write = 0;    ///< with tree routing: N - 1
  std::vector<size_t> out_degree;   ///< links leaving each node
  std::vector<double> tree_fan_out; ///< sends per write a node makes, averaged over origins
};

topology_report analyze(const graph& g);

/// The report as text, one fact per line.
std::string to_text(const graph& g, const topology_report& r);

/// Parses "ring:N", "star:N", "mesh:N" (nodes n0..), or reads an edge-list file with `read`.
result<graph> graph_from_spec(const std::string& spec, const text_reader& read = {});

} // namespace mlr::core
