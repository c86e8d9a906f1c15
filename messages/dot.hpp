#pragma once
// The identity of a write. A `source` is one incarnation of one node; a `dot` is the
// counter-th write of that source. Counters start at 1 and grow by one per write, so the
// highest counter applied from a source summarises everything applied from it.

#include <cstdint>
#include <string>
#include <tuple>

namespace mlr::messages {

/// Index of a node inside a cluster's membership. Never reused.
using node_index = uint32_t;

struct source {
  node_index node = 0;
  uint64_t incarnation = 0;

  friend bool operator==(const source& a, const source& b) {
    return a.node == b.node && a.incarnation == b.incarnation;
  }
  friend bool operator!=(const source& a, const source& b) { return !(a == b); }
  friend bool operator<(const source& a, const source& b) {
    return std::tie(a.node, a.incarnation) < std::tie(b.node, b.incarnation);
  }
};

struct dot {
  source origin;
  uint64_t counter = 0;

  friend bool operator==(const dot& a, const dot& b) {
    return a.origin == b.origin && a.counter == b.counter;
  }
  friend bool operator!=(const dot& a, const dot& b) { return !(a == b); }
  /// Total order used for deterministic tie-breaks: node, incarnation, counter.
  friend bool operator<(const dot& a, const dot& b) {
    return std::tie(a.origin, a.counter) < std::tie(b.origin, b.counter);
  }
};

/// "n1.00000000deadbeef.42": short, stable, and parseable by `parse_dot`.
std::string to_string(const source& s);
std::string to_string(const dot& d);

} // namespace mlr::messages
