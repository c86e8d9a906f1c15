#pragma once
// A change a node applied, as subscribers see it (node::watch, `mlr watch-keys`, RESP
// keyspace notifications). Light on purpose: the embedding API (node/node.hpp) shows it.

#include "messages/dot.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace mlr::core {

/// One edit of a text document by index, as an editor applies it: insert `text` (UTF-8)
/// at `index`, or delete `count` characters there (indexes and counts in code points).
struct text_edit {
  bool insert = true;
  uint64_t index = 0;
  std::string text;
  uint64_t count = 0;
};

/// One change this node applied, local or remote, for subscribers: in the order the node
/// applied them (DESIGN.md, "Convergent data types").
struct change {
  std::string key;
  /// What happened, in Redis's keyspace-event names: set, del, incrby, sadd, srem, hset,
  /// hdel, hincrby, text.insert, text.del; "merged" when a merging resolver's value became what the
  /// key shows; "resolved" when the resolver's selection dropped versions; "transfer" when a state
  /// transfer changed the key (no single event did: read it for the rest).
  std::string event;
  std::string type;  ///< the key's type after the change: none, string, counter, set, hash, text
  std::string field; ///< sadd, srem: the member; hset, hdel, hincrby: the field
  /// set, merged: the value; incrby: the counter's new value; hset: the field's value;
  /// hincrby: the field's new value; otherwise empty.
  std::string value;
  messages::dot id; ///< the write's dot (its origin: id.origin); merged: the latest input's
  /// text.insert, text.del, and a write of another type over a text key: what it did to
  /// the document, in order (each index counts the edits before it). Empty when it changed
  /// nothing visible.
  std::vector<text_edit> edits{};
};

/// What a change weighs in a subscriber's backlog (bytes).
inline uint64_t change_bytes(const change& c) {
  uint64_t n = 64 + c.key.size() + c.field.size() + c.value.size();
  for (auto& e : c.edits)
    n += 24 + e.text.size();
  return n;
}
inline uint64_t change_bytes(const std::vector<change>& cs) {
  uint64_t n = 0;
  for (auto& c : cs)
    n += change_bytes(c);
  return n;
}

} // namespace mlr::core
