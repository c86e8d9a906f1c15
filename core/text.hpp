#pragma once
// A collaborative text document (DESIGN.md, "Text"): a sequence CRDT whose elements are
// Unicode code points. Users edit by index; replicas apply by element id.
//
// - Ids. Every character has an id (origin, seq): the origin replica (node and
//   incarnation) and a per-origin, per-document character clock. An insert of n characters
//   takes n consecutive seqs.
// - Insert. The origin converts the index to the id of the character before it (origin
//   left, none at the start) and the element right after that one in the sequence (origin
//   right, deleted or not; none at the end). Receivers place the run between the two with
//   YATA's rule (Yjs's integration): concurrent inserts with the same left origin are
//   ordered by origin, and an insert skips over what was inserted after elements it does
//   not know. So two people typing forward at one place never interleave character by
//   character: one run ends up after the other.
// - Delete names id ranges: exactly the characters its author saw. A deleted character
//   stays in the sequence as a tombstone (length only, its text dropped), so that inserts
//   that name it still find their place.
// - Runs. Consecutive characters of one origin, inserted one after another, are one item
//   (run-length); an edit inside a run splits it.
// - Index lookup walks a balanced tree (a treap) whose nodes keep the count of visible
//   characters below them: O(log n) per edit, not a scan.
//
// IO-free and deterministic: the same operations in any causal order give the same
// document at every replica.

#include "messages/dot.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mlr::core::text {

/// One character's id.
struct char_id {
  messages::source origin;
  uint64_t seq = 0;
  friend bool operator==(const char_id& a, const char_id& b) {
    return a.origin == b.origin && a.seq == b.seq;
  }
  friend bool operator!=(const char_id& a, const char_id& b) { return !(a == b); }
};

/// An insert as it travels: `text` (UTF-32) gets ids (origin, first_seq), (origin,
/// first_seq + 1), ... and goes between `left` and `right`.
struct insert_op {
  messages::source origin;
  uint64_t counter = 0; ///< with origin, the operation's dot (in a node: its event's)
  uint64_t first_seq = 0;
  std::optional<char_id> left;
  std::optional<char_id> right;
  std::u32string text;
};

/// Characters (origin, seq) .. (origin, seq + len - 1).
struct id_range {
  messages::source origin;
  uint64_t seq = 0;
  uint64_t len = 0;
};

/// A delete as it travels: the characters its author saw and removed.
struct delete_op {
  messages::dot id; ///< the operation's dot (in a node: its event's)
  std::vector<id_range> ranges;
};

/// What an applied operation did to the visible document, by index (what an editor needs
/// to apply a remote edit without reloading): insert `text` at `index`, or delete `count`
/// characters at `index`. In order: each delta's index counts the deltas before it.
struct delta {
  bool insert = true;
  uint64_t index = 0;
  std::u32string text; ///< insert
  uint64_t count = 0;  ///< delete
};

/// UTF-8 to code points; nullopt if `s` is not valid UTF-8 (overlong forms, surrogates
/// and values past U+10FFFF included).
std::optional<std::u32string> from_utf8(const std::string& s);
std::string to_utf8(const std::u32string& s);

/// GETRANGE's arithmetic over a document of `length` code points: `start` and `end`
/// inclusive, negative ones counting from the end, then clamped. The first code point and
/// how many (0: an empty range).
std::pair<uint64_t, uint64_t> range_of(int64_t start, int64_t end, uint64_t length);

/// A past state of the document as an author saw it: per origin, the highest operation
/// counter it had applied (a version vector over the operations' dots; an origin not named
/// is one none of whose operations it had seen).
using version = std::map<messages::source, uint64_t>;

class document {
public:
  document();

  /// Visible characters.
  uint64_t length() const;
  /// The visible text, whole, or `count` characters from `start` (clipped to the end).
  std::u32string read() const;
  std::u32string read(uint64_t start, uint64_t count) const;

  /// Local edits as operation `id` (its origin is the editing replica, its counter higher
  /// than that origin's earlier ones): the operation to send (already applied here).
  /// Indexes past the end are clipped to it; an empty insert or delete gives an empty op.
  /// With `at`, the index counts in the document as it was at that version (an editor
  /// that had not yet seen everything this replica has: its characters, and the ones
  /// visible then, are what the index counts); it must cover what this replica's
  /// operations of `id`'s origin were. That lookup walks the document (O(n)); without
  /// `at`, it is O(log n).
  /// `applied`, if given, receives what the edit did by index (as apply() reports it).
  insert_op insert(const messages::dot& id, uint64_t index, const std::u32string& text,
                   const version* at = nullptr, std::vector<delta>* applied = nullptr);
  delete_op erase(const messages::dot& id, uint64_t index, uint64_t count,
                  const version* at = nullptr, std::vector<delta>* applied = nullptr);
  /// Deletes, as operation `id`, every visible character that an insert `seen` covers (a
  /// write of another type over the text removes what its author saw): the operation,
  /// applied. O(n) in the document's items.
  delete_op erase_seen(const messages::dot& id, const version& seen,
                       std::vector<delta>* applied = nullptr);

  /// Remote operations (and local ones, which apply the same way). Applying one twice
  /// changes nothing (no deltas). Causal delivery is assumed: nullopt, with nothing
  /// changed, for what an honest peer never sends: an insert whose left or right is not
  /// known here or whose right is not after its left, one that skips or overlaps its
  /// origin's seqs or does not raise its counter, one with a value that is not a code
  /// point, or a delete naming a character not known here.
  std::optional<std::vector<delta>> apply(const insert_op& op);
  std::optional<std::vector<delta>> apply(const delete_op& op);

  /// Where character `id` is now (an editor's cursor after it is this + 1); nullopt when
  /// it is deleted or not known here.
  std::optional<uint64_t> index_of(const char_id& id) const;

  /// The document's whole state in a compact, self-contained form: its origins, its items
  /// in document order (ids, run lengths, origin left and right, tombstones with the
  /// deletes that removed them) with delta-coded varints, the visible text as UTF-8, and
  /// which operation inserted each character (run-length coded). Adjacent items that one
  /// run split into are written as one. Replicas that applied the same operations encode
  /// to the same bytes, in whatever order they applied them. O(n) in the items.
  std::string encode() const;
  /// The document encode() wrote; nullopt, never a crash, for anything else: bad varints,
  /// counts or lengths past the bytes given, an origin's characters that do not tile its
  /// seqs from 0, an origin left or right that is not there or not on its side of the
  /// item, or bytes left over. (A tombstone no delete names is a collected one.) A run of
  /// deletes is a few bytes however long it is, and each delete it names costs memory
  /// once decoded: past `max_deleters` of them the bytes are refused. The default bounds
  /// untrusted bytes; what this process encoded itself may pass UINT64_MAX.
  static constexpr uint64_t default_max_deleters = uint64_t{1} << 20;
  static std::optional<document> decode(std::string_view bytes,
                                        uint64_t max_deleters = default_max_deleters);

  /// Tombstone collection: forgets who deleted each tombstone whose deletes are all
  /// `stable` (applied at every replica, so nothing concurrent with them can still arrive),
  /// and joins such tombstones into runs of ids without text where one run was split into
  /// them. The ids stay: later inserts may still name them as origins (YATA needs them to
  /// place those inserts alike everywhere). What is lost is only the past: an edit at a
  /// version older than those deletes counts their characters as deleted. Placement is by
  /// ids, so replicas that collect at different moments, or never, still converge.
  /// O(tracked tombstones + collected x log n); when more node slots are free than used,
  /// the document is rebuilt from its encoded form to give the memory back. The
  /// tombstones collected.
  size_t collect(const std::function<bool(const messages::dot&)>& stable);
  /// Tombstones that still know their deleters (what collect() could free).
  size_t tracked_tombstones() const { return deleters_.size(); }

  /// Figures: items in the sequence (runs, tombstones included) and the next seq `origin`
  /// would use.
  size_t items() const { return nodes_.size() - free_.size(); }
  uint64_t next_seq(const messages::source& origin) const;

private:
  static constexpr uint32_t nil = UINT32_MAX;
  struct node {
    uint32_t origin = 0; ///< index into origins_
    uint64_t seq = 0;    ///< the first character's
    uint32_t len = 0;
    bool deleted = false;
    std::optional<char_id> left; ///< the first character's origin left
    std::optional<char_id> right;
    std::u32string chars; ///< empty when deleted
    uint32_t l = nil, r = nil, p = nil, prio = 0;
    uint64_t visible = 0; ///< visible characters in this subtree
    uint32_t count = 1;   ///< nodes in this subtree
  };

  uint32_t origin_index(const messages::source& s);
  uint64_t visible_of(uint32_t x) const { return x == nil ? 0 : nodes_[x].visible; }
  uint32_t count_of(uint32_t x) const { return x == nil ? 0 : nodes_[x].count; }
  void update(uint32_t x);
  void update_up(uint32_t x);
  std::pair<uint32_t, uint32_t> split(uint32_t t, uint32_t k);
  uint32_t merge(uint32_t a, uint32_t b);
  void insert_at(uint32_t position, uint32_t x);
  uint32_t rank(uint32_t x) const;           ///< nodes before x
  uint64_t visible_before(uint32_t x) const; ///< visible characters before x
  uint32_t first() const;
  uint32_t next(uint32_t x) const;
  uint32_t prev(uint32_t x) const;
  uint32_t add_node(node&& n); ///< into a free slot if there is one; not yet in the tree
  // Tombstone collection (text_collect.cpp).
  bool joinable(uint32_t a, uint32_t b) const;
  void absorb(uint32_t a, uint32_t b); ///< b, right after a, becomes part of a
  void join_collected(uint32_t x);
  std::pair<uint32_t, uint64_t> find_visible(uint64_t index) const;
  uint32_t find(const char_id& id) const;         ///< the node holding id, or nil
  uint32_t split_at(uint32_t x, uint64_t offset); ///< returns the right part
  uint32_t node_ending_at(const char_id& id);     ///< splits so id is a node's last char
  uint32_t node_starting_at(const char_id& id);   ///< splits so id is a node's first char
  enum class verdict { ok, applied, refused };
  verdict check(const insert_op& op) const;
  uint32_t integrate_position(const insert_op& op, uint32_t left, uint32_t right);
  bool try_extend(uint32_t left, const insert_op& op, uint32_t o);
  char_id id_of(uint32_t x, uint64_t offset) const;
  void index(uint32_t x);
  // Version-relative lookup (insert and erase with `at`).
  std::vector<uint64_t> frontier(const version& v) const; ///< per origin: first seq not in v
  uint64_t visible_at(uint32_t x, const std::vector<uint64_t>& f, const version& v) const;
  bool exists_at(uint32_t x, const std::vector<uint64_t>& f) const;
  std::pair<uint32_t, uint64_t> find_visible_at(uint64_t index, const version& v,
                                                const std::vector<uint64_t>& f) const;
  void place(insert_op& op, uint64_t index, const version* at);
  void finish(delete_op& op, std::vector<delta>* applied); ///< applies a local delete
  bool deleted_by(uint32_t x, const messages::dot& id) const;

  friend struct codec; // encode and decode (text_encode.cpp)

  std::vector<node> nodes_;
  std::vector<uint32_t> free_; ///< slots of nodes joined into others, for reuse
  uint32_t root_ = nil;
  std::vector<messages::source> origins_;
  std::map<messages::source, uint32_t> origin_of_;
  /// Per origin index: first seq of each node of that origin, to its node.
  std::vector<std::map<uint64_t, uint32_t>> by_id_;
  std::vector<uint64_t> next_seq_; ///< per origin index
  /// Inserts k = 0 .. count - 1 of a run: first seq `seq + k * seq_step`, counter
  /// `counter + k * counter_step` (one typist's keystrokes are one run of steps 1, 1).
  struct insert_run {
    uint64_t seq = 0, counter = 0, seq_step = 0, counter_step = 0, count = 1;
    uint64_t last_counter() const { return counter + (count - 1) * counter_step; }
  };
  /// Per origin index: its inserts' (first seq, counter), in seq order (both grow together
  /// at an origin), as runs: which operation each character came from.
  std::vector<std::vector<insert_run>> inserted_by_;
  void record_insert(uint32_t origin, uint64_t seq, uint64_t counter);
  /// Per tombstone node: the deletes that removed it (concurrent ones may both have).
  std::map<uint32_t, std::vector<messages::dot>> deleters_;
  uint32_t rng_ = 0x9e3779b9;
};

} // namespace mlr::core::text
