#pragma once
// Turns a topology into running actors: one leader (and resolver) per node, one
// replication link per edge, each leader given its forwarding table from the per-origin
// spanning trees. Non-blocking: it only spawns, so it works on CAF's deterministic
// test_coordinator as well as on the real scheduler.

#include "actors/leader.hpp"
#include "actors/replication_link.hpp"
#include "resolvers/resolver.hpp"
#include "topology/core_names.hpp"

#include <caf/fwd.hpp>

#include <functional>
#include <vector>

namespace mlr::topology {

struct cluster_spec {
  graph topology;
  /// Spawns each node's resolver.
  resolvers::resolver_factory make_resolver;
  std::string resolver_name; ///< what the conflict feed records as the resolver
  /// Seeds the incarnation ids (the same seed gives the same ids).
  uint64_t seed = 1;
  /// Wall clock for HLCs; the system clock when empty.
  std::function<uint64_t()> wall_clock_ms;
  /// Per node, milliseconds added to that clock (tests of clock skew); empty: none.
  std::vector<int64_t> clock_skew_ms;
  /// Applied to every link; `from` and `to` are filled in per edge.
  actors::link_config link;
  size_t max_buffered = 1u << 20;
  std::chrono::milliseconds resolver_timeout{5000};
  /// Limits for decoding frames that arrive at leaders.
  messages::decode_limits limits;
  /// Gossip and pull checks run every tick (zero: off); a gap that made no progress for
  /// `pull_grace` is pulled from one holder, the next holder after `pull_timeout`.
  std::chrono::milliseconds tick_interval{100};
  std::chrono::milliseconds pull_grace{500};
  std::chrono::milliseconds pull_timeout{1000};
  /// A star's standby hubs: where spokes ship first when the hub stops answering.
  std::vector<node_index> standby_hubs;
  /// What a star's hub is when it comes back after a failure: "resume" (it takes its role
  /// back: spokes only detoured meanwhile) or "spoke" (the first standby took the role
  /// over by a topology change when the hub stopped answering).
  std::string hub_return = "resume";
  /// Log entries each leader keeps even when stable.
  uint64_t log_retention = 10000;
  /// core::replica_config::text_compact_after.
  size_t text_compact_after = 1024;
  /// Sees every application at every leader (tests' invariant checkers).
  std::shared_ptr<core::replica_observer> observer;
  /// How node `from` reaches node `to`: what the link for that edge ships to, and what
  /// gossip and pull go through. Default: the destination leader itself. Tests put a
  /// simulated network channel here; processes put a peer connection.
  std::function<actors::sink_actor(node_index from, node_index to, actors::leader_actor dest)>
    make_sink;
  /// Each node's store; empty: the memory store. With a durable store, `sync` says when a
  /// write counts as durable (actors::sync_policy).
  std::function<std::unique_ptr<storage::store>(node_index)> make_store;
  actors::sync_policy sync = actors::sync_policy::batch;
};

struct cluster_handles {
  graph topology;
  std::vector<actors::leader_actor> leaders;
  std::vector<resolvers::resolver_actor> resolvers;
  std::vector<actors::link_actor> links; ///< in the order of topology.edges()
  std::vector<node_index> link_from;     ///< the source node of each link
  std::vector<uint64_t> incarnations;
  std::vector<std::string> members; ///< node names in index order (added ones last)
  /// reach[from][to]: how `from` reaches `to` (cluster_spec::make_sink).
  std::vector<std::vector<actors::sink_actor>> reach;
};

/// Adds node `name` to a running cluster: spawns its leader (empty, a new incarnation),
/// connects it with every node, and writes the topology `topology` ("mesh", "ring",
/// "star:HUB" or an edge list, over the members and the new node) at node `via`, so every
/// node routes by it once the write reaches it. The new node catches up by pull or state
/// transfer. Returns its index.
result<node_index> add_node(caf::actor_system& sys, const cluster_spec& spec, cluster_handles& h,
                            const std::string& name, const std::string& topology,
                            node_index via = 0);

/// Restarts node `n` of a running cluster whose old leader has stopped (crashed): spawns a
/// new leader (and resolver) for it on `store` under `incarnation`, as a process would when
/// it starts again, with its own links as the static topology says. The other nodes' links
/// to it keep their cursors, as they do when a peer process restarts: they reach the new
/// leader through `spec.make_sink`, which must hand the new leader to whatever stands for
/// the connection (a sink that is the old leader itself cannot follow, so it is refused).
/// A store that kept the node's state makes it resume; an empty one under a new
/// incarnation makes it catch up from its peers.
result<bool> restart_node(caf::actor_system& sys, const cluster_spec& spec, cluster_handles& h,
                          node_index n, std::unique_ptr<storage::store> store,
                          uint64_t incarnation);

/// Routes by the spanning trees of a topology, one tree per origin.
using spanning_trees_t = std::vector<std::vector<std::vector<node_index>>>;

/// A member's out-links: each destination with its detours, in the order they are spawned
/// (core::routing::links has the same shape).
using out_links = std::vector<std::pair<node_index, std::vector<node_index>>>;

/// The routing part of node `n`'s leader configuration in the static topology `g`: what it
/// forwards along the spanning trees, its out-edges, its router for topology changes, and,
/// when the first standby hub takes the hub's role over (`hub_return` "spoke"), whom it
/// takes over from: the node every other node links to. Returns its out-links (each
/// successor in `g` with its detours), for spawn_links.
out_links set_static_routing(actors::leader_config& cfg, const graph& g,
                             const spanning_trees_t& trees, node_index n,
                             const std::vector<node_index>& standby_hubs,
                             const std::string& hub_return, bool require_addresses = false);

/// One member's leader and its resolver.
struct member_actors {
  actors::leader_actor leader;
  resolvers::resolver_actor resolver;
};

/// The one member assembly, in two steps because a member's links need a way to reach the
/// others, which exists only once their leaders (in process) or the peer transport (in a
/// process) does. The in-process cluster (wire_cluster, add_node, restart_node) and the
/// networked node (node/node.hpp) both build members with it.
///
/// Step one: spawns the resolver (`cfg.make_resolver`) and the leader on `store`.
result<member_actors> spawn_member(caf::actor_system& sys, actors::leader_config cfg,
                                   std::unique_ptr<storage::store> store);

/// Step two: spawns member `from`'s links, one per out-link, from `base` (whose endpoints
/// and detours are filled in per link); `reach(d)` is how `from` reaches node d.
std::vector<actors::link_actor>
spawn_links(caf::actor_system& sys, const actors::link_config& base, node_index from,
            const out_links& links, const actors::leader_actor& source,
            const std::function<actors::sink_actor(node_index)>& reach);

/// Validates the topology and spawns the cluster. Refuses a graph that is not strongly
/// connected (the error names the unreachable nodes).
result<cluster_handles> wire_cluster(caf::actor_system& sys, const cluster_spec& spec);

} // namespace mlr::topology
