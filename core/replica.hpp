#pragma once
// The state machine of one leader, without CAF: dots, deps, key contexts and HLC for local
// writes; duplicate detection, causal delivery and conflict detection for remote events;
// seen-by stamping and per-origin tree forwarding for the log. The `leader` actor wraps
// exactly one replica and adds messaging, time and the resolver; keeping the logic here
// makes every rule testable without an actor system and keeps CAF out of this header.
//
// Invariants (checked by tests after every step):
// - the version vector only grows;
// - an event is applied (and appended to the log) at most once;
// - an event is applied only after everything in its origin's causal past.

#include "core/causal_buffer.hpp"
#include "core/detail/position_index.hpp"
#include "core/detail/text_state.hpp"
#include "core/replica_stats.hpp"
#include "core/replica_types.hpp"
#include "core/text.hpp"
#include "messages/codec.hpp"
#include "messages/event.hpp"
#include "messages/hlc.hpp"
#include "messages/version_vector.hpp"
#include "storage/store.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace mlr::core {

class replica {
public:
  replica(replica_config cfg, std::unique_ptr<storage::store> store);

  /// What the inputs since the last call ask of the shell (see `ready`). Call it after
  /// every input; it writes the replica's metadata to the store when something changed.
  ready take_ready();

  /// Applies a local write at wall time `now_ms` (concurrent versions: take_ready()).
  /// Its context must be held here (see missing_context): a context is part of the write's
  /// causal past, so the write's deps cover it and every receiver applies it after them.
  messages::dot write(const write_request& w, uint64_t now_ms);

  /// False while this node, started without state, has not yet caught up with its peers:
  /// a write it took then would not follow deletes the others already forgot (collected
  /// as stable everywhere), and a node that still holds such a delete could let it win
  /// over the write while the others keep the write. Caught up means: it holds everything
  /// that the report of a peer with a history (a non-empty stable vector), as it stood when
  /// this node first saw one, showed and somebody still reports holding; or, when no such
  /// peer was heard, everything every peer it heard reported, once it heard every member
  /// or, having heard at least one, `catch_up_patience_ms` after it started (the first
  /// call). Once true, it stays true.
  bool caught_up(uint64_t now_ms);

  /// The dots a write's context names that this node has not applied (read at another
  /// node, or before this node restarted empty): the write must wait for them.
  std::vector<messages::dot> missing_context(const write_request& w) const;
  /// Pull these (a waiting write needs them), as if a buffered event depended on them.
  void want(const std::vector<messages::dot>& dots);
  /// No write waits any more: stop pulling for what they named.
  void clear_wanted();

  struct receive_result {
    uint32_t received = 0;
    uint32_t duplicates = 0;
  };
  /// Takes a batch from a peer: dedup, causal delivery, apply, forward.
  receive_result receive(messages::event_batch batch, uint64_t now_ms);

  /// Applies a resolver's decision for versions it was given. Versions that the decision
  /// discards are removed if they are still live; later versions are untouched. True when
  /// the key still needs the resolver (versions came after the question): the next
  /// take_ready() asks about what it holds now.
  bool resolve(const conflict& c, const std::vector<messages::dot>& keep,
               const decided_by& by = {});
  /// Applies a merging resolver's answer: `value` stands for the versions it was given
  /// (core/typed.hpp, "Merged values"). False, and nothing changes, when the key's register
  /// versions are no longer exactly those; then the next take_ready() asks about what the
  /// key holds now.
  bool merge(const conflict& c, std::string value, const decided_by& by = {});
  /// Records that the resolver failed: the versions stay as siblings.
  void unresolved(const conflict& c, std::string reason, const decided_by& by = {});

  /// Reports every change applied from now on in ready::changes (off: none are kept).
  void report_changes(bool on) { report_changes_ = on; }

  /// Live versions of a key (tombstones included), sorted by dot; empty if never written.
  std::vector<messages::version> versions(const std::string& key) const;

  /// A text key's document (core/text.hpp): its length and, in UTF-8, `count` characters
  /// from `start` (clipped to the end); none when the key does not show as text. A text
  /// write (write_request) that changes nothing (an empty insert, a delete past the end, text
  /// that is not UTF-8) is not issued: write() returns the null dot.
  struct text_view {
    uint64_t length = 0;
    std::string text;
  };
  std::optional<text_view> read_text(const std::string& key, uint64_t start = 0,
                                     uint64_t count = UINT64_MAX);
  /// Its length alone (O(1)); none when the key does not show as text.
  std::optional<uint64_t> text_length(const std::string& key);
  /// Text documents loaded in memory now (see replica_config::text_loaded_items).
  size_t loaded_texts() const { return texts_.size(); }
  /// Keys under text_op_prefix hold a document's operations, written only by the replica.
  static bool is_text_op_key(const std::string& key);

  /// Up to `max_events` log entries from `from` that this node forwards to `dest`,
  /// scanning at most `max_scan` entries, to be shipped to `ship_to` (`dest` itself, or a
  /// detour on its behalf). Entries that `ship_to`'s gossiped vector already covers are
  /// skipped. `next` is where the next read starts. What a waiting link is handed
  /// (link_waiting) is read with it; core tests call it to stand in for links.
  struct fetch_result {
    messages::event_batch batch;
    uint64_t next = 0;
  };
  fetch_result fetch(messages::node_index dest, uint64_t from, size_t max_events, size_t max_scan,
                     messages::node_index ship_to = messages::no_node);

  /// The link to `dest` stands at `from` and has room for a batch (it replaces what that
  /// link said before): the next ready whose shippable end is beyond `from` (the next one
  /// at all, when the log already is) carries one batch for it (ready::batches), read like
  /// fetch(dest, from, max_events, max_scan, ship_to), and it waits no longer. Links are
  /// handed everything they ship this way: catching up, after a go-back, and live.
  void link_waiting(messages::node_index dest, uint64_t from, messages::node_index ship_to,
                    size_t max_events, size_t max_scan);

  /// Records another node's version vector, as gossiped, and what is stable there: each
  /// report replaces that node's previous vector (a node restarted empty holds less than
  /// before), and so does its stable vector when the message carries one (gossip does;
  /// heartbeats and the welcome do not, and leave the previous one). `now_ms`: when it
  /// arrived.
  void observe_report(messages::node_index node, const messages::version_vector& vv,
                      const messages::version_vector& stable = {}, uint64_t now_ms = 0,
                      bool carries_stable = true);

  /// A pull to make now, if some gap in what this node knows exists made no progress for
  /// the grace period: whom to ask, and for which ranges (buffered events left out).
  struct pull_plan {
    messages::node_index holder = 0;
    messages::pull_request request;
  };
  /// `eager`: the previous pull made progress, so every open gap is due now (catching up
  /// a large backlog one answer after another instead of one per grace period).
  std::optional<pull_plan> plan_pull(uint64_t now_ms, bool eager = false);
  /// The pull was sent (stats count only what really left).
  void pull_sent();
  /// The pull to `holder` went unanswered: the next plan asks another holder.
  void pull_failed();
  /// Answers a pull from this node's log, in log order (a causal order). When part of it
  /// left the log (compacted), the answer says so and carries no events; the requester then
  /// asks for a state transfer, whose chunks are answers to further pulls. Commit the store
  /// before serving a `start_transfer` request: the snapshot holds only committed state.
  messages::event_batch serve_pull(const messages::pull_request& req, uint64_t now_ms = 0);
  /// Takes a pull answer: like a batch, counted separately.
  receive_result receive_pulled(messages::event_batch batch, uint64_t now_ms);

  /// Stability and garbage collection (DESIGN.md): events every node holds, and with which
  /// nothing concurrent can still arrive, are stable; their tombstones are forgotten and
  /// their log entries dropped (keeping `log_retention` entries). Call it periodically.
  /// `now_ms` expires idle outgoing state transfers (0: never).
  void collect_garbage(uint64_t now_ms = 0);
  /// Retires this node's own earlier incarnations once every node holds all of them: a
  /// write of the reserved key `\0mlr:retired:<node>` whose application (here and at every
  /// node) folds them from the version vectors into the permanent table. The dot written,
  /// if any.
  std::optional<messages::dot> retire_incarnations(uint64_t now_ms);
  /// Retired (origin, incarnation) -> final counter: deps up to it count as covered, dots
  /// above it are rejected.
  const messages::version_vector& retired() const { return retired_; }
  transfer_progress transfer() const;
  /// State transfers this node serves now, and the distinct snapshots they hold.
  std::pair<size_t, size_t> outgoing_transfers() const;
  /// Routes by another topology from now on (entries already logged keep their targets).
  void set_routing(const routing& r);
  /// The topology epoch: the dot of the topology key's winning version (none: the static
  /// topology the node started with).
  std::optional<messages::dot> epoch() const { return epoch_; }
  /// False for a member the topology removed (decommissioned).
  bool is_live(messages::node_index n) const { return n >= live_.size() || live_[n]; }
  /// A live member of the cluster as this node routes it (what a peer may speak for).
  bool is_member(messages::node_index n) const {
    auto members = std::max(live_.size(), cfg_.forward_to.size());
    return n < members && is_live(n);
  }
  /// What is stable here: every event it covers is held everywhere.
  const messages::version_vector& stable() const { return stable_; }

  /// Store completions, the shell's answers to a ready value (core/replica_durability.cpp):
  /// the commit it asked for succeeded (`synced`: with the fsync asked for); the group
  /// fsync it asked for succeeded or failed; the store takes writes again after refusing
  /// them (a full disk freed), so what it holds is on disk.
  void committed(bool synced);
  void synced(bool ok);
  void store_recovered();
  /// Asks for a commit with an fsync at the next take, covering everything so far: before
  /// a state transfer's snapshot (it holds committed state only, and no receiver may hold
  /// a dot a power cut could take from this node) and, `clean`, at an orderly stop, which
  /// marks the store as cleanly shut down.
  void make_durable(bool clean = false);
  /// Where the link to `dest` is acknowledged up to (written with the next commit: losing
  /// the latest only re-sends a little), and what was kept (0: none).
  void keep_cursor(messages::node_index dest, uint64_t pos);
  uint64_t kept_cursor(messages::node_index dest) const;

  /// Where links and pull answers stop: the durable end for a durable store, the log's end
  /// for the memory store (nothing of it survives anyway).
  uint64_t shippable_end() const { return store_->durable() ? durable_end_ : store_->log_end(); }
  /// The store, for the shell to carry out what a ready value asks (commit, sync, recover)
  /// and nothing else: the replica writes it.
  storage::store& mutable_store() { return *store_; }

  const messages::version_vector& applied() const { return applied_; }
  /// The join of every version vector gossiped to this node, and its own.
  messages::version_vector known() const;
  const replica_stats& stats() const { return stats_; }
  /// The conflict feed: records after sequence number `after`, in order, at most `limit`
  /// of them and about `max_bytes` (at least one). Written with the outcome's commit, so a
  /// durable store keeps them across restarts; the oldest are trimmed (see
  /// replica_config::conflict_feed_records), so the first may be past `after` + 1.
  std::vector<conflict_record> conflicts(uint64_t after, size_t limit,
                                         size_t max_bytes = 4u << 20) const;
  /// The feed's kept range: sequence numbers [first, next).
  std::pair<uint64_t, uint64_t> conflict_feed_range() const { return {feed_.first, feed_.next}; }
  messages::source self() const { return self_; }
  const storage::store& store() const { return *store_; }
  uint64_t log_end() const { return store_->log_end(); }
  size_t buffered() const { return buffer_.size(); }
  /// Memory the replica holds per event besides the log: positions indexed, and bytes of
  /// events in the causal buffer (both bounded: by the log, and by max_buffered_bytes).
  size_t indexed_positions() const { return positions_.entries(); }
  size_t buffered_bytes() const { return buffer_.bytes(); }

private:
  void apply(messages::event e, std::vector<conflict>& conflicts);
  void apply_remote(messages::event e, std::vector<conflict>& conflicts);
  void recover();
  // A peer holds a dot of this node's incarnation that this node does not: its past was
  // lost, so it must not issue those counters again.
  void check_own_dot(const messages::dot& d);
  bool held(const messages::dot& d) const { return applied_.covers(d) || retired_.covers(d); }
  // Every dot the event names (its own, its deps, its context) is of a member node.
  bool names_members(const messages::event& e) const;
  // Moves (origin, incarnation) entries from the version vectors into the retired table.
  void fold(const messages::version_vector& retiring);
  void release_buffered(std::vector<conflict>& conflicts);
  messages::event_batch serve_transfer(const messages::pull_request& req, uint64_t now_ms);
  void merge_chunk(messages::node_index from, const messages::state_chunk& c,
                   std::vector<conflict>& conflicts);
  void finish_transfer(std::vector<conflict>& conflicts);
  static constexpr uint64_t not_in_log = position_index::not_in_log;
  void index_position(const messages::dot& d, uint64_t pos) { positions_.set(d, pos); }
  void record(conflict_record r, const decided_by& by);
  void recover_feed();
  void trim_feed();
  // Text keys (replica_text.cpp).
  using loaded_text = detail::loaded_text;
  loaded_text& text_state(const std::string& key);
  text::document& text_doc(const std::string& key) { return text_state(key).doc; }
  size_t replay(loaded_text& t,
                std::map<messages::source, std::map<uint64_t, messages::event>>& queues);
  using text_snapshot = detail::text_snapshot; // replica_text_snapshot.cpp
  static std::optional<text_snapshot> parse_text_snapshot(const std::vector<messages::version>& vs,
                                                          uint64_t max_deleters);
  void snapshot_text(const std::string& key, loaded_text& t);
  bool consider_text_snapshot(const std::string& store_key,
                              const std::vector<messages::version>& theirs);
  void drop_if_empty(const std::string& key);
  void transfer_finished();
  void collect_text_tombstones();
  std::optional<std::vector<text::delta>> text_step(text::document& doc, const messages::event& e);
  bool local_text(const write_request& w, messages::event& e);
  void apply_text(const messages::event& e, std::vector<text_edit>& edits);
  void over_text(const std::vector<messages::version>* current, messages::event& e);
  void text_state_changed(const std::string& store_key);
  void report_text_changes();
  std::map<std::string, std::unique_ptr<loaded_text>> texts_; // loaded documents
  uint64_t text_uses_ = 0;
  void evict_texts();
  std::vector<text::delta> local_edits_;    // what the local text write being applied did
  std::optional<messages::dot> local_text_; // the local text write being applied
  std::set<std::string> texts_changed_;     // by a state transfer, to report
  std::set<std::string> transfer_texts_;    // by the one running
  conflict_record resolved_record(const conflict& c);
  // Pieces of plan_pull (replica_pull.cpp) and collect_garbage (replica_gc.cpp).
  uint64_t have_of(const messages::source& s) const;
  messages::version_vector wanted_now();
  std::vector<messages::source> due_sources(const messages::version_vector& wanted, uint64_t now_ms,
                                            bool eager, uint64_t grace);
  std::optional<pull_plan> pull_for(const std::vector<messages::source>& due,
                                    const messages::version_vector& wanted, uint64_t now_ms);
  bool advance_stability();
  bool stable_everywhere(const messages::dot& d) const;
  void collect_tombstones();
  void compact_log();

  replica_config cfg_;
  messages::source self_;
  std::unique_ptr<storage::store> store_;
  messages::version_vector applied_;
  messages::version_vector applied_at_last_write_;
  uint64_t counter_ = 0;
  messages::hlc_clock clock_;
  causal_buffer buffer_;
  replica_stats stats_;
  struct feed_state {
    uint64_t first = 1, next = 1; // records [first, next) are kept
    uint64_t bytes = 0;
  } feed_;
  // Per key, the inputs of its last unresolved record (a retry of the same question is
  // not recorded again).
  std::map<std::string, std::vector<messages::dot>> unresolved_inputs_;
  // Where each dot sits in the log (lets a pull answer find events without scanning it);
  // compacted with the log.
  position_index positions_;
  std::map<messages::node_index, messages::version_vector> reported_;
  // What every other node reported stable: a tombstone is collected only once it is stable
  // everywhere, so that every node that still holds it knows that anything arriving now
  // is causally after it (see apply), whatever the clocks say.
  std::map<messages::node_index, messages::version_vector> reported_stable_;
  struct gap {
    uint64_t since_ms = 0;
    uint64_t applied_then = 0;
  };
  std::map<messages::source, gap> gaps_;
  // Buffered sources with an event whose predecessor or a dep nobody reports holding,
  // since when; and when each node last reported (see drop_orphans).
  std::map<messages::source, uint64_t> orphans_;
  std::map<messages::node_index, uint64_t> reported_at_;
  void drop_orphans(uint64_t now_ms);
  uint64_t pull_rotation_ = 0;
  uint64_t durable_end_ = 0;
  struct waiting_link {
    uint64_t from = 0; ///< where the link stands
    messages::node_index ship_to = 0;
    size_t max_events = 0;
    size_t max_scan = 0;
  };
  std::map<messages::node_index, waiting_link> waiting_links_;
  void take_batches(ready& out);
  bool full_deps_next_ = false; // after recovery: the previous write's vector is unknown
  messages::version_vector stable_;
  // The meet of every node's vector becomes stable once this node covers their join as
  // it was when the meet was taken: then nothing concurrent with it can still arrive.
  struct stability_candidate {
    messages::version_vector meet;
    messages::version_vector join;
  };
  std::optional<stability_candidate> candidate_;
  std::set<std::string> tombstoned_; // keys whose latest write was a delete
  std::vector<std::string> recovered_siblings_;
  bool caught_up_ = false;
  std::optional<messages::version_vector> catch_up_target_;
  std::optional<uint64_t> started_ms_;
  messages::version_vector retired_;
  // Dots that writes waiting at this node named in their contexts: pulled like gaps.
  messages::version_vector wanted_;
  // What events dropped from a full causal buffer waited for: pulled like gaps (about this
  // many sources at most; entries leave once applied or retired, and all of them every
  // orphan patience period, see drop_orphans).
  messages::version_vector overflow_wanted_;
  static constexpr size_t max_overflow_wanted = 4096; // checked before an event's entries
  uint64_t overflow_wanted_since_ = 0;
  // Outgoing state transfers, by id: each holds a snapshot and holds back log compaction
  // at the position where the snapshot was taken.
  struct transfer_out {
    messages::node_index to = 0;
    /// Shared by transfers that started while nothing changed (a snapshot is a full copy
    /// on the memory store).
    std::shared_ptr<storage::state_snapshot> snap;
    messages::version_vector snapshot_vv;
    uint64_t hold = 0;
    uint64_t keys_sent = 0;
    uint64_t last_ms = 0;
  };
  std::map<uint64_t, transfer_out> transfers_out_;
  uint64_t transfer_seq_ = 0;
  // The incoming state transfer, if one is wanted or running (id 0: not started yet).
  struct transfer_in {
    messages::node_index from = 0;
    uint64_t id = 0;
    messages::version_vector snapshot;
    messages::version_vector retired;
    std::string after;
    uint64_t keys_done = 0;
    uint64_t keys_total = 0;
    uint32_t failures = 0;
    std::set<std::string> seen; // keys the snapshot had
    // Text snapshot records taken from the sender, stored when it finishes (documents built
    // while it runs use what this node held before).
    std::map<std::string, std::vector<messages::version>> text_snapshots;
  };
  std::optional<transfer_in> transfer_;
  // Reserved keys are the cluster's own: last writer wins, always, whatever the resolver.
  void reduce_reserved(const std::string& key, std::vector<messages::version>& live);
  std::optional<messages::dot> epoch_;
  std::vector<bool> live_;        // empty: every node of forward_to is a live member
  bool routing_changed_ = false;  // since the last plan_pull
  uint64_t fast_pulls_until_ = 0; // steady ms: the short grace period applies until then
  messages::hlc epoch_time_;
  std::string topology_value_;
  std::optional<std::string> topology_update_;
  // What take_ready hands out and what it saw at the last take (to tell what changed).
  ready ready_;
  bool report_changes_ = false;
  struct taken_state {
    uint64_t log_end = 0;
    uint64_t collected = 0;
    uint64_t transfer_keys = 0;
    transfer_progress transfer;
  };
  taken_state taken_;
  bool dirty_ = false; // a resolution changed the store
  // Durability (replica_durability.cpp): what the inputs since the last take owe, and
  // where the commit asked for, the last commit done and the group fsync stand.
  void persist();
  void take_durability(ready& out);
  void advance_durable(uint64_t end);
  bool events_in_ = false;
  bool force_sync_ = false;
  bool clean_ = false;
  uint64_t asked_end_ = 0;     // the log's end at the commit asked for
  bool asked_durable_ = false; // that commit makes the log durable up to asked_end_
  bool asked_sync_ = false;    // with an fsync
  uint64_t committed_end_ = 0; // the log's end at the last commit done
  bool sync_pending_ = false;  // a group fsync asked for and not answered
  void report_transfer(const transfer_progress& before, const transfer_progress& after,
                       std::vector<std::string>& log) const;
  std::set<messages::node_index> relay_dests_;
  std::set<messages::node_index> relay_dests_reported_;
};

} // namespace mlr::core
