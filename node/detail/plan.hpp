#pragma once
// Internal to node/: the checks that node::start runs on its options before anything
// starts, and the store it opens. Every rule about node_options is here, once.

#include "actors/leader.hpp"
#include "core/graph.hpp"
#include "node/node.hpp"
#include "storage/store.hpp"
#include "transport/peer_transport.hpp"

#include <optional>

namespace mlr::node::detail {

using messages::node_index;
using address = std::pair<std::string, uint16_t>;

// What start() derives from the options before anything runs: every check in one place.
struct plan {
  std::vector<std::string> members;
  node_index self = 0;
  address listen;
  std::vector<actors::peer_address> peers;
  core::graph graph;
  std::vector<node_index> standby;
  actors::sync_policy sync = actors::sync_policy::batch;
  std::optional<address> client, resp;
};

/// Checks every option; the error names the option and what to do.
result<plan> check(const node_options& o);

struct opened_store {
  std::unique_ptr<storage::store> store;
  uint64_t incarnation = 0;
};

/// Opens the store (RocksDB in `data_dir`, else memory) and chooses the incarnation: a node
/// keeps its incarnation only when it can prove it holds every dot it ever issued.
result<opened_store> open_store(const node_options& o, const plan& p, const actors::logger& log);

} // namespace mlr::node::detail
