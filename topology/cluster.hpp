#pragma once
// The blocking C++ API for a replicated service in one process: N leaders wired along a
// topology, with put/get/del at any node. It owns its CAF actor system, so a program needs
// no CAF code of its own (except to write a custom resolver, see resolvers/resolver.hpp).
//
// Writes are acknowledged once the chosen node has applied them; propagation to the other
// nodes is asynchronous. `wait_converged` blocks until every node has applied every write
// and all resolutions are done.

#include "actors/protocol.hpp"
#include "resolvers/resolver.hpp"
#include "topology/core_names.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace mlr::topology {

struct cluster_options {
  /// "ring", "star", "mesh" or the path of an edge-list file (see graph.hpp).
  std::string topology = "mesh";
  /// Number of nodes for ring/star/mesh (names n0, n1, …) unless `names` is given.
  size_t nodes = 3;
  std::vector<std::string> names;
  /// Hub of a star, by name (default: the first node).
  std::string hub;
  /// "lww", "multi", "max" or "tags"; ignored when `custom_resolver` is set.
  std::string resolver = "lww";
  resolvers::resolver_factory custom_resolver;
  /// Seeds incarnation ids.
  uint64_t seed = 1;
  /// Worker threads of the actor system.
  size_t threads = 2;
  std::chrono::milliseconds request_timeout{10000};
};

using actors::causal_context;
using actors::get_result;
using actors::node_status;

class cluster {
public:
  /// Builds the topology, validates it and starts every leader and link.
  static result<std::unique_ptr<cluster>> start(cluster_options options);
  ~cluster();

  size_t size() const;
  const graph& topology() const;

  result<messages::dot> put(size_t node, const std::string& key, const std::string& value);
  /// Replaces exactly the versions in `context` (from a previous get).
  result<messages::dot> put(size_t node, const std::string& key, const std::string& value,
                            const causal_context& context);
  result<messages::dot> del(size_t node, const std::string& key);
  /// Changes the topology at runtime, from `node`: "ring", "star:HUB", "mesh" or an edge
  /// list over the member names. Returns the new epoch; every node routes by it once the
  /// write reaches it (concurrent changes: the last writer wins everywhere).
  result<messages::dot> set_topology(size_t node, const std::string& spec);
  /// Adds a node to the running cluster (empty; it catches up by pull or state transfer)
  /// and routes everyone by `shape` ("mesh", "ring", "star:HUB", ...) over the members and
  /// it, written at node `via`. Returns the new node's index (indexes are never reused).
  result<size_t> add_node(const std::string& name, const std::string& shape = "mesh",
                          size_t via = 0);
  /// Removes (decommissions) a member: every node routes by `shape` over the remaining
  /// ones, and the removed one no longer holds back stability. Returns the new epoch.
  result<messages::dot> remove_node(const std::string& name, const std::string& shape = "mesh",
                                    size_t via = 0);
  /// Node names in index order, removed ones included.
  const std::vector<std::string>& members() const;
  result<messages::dot> del(size_t node, const std::string& key, const causal_context& context);
  /// Several puts applied in one message, in order.
  result<std::vector<messages::dot>>
  put_batch(size_t node, const std::vector<std::pair<std::string, std::string>>& kvs);

  result<get_result> get(size_t node, const std::string& key);
  result<node_status> status(size_t node);
  result<std::vector<core::conflict_record>> conflicts(size_t node, uint64_t after = 0,
                                                       uint32_t limit = 1000);

  /// Waits until every member (removed ones left out) has applied the same events, holds
  /// the same state, routes by the same topology epoch and has no resolution pending.
  /// False on timeout.
  bool wait_converged(std::chrono::milliseconds timeout);

private:
  struct impl;
  explicit cluster(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// True when the nodes' statuses show one converged state: equal version vectors, epochs and
/// digests, nothing buffered, no resolution pending.
bool converged(const std::vector<node_status>& nodes);

} // namespace mlr::topology
