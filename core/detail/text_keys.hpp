#pragma once
// Where a text document's state lives in the store (core/replica_text.cpp): below
// text_op_prefix, the key's length (4 bytes, big-endian) and the key; then, for each kept
// operation, its dot (4 + 8 + 8 bytes, big-endian, so a document's operations sort by
// origin and counter). The prefix alone, with no dot, is the document's snapshot record
// (core/replica_text_snapshot.cpp), which therefore sorts just before its operations.

#include "core/replica_types.hpp"
#include "messages/event.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace mlr::core::detail {

inline void put_be(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

inline uint64_t get_be(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v = v << 8 | static_cast<unsigned char>(s[at + i]);
  return v;
}

inline constexpr size_t dot_bytes = 20;

/// The document's snapshot key, and the prefix of its operations' keys.
inline std::string ops_prefix(const std::string& key) {
  std::string out = text_op_prefix;
  put_be(out, key.size(), 4);
  return out + key;
}

inline std::string op_key(const std::string& key, const messages::dot& d) {
  auto out = ops_prefix(key);
  put_be(out, d.origin.node, 4);
  put_be(out, d.origin.incarnation, 8);
  put_be(out, d.counter, 8);
  return out;
}

/// What a store key below text_op_prefix is: the document it belongs to, and whether it
/// is the document's snapshot (else one operation, whose dot it names). None for a key that
/// is neither.
struct text_store_key {
  std::string doc;
  bool snapshot = false;
  messages::dot id; ///< an operation's
};

inline std::optional<text_store_key> parse_text_key(const std::string& k) {
  auto p = text_op_prefix.size();
  if (k.compare(0, p, text_op_prefix) != 0 || k.size() < p + 4)
    return std::nullopt;
  auto n = get_be(k, p, 4);
  if (k.size() != p + 4 + n && k.size() != p + 4 + n + dot_bytes)
    return std::nullopt;
  text_store_key out{k.substr(p + 4, n), k.size() == p + 4 + n, {}};
  if (!out.snapshot) {
    auto at = p + 4 + n;
    out.id.origin.node = static_cast<messages::node_index>(get_be(k, at, 4));
    out.id.origin.incarnation = get_be(k, at + 4, 8);
    out.id.counter = get_be(k, at + 12, 8);
  }
  return out;
}

} // namespace mlr::core::detail
