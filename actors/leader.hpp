#pragma once
// The leader: one per node. It owns the store, the version vector, the HLC, the
// replication log and the causal-delivery buffer (all inside a `replica`), accepts local
// writes from clients, applies batches from peers, and asks its resolver only when
// versions are really concurrent (the common path never waits on it).
//
// Links never read the log themselves: a link says where it stands and that it has room
// (`want`), and the leader hands it its next batch (`shipment`, from the core's
// ready::batches) at once if the log has entries past that position, or as soon as the
// shippable end passes it. Catching up, going back after a lost ack and live traffic are
// the same path.

#include "actors/link_interface.hpp"
#include "actors/protocol.hpp"
#include "messages/codec.hpp"
#include "resolvers/resolver.hpp"
#include "storage/store.hpp"

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <functional>
#include <memory>

namespace mlr::actors {

/// How one node reaches another: the node's leader itself, a simulated network channel, or
/// a peer connection. Links ship batches through it; leaders gossip and pull through it.
using sink_actor = caf::typed_actor<
  /// An encoded event_batch. Reply: an encoded ack, sent on receipt (before causal
  /// delivery), or an mlr error (malformed_frame, oversized_frame) for a bad frame.
  caf::replies_to<batch_atom, messages::frame>::with<messages::frame>,
  /// An encoded pull_request. Reply: an encoded event_batch of the requested events this
  /// node holds, in its log order.
  caf::replies_to<pull_atom, messages::frame>::with<messages::frame>,
  /// A node's version vector, encoded as an ack whose `receiver` is that node.
  caf::reacts_to<gossip_atom, messages::frame>>;

/// A resolver to use from now on (hot swap): the factory spawns it now, and again should it
/// stop. Travels only inside a process.
struct resolver_swap {
  resolvers::resolver_factory make;
  std::string name; ///< what the conflict feed records as the resolver
};
template <class Inspector> typename Inspector::result_type inspect(Inspector& f, resolver_swap&) {
  return f(caf::meta::type_name("mlr.resolver_swap"));
}

using leader_actor = sink_actor::extend<
  /// Writes `value` under `key`, replacing every version this node holds. Replies the dot.
  caf::replies_to<put_atom, std::string, std::string>::with<messages::dot>,
  /// Writes `value`, replacing exactly the versions in the context (from a previous get).
  caf::replies_to<put_atom, std::string, std::string, causal_context>::with<messages::dot>,
  /// Deletes `key` (a tombstone replacing every version this node holds).
  caf::replies_to<del_atom, std::string>::with<messages::dot>,
  /// Deletes exactly the versions in the context.
  caf::replies_to<del_atom, std::string, causal_context>::with<messages::dot>,
  /// Applies several writes in one message, in order. Replies their dots.
  caf::replies_to<write_atom, std::vector<write_request>>::with<std::vector<messages::dot>>,
  /// Typed writes (counters, sets, maps; core/typed.hpp), in order. Replies what each
  /// answers in Redis's terms (typed::reply); a key of another type refuses the message
  /// (errc::refused, "WRONGTYPE ...").
  caf::replies_to<typed_atom, std::vector<write_request>>::with<std::vector<int64_t>>,
  /// Reads a key: its live values and their causal context.
  caf::replies_to<get_atom, std::string>::with<get_result>,
  /// Reads a key; a text key's document only from code point `start` to `end` (GETRANGE's
  /// arithmetic: inclusive, negative ones from the end; an empty range for its length
  /// alone), and its whole length: O(log n + the range), not the document.
  caf::replies_to<get_atom, std::string, int64_t, int64_t>::with<get_result>,
  /// Reads several keys in one message.
  caf::replies_to<get_atom, std::vector<std::string>>::with<std::vector<get_result>>,
  /// For links: `link` is the link to this destination node, handed its batches
  /// (`shipment`). Replies where the link should start: the cursor it last reported (kept
  /// in the store, so a node restarted from its data directory does not re-send what was
  /// acknowledged).
  caf::replies_to<subscribe_atom, messages::node_index, link_actor>::with<uint64_t>,
  /// For links: the link to this destination stands at this position and has room for a
  /// batch (dest, from, ship_to, max events). The leader hands it the next one
  /// (`shipment`): the entries past `from` that this node forwards to dest, shipped to
  /// `ship_to` (dest itself, or a detour on its behalf; what that node's gossiped vector
  /// covers is left out), as soon as there are any. Only the latest `want` counts.
  caf::reacts_to<want_atom, messages::node_index, uint64_t, messages::node_index, uint32_t>,
  /// For links: the destination acknowledged the log up to this position.
  caf::reacts_to<cursor_atom, messages::node_index, uint64_t>,
  /// Version vector, digest and counters.
  caf::replies_to<status_atom>::with<node_status>,
  /// The conflict feed: records after a sequence number, oldest first, at most this many
  /// (and about 4 MiB).
  caf::replies_to<conflicts_atom, uint64_t, uint32_t>::with<std::vector<conflict_record>>,
  /// How to reach every other node (indexed by node; this node's own entry is unused).
  /// Gossip and pull start once the leader has them.
  caf::reacts_to<peers_atom, std::vector<sink_actor>>,
  /// Timer: gossip, then pull if a gap made no progress for the grace period.
  caf::reacts_to<tick_atom>,
  /// This node's version vector, encoded as an ack whose `receiver` is this node (cheap,
  /// unlike status, which digests the whole state).
  caf::replies_to<report_atom>::with<messages::frame>,
  /// Group commit (sent to itself): one fsync for everything applied before it.
  caf::reacts_to<sync_atom>,
  /// Clean stop: make everything durable and mark the store as shut down cleanly.
  caf::replies_to<shutdown_atom>::with<bool>,
  /// Changes the cluster's topology at runtime ("ring", "star:HUB", "mesh" or an edge
  /// list): a write of the replicated topology key, whose dot (replied) is the new epoch.
  /// Every node routes by it once the write reaches it.
  caf::replies_to<topology_atom, std::string>::with<messages::dot>,
  /// Replaces the resolver while running (hot swap). Questions already asked are answered
  /// by the previous one (kept until then); keys whose resolution failed are asked again
  /// of the new one at once. Replies the conflicts in flight at the swap.
  caf::replies_to<resolver_atom, resolver_swap>::with<uint32_t>,
  /// Change subscriptions: every change applied from now on to a key with this prefix goes
  /// to the actor, in apply order, as (change_atom, id, std::vector<change>). Replies the
  /// subscription's id. The subscriber acknowledges what it consumed with (watch_ack, id,
  /// changes, bytes: core::change_bytes); one that falls more than max_watch_backlog
  /// changes or max_watch_backlog_bytes behind is dropped, told why with (change_atom, id,
  /// std::string), and the node goes on unslowed.
  caf::replies_to<watch_atom, std::string, caf::actor>::with<uint64_t>,
  caf::reacts_to<unwatch_atom, uint64_t>,
  caf::reacts_to<watch_ack_atom, uint64_t, uint64_t, uint64_t>,
  /// From a link: its destination stopped answering (true) and it took a detour, or it
  /// answers again (false).
  caf::reacts_to<detour_atom, messages::node_index, bool>>;

/// When a write counts as durable (stores that survive the process only): decided by the
/// replica (replica_config::sync), carried out by the leader.
/// - none: written to the OS at every applied batch; a process crash loses nothing, a
///   power loss can lose the latest writes (so a restart then takes a new incarnation);
/// - batch: group commit: one fsync covers all the messages the leader handled before it;
///   clients are acknowledged and links ship only after that fsync;
/// - always: an fsync for every applied batch before anything is acknowledged.
using core::sync_policy;

struct leader_config {
  replica_config replica;
  /// Wall-clock milliseconds for HLC timestamps. Injected so tests control time.
  std::function<uint64_t()> wall_clock_ms;
  /// How long the leader waits for the resolver before keeping siblings as unresolved
  /// (for now: the key is asked again a second later).
  std::chrono::milliseconds resolver_timeout{5000};
  /// Where the resolver came from: a resolver that stops (it threw) is replaced by a new
  /// one from here, and the conflicts it left are asked again. Empty: not replaced.
  resolvers::resolver_factory make_resolver;
  std::string resolver_name; ///< what the conflict feed records as the resolver
  messages::decode_limits limits;
  /// Most log entries one read of the log for a link scans (it reads on while all it found
  /// was for others, up to the shippable end).
  uint32_t max_fetch_scan = 8192;
  /// Gossip and pull checks run every tick; zero turns both off.
  std::chrono::milliseconds tick_interval{100};
  /// How long a pull waits for its answer before the next holder is tried.
  std::chrono::milliseconds pull_timeout{1000};
  /// The destinations of this node's own links (its out-edges). When it relays for a node
  /// that stopped answering and must ship to another node, the leader spawns a link there.
  std::vector<messages::node_index> out_edges;
  /// Ack timeout of the links the leader spawns that way.
  std::chrono::milliseconds relay_ack_timeout{2000};
  /// Turns a topology ("ring", "star:HUB", "mesh", an edge list) into this node's routing,
  /// or says why it cannot (unknown nodes, not strongly connected). Empty: the topology
  /// cannot change at runtime.
  /// The second argument is the current routing (null: the topology the node started with).
  std::function<result<routing>(const std::string&, const routing*)> route;
  /// Called (on the leader's thread) after the node starts routing by a new topology: a
  /// process adds connections to members it did not know, then sends the leader `peers`.
  std::function<void(const routing&)> on_routing;
  /// `--hub-return spoke` at a star's first standby hub: when its link to node
  /// `take_over_from` (the hub) detours, this node writes `take_over_spec` ("star:<self>")
  /// as the cluster's topology, once. The old hub then comes back as a spoke.
  messages::node_index take_over_from = messages::no_node;
  std::string take_over_spec;
  /// Largest key and value a client may write. A larger one is refused when it is written,
  /// naming its size and the limit, so that every write fits the frames that replicate it
  /// (DESIGN.md, "Hostile input"); mlr-node sets them with --max-key-bytes and
  /// --max-value-bytes.
  size_t max_key_bytes = 64u << 10;
  size_t max_value_bytes = 16u << 20;
  /// Changes a subscriber may have unacknowledged before it is dropped.
  uint64_t max_watch_backlog = 100000;
  uint64_t max_watch_backlog_bytes = 64u << 20;
  /// How long a write whose context names writes this node has not applied yet waits for
  /// them (they are pulled meanwhile) before it is refused, and how many may wait.
  std::chrono::milliseconds context_wait{5000};
  size_t max_waiting_writes = 10000;
  size_t max_waiting_bytes = 64u << 20;
  /// The most bytes one read of several keys may answer with.
  size_t max_reply_bytes = 64u << 20;
  /// Called when the node can serve nothing any more: the leader stopped because a handler
  /// threw (a bug, or a user's observer), or its store broke (an fsync failed, so only a
  /// restart recovers what reached the disk). A process then exits (mlr-node: status 3)
  /// rather than go on listening while every request fails. The argument says why.
  std::function<void(const std::string&)> on_failure;
  /// Where the leader reports rare events worth a line in a node's log (state transfers).
  std::function<void(const std::string&)> log;
};

/// Milliseconds since the Unix epoch from the system clock: the default wall clock.
uint64_t system_wall_clock_ms();

leader_actor spawn_leader(caf::actor_system& sys, leader_config cfg,
                          std::unique_ptr<storage::store> store,
                          resolvers::resolver_actor resolver);

} // namespace mlr::actors
