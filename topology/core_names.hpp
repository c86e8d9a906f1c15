#pragma once
// The core's topology names the in-process topology (wiring, cluster) speaks in. They live
// in mlr::core (core/graph.hpp, core/router.hpp, core/analysis.hpp); the shell names each
// one it uses here, so that it is clear where they come from.

#include "core/analysis.hpp"
#include "core/graph.hpp"
#include "core/router.hpp"

namespace mlr::topology {

using core::analyze;
using core::default_names;
using core::detour_candidates;
using core::forwarding_table;
using core::graph;
using core::graph_from_spec;
using core::make_mesh;
using core::make_ring;
using core::make_router;
using core::make_star;
using core::make_topology;
using core::node_index;
using core::parse_edge_list;
using core::spanning_trees;
using core::split_topology;
using core::text_reader;
using core::to_text;
using core::topology_report;
using core::validate;

} // namespace mlr::topology
