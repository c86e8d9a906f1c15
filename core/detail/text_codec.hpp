#pragma once
// The text document's encoded form, shared by text_encode.cpp and text_decode.cpp.
//
// Layout, all integers LEB128 varints, "signed" ones zigzag-coded differences:
// - "mlrT" and the format version (1).
// - The origins, sorted: those that inserted and those that only deleted. Every later
//   origin is an index into this table.
// - Per origin, which operation inserted which characters: its runs of inserts (first seq,
//   counter, the steps of both, how many), signed against the previous run's last insert.
// - The items in document order. Per item: flags; its origin (unless the previous item's);
//   its first seq, signed against the end of that origin's previous item (runs typed one
//   after another cost one byte); its length; its origin left, unless absent or the
//   previous item's last character (typing forward); its origin right, unless absent, the
//   next item's first character, or the previous item's right (the pieces of a run split
//   by edits).
// - The visible text, UTF-8, as one string.
// - The deletes, in dot order, each with the ranges it removed. A run of deletes of one
//   range each, whose counters, seqs and lengths step evenly (a burst of backspaces), is
//   written once with its steps and how many.
// Adjacent items that one run was split into (same origin, consecutive seqs, the second's
// left the first's last character, the same right, both deleted or both not) are written as
// one: YATA places every later insert the same way either side of such a split, and the
// split depends on the order operations arrived in and on who deleted what, which the
// item list must not. So replicas that applied the same operations write the same bytes.

#include "core/text.hpp"

#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace mlr::core::text {

namespace detail {

inline constexpr std::string_view magic{"mlrT\x01", 5};
inline constexpr uint64_t max_seq = uint64_t{1} << 48; // as on the wire

// An item's flags; bits 3 and 4 say where its origin right is.
inline constexpr uint64_t deleted_flag = 1, has_left = 2, left_is_previous = 4, same_origin = 32,
                          all_flags = 63;
inline constexpr uint64_t right_shift = 3, no_right = 0, right_is_next = 1, right_is_previous = 2,
                          right_given = 3;

inline void put(std::string& out, uint64_t v) {
  for (; v >= 0x80; v >>= 7)
    out.push_back(static_cast<char>(v | 0x80));
  out.push_back(static_cast<char>(v));
}

inline void put_signed(std::string& out, uint64_t now, uint64_t before) {
  auto d = static_cast<int64_t>(now - before); // wraps: get_signed adds it back the same way
  put(out, (static_cast<uint64_t>(d) << 1) ^ static_cast<uint64_t>(d >> 63));
}

/// Reads what put() wrote; past the end or on a bad varint, `ok` turns false and every
/// later read gives 0.
struct reader {
  std::string_view in;
  size_t at = 0;
  bool ok = true;

  uint64_t get() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at >= in.size() || (shift == 63 && static_cast<uint8_t>(in[at]) > 1))
        return fail();
      auto b = static_cast<uint8_t>(in[at++]);
      v |= uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80))
        return v;
    }
    return fail();
  }
  uint64_t get_signed(uint64_t before) {
    auto u = get();
    return before + ((u >> 1) ^ (~(u & 1) + 1));
  }
  uint64_t remaining() const { return in.size() - at; }
  uint64_t fail() {
    ok = false;
    at = in.size();
    return 0;
  }
};

/// One delete as encoded: its dot (origin as a table index) and its ranges (origin index,
/// first seq, length), sorted, adjacent ones joined.
struct encoded_delete {
  uint32_t origin = 0;
  uint64_t counter = 0;
  std::vector<std::tuple<uint32_t, uint64_t, uint64_t>> ranges;
};

} // namespace detail

struct codec {
  struct item {
    uint32_t origin = 0; // into the sorted table
    uint64_t seq = 0;
    uint64_t len = 0;
    bool deleted = false;
    std::optional<char_id> left, right;
  };
  using table_type = std::vector<messages::source>;

  // text_encode.cpp
  static std::string encode(const document& d);
  static table_type table(const document& d);
  static std::vector<item> items(const document& d, const table_type& t, std::u32string& text);
  static void put_inserted_by(std::string& out, const document& d, const table_type& t);
  static void put_items(std::string& out, const std::vector<item>& items, const table_type& t);
  static std::vector<detail::encoded_delete> deletes(const document& d, const table_type& t);
  static void put_deletes(std::string& out, const std::vector<detail::encoded_delete>& ds);

  // text_decode.cpp
  static std::optional<document> decode(std::string_view bytes, uint64_t max_deleters);
  static bool read_origins(detail::reader& r, document& d);
  static bool read_inserted_by(detail::reader& r, document& d, uint32_t o);
  static bool read_items(detail::reader& r, document& d, std::vector<uint64_t>& flags);
  static bool read_item(detail::reader& r, document& d, size_t i, uint64_t f,
                        std::vector<uint64_t>& cursor);
  static bool read_text(detail::reader& r, document& d);
  static bool check_structure(document& d, const std::vector<uint64_t>& flags);
  static void build_tree(document& d);
  static bool read_deletes(detail::reader& r, document& d, uint64_t budget);
  static bool apply_delete(document& d, const messages::dot& by, uint32_t origin, uint64_t seq,
                           uint64_t len, uint64_t& budget);
};

} // namespace mlr::core::text
