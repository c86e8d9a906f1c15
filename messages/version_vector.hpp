#pragma once
// A version vector: source -> highest counter applied from that source. Under causal
// delivery the counters applied from one source are contiguous, so `covers(d)` means "d
// was already applied". Entries are kept sorted in a flat vector: clusters have few
// sources, and a flat vector is both the fastest and the most compact form for them.

#include "messages/dot.hpp"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mlr::messages {

enum class causal_order { equal, before, after, concurrent };

const char* to_string(causal_order x);

class version_vector {
public:
  using entry = std::pair<source, uint64_t>;

  version_vector() = default;

  /// Highest counter applied from `s` (0 when none).
  uint64_t get(const source& s) const;

  /// True when the event `d` is already reflected in this vector.
  bool covers(const dot& d) const { return get(d.origin) >= d.counter; }

  /// True when every entry of `other` is covered.
  bool covers(const version_vector& other) const;

  /// Raises the entry of `d.origin` to at least `d.counter`.
  void advance(const dot& d);

  /// Entry-wise maximum.
  void merge(const version_vector& other);

  /// The vector of these dots (the highest counter per source): O(n log n), for decoders,
  /// which must not spend quadratic time on a list from the network.
  static version_vector from_dots(std::vector<dot> dots);

  /// Drops the entry of `s` (a retired incarnation folded into the permanent table).
  void erase(const source& s);

  /// Entry-wise minimum: what both vectors cover.
  void intersect(const version_vector& other);

  /// How this vector relates to `other` in the causal (happened-before) order.
  causal_order compare(const version_vector& other) const;

  /// The entries that grew since `older`, as dots (source, new counter). This is the
  /// delta that events carry as their deps.
  std::vector<dot> delta_since(const version_vector& older) const;

  const std::vector<entry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  /// Sum of all counters: the number of events this vector summarises.
  uint64_t total() const;
  /// How many events this vector summarises that `other` does not (the lag of a peer whose
  /// vector is `other`).
  uint64_t missing_from(const version_vector& other) const;

  friend bool operator==(const version_vector& a, const version_vector& b) {
    return a.entries_ == b.entries_;
  }
  friend bool operator!=(const version_vector& a, const version_vector& b) { return !(a == b); }

  /// Mutable access for decoders; entries must stay sorted by source without duplicates.
  std::vector<entry>& unsafe_entries() { return entries_; }

private:
  std::vector<entry> entries_;
};

std::string to_string(const version_vector& vv);

} // namespace mlr::messages
