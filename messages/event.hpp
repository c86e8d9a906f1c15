#pragma once
// Value types for what leaders exchange: one replicated write (`event`), a batch of them,
// the acknowledgement, and a stored `version` of a key. These are plain copyable values;
// `codec.hpp` turns the wire ones into Cap'n Proto frames and back.

#include "messages/dot.hpp"
#include "messages/hlc.hpp"
#include "messages/seen_by.hpp"
#include "messages/version_vector.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlr::messages {

/// What a write does (DESIGN.md, "Convergent data types"). put and del are the register's;
/// the others are the typed keys' operations. Numbers are stored and sent: append only.
enum class op_kind : uint8_t {
  put = 0,   ///< register: the value replaces the versions the context names
  del = 1,   ///< register: a tombstone replaces them
  incr = 2,  ///< counter: `total` is the origin's new running total for the key
  sadd = 3,  ///< set: adds `field` (the event's dot tags it)
  srem = 4,  ///< set: removes the tags of `field` the context names
  hset = 5,  ///< map: field `field` becomes `value`
  hdel = 6,  ///< map: removes field `field` (what the context and `removed` name)
  hincr = 7, ///< map: field `field` is a counter; `total` as for incr
  clear = 8, ///< any typed key: removes what the context and `removed` name
  /// text (core/text.hpp): inserts `value` (UTF-8) between `text->left` and `text->right`,
  /// its characters taking seqs `text->first_seq` on
  text_insert = 9,
  text_delete = 10, ///< text: removes the characters `text->ranges` name
};
inline constexpr uint8_t max_op_kind = 10;
inline bool is_text_op(op_kind op) {
  return op == op_kind::text_insert || op == op_kind::text_delete;
}

/// What one stored version is: a register value, or a piece of a typed key's state.
enum class value_kind : uint8_t {
  reg = 0,           ///< a register version (value or tombstone)
  counter = 1,       ///< one origin incarnation's share of a counter (see counter_share)
  element = 2,       ///< a set element (`field`), tagged by the version's dot
  field = 3,         ///< a map field (`field`) holding a register value
  field_counter = 4, ///< one origin incarnation's share of a map field that is a counter
  /// A merging resolver's value for the register versions beside it (core/typed.hpp): what
  /// reads show while exactly those versions are live; its dot is the latest of theirs.
  merged = 5,
  /// A text key's mark of one origin incarnation: its dot is that origin's latest text
  /// operation at the key (the document itself is kept beside the key, core/replica_text).
  text = 6,
  /// One text operation as the document keeps it (under a reserved key of its own): the
  /// event, serialized (storage/serialize.hpp).
  text_op = 7,
  /// A text document's snapshot record (under the reserved key of its operations' prefix):
  /// the encoded document and what it covers (core/replica_text_snapshot.cpp).
  text_snap = 8,
};
inline constexpr uint8_t max_value_kind = 8;

/// A write's removal of part of a counter (a DEL of a counter key, an HDEL of a counter
/// field, or a write of another type over one): of the share of `origin` in `field`, the
/// running total up to counter `upto`, which was `total`, no longer counts. Counter shares
/// are not dots that a context could replace: increments concurrent with the removal must
/// survive, so the removal says how much of the share it saw.
struct counter_removal {
  std::string field;
  source origin;
  uint64_t upto = 0;
  uint64_t total = 0;  ///< modulo 2^64, like every counter total
  bool in_map = false; ///< a share of map field `field` (else of a counter key)
  friend bool operator==(const counter_removal& a, const counter_removal& b) {
    return a.field == b.field && a.origin == b.origin && a.upto == b.upto && a.total == b.total &&
           a.in_map == b.in_map;
  }
};

/// A text character's id (core/text.hpp): its origin and per-document character seq.
struct text_ref {
  source origin;
  uint64_t seq = 0;
  friend bool operator==(const text_ref& a, const text_ref& b) {
    return a.origin == b.origin && a.seq == b.seq;
  }
};
/// Characters (origin, seq) .. (origin, seq + len - 1).
struct text_range {
  source origin;
  uint64_t seq = 0;
  uint64_t len = 0;
  friend bool operator==(const text_range& a, const text_range& b) {
    return a.origin == b.origin && a.seq == b.seq && a.len == b.len;
  }
};
/// What a text operation names besides its text: an insert's first seq and origins, a
/// delete's ranges.
struct text_payload {
  uint64_t first_seq = 0;
  std::optional<text_ref> left;
  std::optional<text_ref> right;
  std::vector<text_range> ranges;
  friend bool operator==(const text_payload& a, const text_payload& b) {
    return a.first_seq == b.first_seq && a.left == b.left && a.right == b.right &&
           a.ranges == b.ranges;
  }
};

/// No node: for optional node fields.
inline constexpr node_index no_node = UINT32_MAX;

struct event {
  dot id;
  hlc time;
  /// Causal dependencies as a delta against the origin's previous event: the origin's
  /// version-vector entries that grew since its previous write (the full vector for the
  /// first write of an incarnation). Forwarders copy it unchanged.
  std::vector<dot> deps;
  /// Dots of the versions of `key` this write replaces.
  std::vector<dot> context;
  seen_by seen;
  std::string key;
  op_kind op = op_kind::put;
  std::string value;
  /// Typed operations: the set element or map field the operation is about.
  std::string field;
  /// incr and hincr: the origin's running total of the counter (modulo 2^64).
  uint64_t total = 0;
  /// Counter shares this write removes (see counter_removal).
  std::vector<counter_removal> removed;
  /// Text operations: what they name (shared: events are copied into logs and batches). An
  /// empty one on a write of another type: it is over a text key, and the characters the
  /// operations its context names inserted go (every node then keeps it with them).
  std::shared_ptr<const text_payload> text;
  /// Not on the wire: the node this event arrived on behalf of (see event_batch), kept
  /// with it while it waits in the causal buffer.
  node_index relay_for = no_node;
};

/// About how many bytes `e` takes in a batch frame (an upper bound for the fixed parts):
/// what links and pull answers add up to stay below the frame limit.
inline size_t encoded_size_bound(const event& e) {
  size_t removed = 0;
  for (auto& r : e.removed)
    removed += 48 + r.field.size();
  if (e.text)
    removed += 64 + 32 * e.text->ranges.size();
  return 96 + e.key.size() + e.value.size() + e.field.size() + removed +
         8 * (e.deps.size() + e.context.size()) + 8 * e.seen.words().size() +
         16 * (1 + e.deps.size() + e.context.size() + e.removed.size());
}

/// Calls fn(source) for every source `e` names (origin, deps, context): what a batch's
/// source table must hold for it.
template <class F> void for_each_source(const event& e, F fn) {
  fn(e.id.origin);
  for (auto& d : e.deps)
    fn(d.origin);
  for (auto& d : e.context)
    fn(d.origin);
  for (auto& r : e.removed)
    fn(r.origin);
  if (e.text) {
    if (e.text->left)
      fn(e.text->left->origin);
    if (e.text->right)
      fn(e.text->right->origin);
    for (auto& r : e.text->ranges)
      fn(r.origin);
  }
}

/// A key context with one dot per origin incarnation: the highest one named. A context
/// replaces every version of an origin incarnation up to the counter it names (every
/// earlier write of an origin is in the causal past of its later ones), so this form
/// means the same and bounds a context by the number of live origin incarnations.
inline std::vector<dot> canonical_context(const std::vector<dot>& context) {
  std::vector<dot> out(context);
  std::sort(out.begin(), out.end());
  std::vector<dot> top;
  for (auto& d : out) {
    if (!top.empty() && top.back().origin == d.origin)
      top.back() = d; // sorted by counter within an origin: the last is the highest
    else
      top.push_back(d);
  }
  return top;
}

/// One version of a key as a store keeps it; siblings are several of these. A typed key
/// keeps its state as versions too: `kind` says which piece each is, `field` names its
/// element or map field (core/typed.hpp reads them).
struct version {
  dot id;
  hlc time;
  bool tombstone = false;
  std::string value;
  value_kind kind = value_kind::reg;
  std::string field{};

  friend bool operator==(const version& a, const version& b) {
    return a.id == b.id && a.time == b.time && a.tombstone == b.tombstone && a.value == b.value &&
           a.kind == b.kind && a.field == b.field;
  }
};

/// The last-writer-wins order, the one place it is spelled: the higher HLC is the later
/// write, ties broken by the whole dot (node, incarnation, counter), so that every node picks
/// the same winner. The lww resolver, reserved keys and single-valued reads (RESP) use it.
inline bool lww_before(const version& a, const version& b) {
  return a.time != b.time ? a.time < b.time : a.id < b.id;
}

/// One chunk of a state transfer (DESIGN.md, "Offline and reconnect"): keys of a consistent
/// snapshot of the sender's key state in ascending order, with the snapshot's version
/// vector, so the receiver can merge them as a state CRDT.
struct state_chunk {
  uint64_t transfer = 0;   ///< id the sender gave the transfer
  version_vector snapshot; ///< what the snapshot covers
  version_vector retired;  ///< the sender's retired-incarnation table
  std::vector<std::pair<std::string, std::vector<version>>> keys;
  bool done = false;       ///< the last chunk
  uint64_t keys_total = 0; ///< keys in the snapshot (an estimate on RocksDB)
  uint64_t keys_sent = 0;  ///< keys sent so far, this chunk included
};

struct event_batch {
  node_index sender = 0;
  uint64_t epoch = 0;
  std::vector<event> events;
  /// Pull answers only: part of what was asked left the sender's log (compacted, or it
  /// arrived by state transfer): the requester should ask for a state transfer.
  bool compacted = false;
  /// Pull answers only: a chunk of a state transfer.
  std::optional<state_chunk> chunk;
  /// A detour: the sender ships these events on behalf of this node, which stopped
  /// answering; the receiver forwards them as that node would have (to its children in
  /// each origin's tree) as well as it would itself.
  node_index relay_for = no_node;
};

struct ack {
  node_index receiver = 0;
  version_vector applied;
  /// Gossip only: what is stable at the receiver (empty in acks of batches).
  version_vector stable;
  /// The message carries the stable vector (gossip), even if empty; heartbeats and acks
  /// of batches do not.
  bool has_stable = false;
  uint32_t received = 0;
  uint32_t duplicates = 0;
};

/// Counters first..last (inclusive) of one source.
struct counter_range {
  source origin;
  uint64_t first = 0;
  uint64_t last = 0;
};

/// What a node asks a holder for when it pulls.
struct pull_request {
  node_index requester = 0;
  std::vector<counter_range> ranges;
  /// Asks for a new state transfer instead of events.
  bool start_transfer = false;
  /// Non-zero: the next chunk of this transfer, the keys after `after_key`.
  uint64_t transfer = 0;
  std::string after_key;
};

} // namespace mlr::messages
