#pragma once
// The values that go into and come out of the replica (replica.hpp): its configuration and
// observer, the routing it installs, conflicts, the ready value (everything it asks of its
// shell), write requests and the batch budget. No CAF, no IO.

#include "core/change.hpp"
#include "core/replica_stats.hpp"
#include "messages/codec.hpp"
#include "messages/conflict_record.hpp"
#include "messages/event.hpp"
#include "messages/version_vector.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace mlr::core {

class replica;

/// Sees every application and every handled message: tests hang invariant checkers here.
/// Called on the leader's thread; implementations record, they do not assert.
class replica_observer {
public:
  virtual ~replica_observer() = default;
  /// Just before `e` is applied at `self` (`local`: a write taken at this node).
  virtual void on_apply(messages::node_index self, const messages::event& e, bool local) = 0;
  /// After the leader handled one message that may have changed the replica.
  virtual void on_handled(const replica& r) = 0;
  /// A state transfer ended at `self`: its version vector now also covers `snapshot`,
  /// whose events (and those of the retired incarnations the sender's table names) it
  /// holds without having applied them one by one.
  virtual void on_state_transfer(messages::node_index, const messages::version_vector&) {}
};

/// When a write counts as durable (--sync): `none` leaves it to the OS (a power cut loses
/// recent writes); `batch` answers writes after one fsync covering every commit since the
/// last (group commit); `always` commits each input with an fsync.
enum class sync_policy { none, batch, always };

struct replica_config {
  messages::node_index self = 0;
  /// What durable means on a durable store; a memory store ignores it.
  sync_policy sync = sync_policy::batch;
  /// Random id of this incarnation; a node that cannot prove its past takes a new one.
  uint64_t incarnation = 0;
  /// forward_to[o] = the nodes this node forwards events from origin node `o` to: its
  /// children in o's spanning tree. Indexed by node; missing entries mean "none".
  std::vector<std::vector<messages::node_index>> forward_to;
  /// Every node's forwarding table: trees[o][x] = the children of node x in o's tree. Used
  /// when events arrive on behalf of a node that stopped answering (a detour); empty: such
  /// events are forwarded as this node's own table says only.
  std::vector<std::vector<std::vector<messages::node_index>>> trees;
  /// Most events held while waiting for their causal past, and most bytes of them.
  size_t max_buffered = 1u << 20;
  size_t max_buffered_bytes = 256u << 20;
  uint64_t max_clock_offset_ms = 500;
  /// The conflict feed, kept in the store: at most this many records and about this many
  /// bytes of them (the oldest are dropped first; zero records: none are kept). A record
  /// whose input values exceed a sixteenth of the bytes keeps 1 KiB of each.
  size_t conflict_feed_records = 10000;
  size_t conflict_feed_bytes = 64u << 20;
  /// How long a gap in what this node knows exists may go without progress before it pulls.
  uint64_t pull_grace_ms = 500;
  /// Most events one pull answer carries.
  size_t max_pull_events = 4096;
  /// A batch or pull answer stops growing at about this many bytes (it always carries at
  /// least one event), so that no frame ever exceeds the frame limit (64 MiB): a value is
  /// at most 16 MiB, and a batch is never more than this plus one event.
  size_t max_batch_bytes = 8u << 20;
  std::shared_ptr<replica_observer> observer;
  /// Log entries kept even when stable (a window for slow peers to catch up from the log).
  uint64_t log_retention = 10000;
  /// A loaded text document collects its stable tombstones once this many still know their
  /// deleters, and writes a snapshot record (dropping the stored operations that are stable)
  /// once this many operations, or an eighth of its items if that is more, were applied
  /// since the last one.
  size_t text_compact_after = 1024;
  /// Loaded text documents are evicted from memory, least recently used first, at garbage
  /// collection while their items (counting each document as at least 64) exceed this;
  /// the one used last stays. An evicted document is rebuilt from its snapshot record and
  /// records at next use.
  size_t text_loaded_items = size_t{1} << 20;
  /// For this long after the topology changed, a gap is pulled after `pull_grace_ms_changed`
  /// instead: while nodes route by different trees, events can miss a node, and version
  /// vectors (not the trees) decide what is still owed.
  uint64_t topology_change_window_ms = 3000;
  uint64_t pull_grace_ms_changed = 100;
  /// A state transfer whose receiver asked nothing for this long is dropped (its hold on
  /// log compaction released).
  uint64_t transfer_idle_ms = 30000;
  /// Size of one state-transfer chunk: at most this many keys, or about this many bytes.
  size_t transfer_chunk_keys = 1024;
  size_t transfer_chunk_bytes = 1u << 20;
  /// A node that starts without state (restarted empty, or new) takes writes once it holds
  /// what a peer holds (see caught_up); with no report from a peer with a history, after
  /// hearing every member or this long after it started. Zero: at once (no gossip, so
  /// nothing is ever collected).
  uint64_t catch_up_patience_ms = 2000;
  bool catch_up_wait = true;
  /// Draws a new incarnation id; used when a peer shows this node a dot of its own beyond
  /// what it recovered (its past was lost). Empty: such a dot is only counted.
  std::function<uint64_t()> new_incarnation;
};

/// A state transfer this node receives, as `status` shows it.
struct transfer_progress {
  bool active = false;
  messages::node_index from = 0;
  uint64_t keys_done = 0;
  uint64_t keys_total = 0; ///< the sender's estimate
};

/// Keys starting with this are the cluster's own (retired incarnations now; topology
/// later). Clients cannot write them.
inline const std::string reserved_key_prefix = std::string("\0mlr:", 5);
/// The cluster's topology (DESIGN.md, "Topologies"): a last-writer-wins key whose winning
/// version's dot is the topology epoch. Its value is an edge list ("a -> b" lines).
inline const std::string topology_key = reserved_key_prefix + "topology";
/// Text documents keep each operation under a key of its own below this (core/replica_text:
/// the key's length, the key, then the operation's dot), so that an edit writes one small
/// record, not the document, and a state transfer sends them like any key. The prefix of a
/// document's operations, alone, is its snapshot record (core/detail/text_keys.hpp).
inline const std::string text_op_prefix = reserved_key_prefix + "text:";

/// How one node routes under a topology: what the leader installs when the topology key
/// changes. Built outside the actors (topology/), which know graphs.
struct routing {
  /// What the topology key holds: the membership lines and the shape as given ("mesh",
  /// "ring", "star:HUB" or an edge list), so that a membership merged in later (a concurrent
  /// add) is laid out by the same shape.
  std::string stored;
  std::string canonical; ///< the membership lines and every edge: what status shows
  std::vector<std::vector<messages::node_index>> forward_to;
  std::vector<std::vector<std::vector<messages::node_index>>> trees;
  /// This node's out-edges, each with its detours (DESIGN.md, "Topologies").
  std::vector<std::pair<messages::node_index, std::vector<messages::node_index>>> links;
  /// The membership, in node-index order (append only: indexes are never reused), and
  /// which members are live (false: removed, decommissioned).
  std::vector<std::string> members;
  std::vector<bool> live;
  /// Where members added at runtime listen (name, "host:port"), for processes.
  std::vector<std::pair<std::string, std::string>> addresses;
};

/// One conflict as the resolver saw it, and its outcome: an entry of the conflict feed.
using messages::conflict_record;

/// Who decided a conflict, and when: what the shell adds to the feed's record.
struct decided_by {
  std::string resolver;
  uint64_t at_ms = 0; ///< wall clock, ms since the epoch
};

/// Concurrent versions that need the resolver.
struct conflict {
  std::string key;
  std::vector<messages::version> versions;
};

/// Everything the replica asks of its shell (the leader actor) after an input, in one value:
/// etcd raft's Ready. The shell takes it after each input with replica::take_ready() and
/// carries it out; nothing leaves the replica any other way.
struct ready {
  /// The store holds changes the shell has not committed (this node's metadata included):
  /// commit them, with an fsync when `sync` says so, and tell the replica: committed().
  bool commit = false;
  bool sync = false;
  /// Schedule one fsync (store::sync) covering every commit so far, and tell the replica
  /// how it went: synced(). Asked once until answered (--sync batch).
  bool group_sync = false;
  /// Answers to the writes applied so far wait for that fsync: hold them until a ready
  /// with `release_acks` (refuse them if it fails).
  bool hold_acks = false;
  bool release_acks = false;
  /// The durable end moved to this (links and pull answers ship up to it); waiting links'
  /// batches up to it are in `batches`.
  std::optional<uint64_t> durable_end;
  /// What waiting links (replica::link_waiting) ship next: a batch per destination, from
  /// the log up to the shippable end. `from` is where that link stood; a batch with no
  /// events moves it past entries that were not for it. A link takes one only if it still
  /// stands at `from` and ships to `ship_to`; otherwise it says where it stands again,
  /// which is always safe (the entries stay in the log).
  struct outgoing_batch {
    messages::node_index dest = 0;
    messages::node_index ship_to = 0;
    uint64_t from = 0;
    uint64_t next = 0;
    messages::event_batch batch;
  };
  std::vector<outgoing_batch> batches;
  /// A write or received events came in since the last take (what the sync policy is
  /// about; garbage collection, resolutions and recovery are not).
  bool events_in = false;
  /// Concurrent versions met: ask the resolver; answer with resolve() or unresolved().
  std::vector<conflict> conflicts;
  /// Start a link to each: this node now relays for a node that stopped answering, and
  /// may have no link to these yet.
  std::vector<messages::node_index> relay_links;
  /// The topology key's winning value changed (a write, a batch, a state transfer, or
  /// recovery): route by it.
  std::optional<std::string> topology;
  /// Keys that held several versions when the store was opened: a resolution that was
  /// pending when the node stopped is lost with it, so ask again (the first take only).
  std::vector<std::string> recovered_siblings;
  /// Lines for the node's log (state transfers starting, progressing, done).
  std::vector<std::string> log;
  /// What was applied, in order, while report_changes(true) (someone subscribed).
  std::vector<change> changes;
};

struct write_request {
  std::string key;
  messages::op_kind op = messages::op_kind::put;
  std::string value;
  /// When set, `context` names the versions the writer replaces (possibly none); when not,
  /// the write replaces every version this node holds of the key.
  bool has_context = false;
  std::vector<messages::dot> context;
  /// Typed operations: the set element or map field (core/typed.hpp).
  std::string field{};
  /// incr and hincr: what to add (negative: subtract).
  int64_t delta{0};
  /// Text (core/text.hpp): text_insert puts `value` (UTF-8) at `index`; text_delete removes
  /// `count` characters at `index` (code points, clipped to the end). With a context, the
  /// index counts in the document as the editor saw it: at the version those dots name.
  uint64_t index{0};
  uint64_t count{0};
};

/// What one batch may still take: bytes below the batch limit and at most
/// messages::max_batch_sources sources (its 16-bit source indexes). The first event always
/// fits.
class batch_budget {
public:
  explicit batch_budget(size_t max_bytes) : max_bytes_(max_bytes) {}
  /// Counts `e` in and returns true, or returns false when it does not fit any more.
  bool take(const messages::event& e);

private:
  size_t max_bytes_;
  size_t bytes_ = 0;
  size_t events_ = 0;
  std::set<messages::source> sources_;
};

} // namespace mlr::core
