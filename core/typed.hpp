#pragma once
// Typed keys (DESIGN.md, "Convergent data types"): counters, add-wins sets and maps whose
// fields are registers or counters, kept as versions of the key like register values are.
// Pure functions of a key's versions: the origin prepares an operation (what it removes),
// every node applies it the same way, and reads turn the versions into a value.
//
// The rules, in one place:
// - A set element or a map field is a version tagged by the dot of the write that added it
//   (an observed-remove set of tags). A remove or a delete takes away the tags it saw (its
//   context); a concurrent add carries a tag it never saw and survives: add wins.
// - A counter is one share per origin incarnation: the origin's running total (modulo
//   2^64) as of its latest increment, and the part of it that removals took away (the
//   running total as of the latest increment a removal saw). The value is the sum of
//   total - removed. Both halves merge by taking the later increment, so applying an
//   operation twice, or two nodes' states merged, give the same shares: increments at every
//   node sum, and a delete takes away only the increments it saw.
// - A key's type is the type of its latest live version (HLC, then dot; messages::lww_before),
//   where a register delete does not hide the typed versions it did not see (a delete
//   removes what it saw): after concurrent writes of different types, the later one decides
//   at every node, and
//   the next write at the key removes the versions of the other type that it saw. A write
//   of another type at a node that shows the key as typed is refused (WRONGTYPE); SET and
//   DEL work on every type.
// - Concurrent writes of one map field: the later one (lww order) is the field's value.
//   Registers (SET/GET) keep their siblings and go to the resolver, as before.
// - A text key keeps one mark per origin incarnation among its versions (its dot: that
//   origin's latest text operation at the key); the document is kept beside it
//   (core/replica_text.cpp). A write of another type replaces the marks it saw, and the
//   replica deletes the characters those operations inserted.

#include "core/replica_types.hpp"
#include "messages/event.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mlr::core::typed {

enum class key_type : uint8_t { none, string, counter, set, hash, text };
/// "none", "string", "counter", "set", "hash", "text".
const char* name(key_type t);

/// The type of the operation's family: string for put and del, none for clear (any type).
key_type type_of(messages::op_kind op);
/// The type a key shows: that of its latest live version (a register delete hides only
/// register versions); none when it has none.
key_type type_of(const std::vector<messages::version>& vs);

/// A counter share (a version of kind counter or field_counter; its dot's counter is the
/// origin's latest increment).
struct share {
  uint64_t total = 0;        ///< the origin's running total, modulo 2^64
  uint64_t removed_upto = 0; ///< the latest of the origin's increments a removal saw
  uint64_t removed = 0;      ///< the running total then
  bool live(const messages::version& v) const { return v.id.counter > removed_upto; }
};
share read_share(const messages::version& v);
std::string encode_share(const share& s);
bool is_share(messages::value_kind k);

/// What the origin adds to a write: the context (dots of what it replaces that it holds),
/// the counter shares it removes, and an increment's new running total. `refused` is set
/// when the key shows another type (Redis's WRONGTYPE) or the counter would leave int64.
struct prepared {
  messages::op_kind op = messages::op_kind::put; ///< del becomes clear on a typed key
  std::vector<messages::dot> context;
  std::vector<messages::counter_removal> removed;
  uint64_t total = 0;
  std::string refused;
};
prepared prepare(const std::vector<messages::version>& vs, const write_request& w,
                 const messages::source& self);

/// The key's versions after event `e` (every node, the origin included). `concurrent`:
/// register versions that `e` (a put or del) did not replace remain: they go to the resolver.
std::vector<messages::version> apply(const std::vector<messages::version>& current,
                                     const messages::event& e, bool& concurrent);

/// Joins the counter shares of two states (a state transfer): per origin, the later
/// increment and the later removal. Versions that are not shares are left to the caller.
std::vector<messages::version> join_shares(const std::vector<messages::version>& a,
                                           const std::vector<messages::version>& b);

/// The register versions among `vs` (what the resolver decides between).
std::vector<messages::version> registers(const std::vector<messages::version>& vs);

// Merged values (resolvers/resolver.hpp): a merging resolver's answer is kept beside the
// register versions it was computed from, as a version of kind `merged` whose dot and HLC
// are the latest of theirs. Reads show it while exactly those versions are live; the next
// write replaces it with them (its context names them all), and a change to them (a write
// that replaced only some, a state transfer) drops it and asks the resolver again. So a merge
// is always computed from the whole set of concurrent versions, and every node that holds
// that set shows the same value without a new write.

/// `vs` with `value` as the merged value of `inputs`; none when the key's register versions
/// are no longer exactly `inputs` (the answer is stale: a newer question is under way).
std::optional<std::vector<messages::version>>
with_merge(const std::vector<messages::version>& vs, const std::vector<messages::version>& inputs,
           std::string value);
/// Drops the merged value of `after` if its register versions differ from `before`'s
/// (it stood for those): true when it did.
bool drop_stale_merge(const std::vector<messages::version>& before,
                      std::vector<messages::version>& after);
/// Several register versions and no merged value for them: the resolver must be asked.
bool needs_resolver(const std::vector<messages::version>& vs);
/// The merged value among `vs`, if any.
const messages::version* merged(const std::vector<messages::version>& vs);
/// What a read shows of the registers: the merged value alone when there is one (as a
/// register version), else the live register versions.
std::vector<messages::version> shown_registers(const std::vector<messages::version>& vs);

// Reads. Each looks only at the versions of its own type.
int64_t counter_value(const std::vector<messages::version>& vs);
std::vector<std::string> set_members(const std::vector<messages::version>& vs);
bool set_contains(const std::vector<messages::version>& vs, const std::string& element);
/// Fields and their values (a counter field as its decimal value), in field order.
std::vector<std::pair<std::string, std::string>>
hash_fields(const std::vector<messages::version>& vs);
std::optional<std::string> hash_get(const std::vector<messages::version>& vs,
                                    const std::string& field);
/// The value of a counter field (0 when absent or not a counter).
int64_t hash_counter(const std::vector<messages::version>& vs, const std::string& field);
/// A string key's value: the merged value, else its latest register version, if that is
/// not a delete.
std::optional<std::string> string_value(const std::vector<messages::version>& vs);

/// A key's value as its type renders it, the one rendering node::read and the native
/// protocol's typed read share: the type's name (none, string, counter, set or hash) and
/// the items (string: its value; counter: its decimal value; set: the members; hash: field,
/// value, field, value, ...).
std::pair<std::string, std::vector<std::string>> render(const std::vector<messages::version>& vs);

/// The change event `e` made, given the key's versions after it (for subscribers).
change describe(const messages::event& e, const std::vector<messages::version>& after);
/// A change no single event made (a state transfer's keys: "transfer"; a resolver's
/// selection: "resolved"): the key's type after it, a string's or counter's value, and the
/// latest dot it holds.
change describe_state(const std::string& key, const char* event,
                      const std::vector<messages::version>& after);

/// What a typed write answers in Redis's terms, from the key's versions before and after:
/// incr and hincr the new value; sadd, srem, hset, hdel 1 when they added or removed the
/// element or field, else 0; clear 1 when the key existed.
int64_t reply(const std::vector<messages::version>& before,
              const std::vector<messages::version>& after, const write_request& w);

} // namespace mlr::core::typed
