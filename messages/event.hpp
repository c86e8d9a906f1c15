#pragma once
// Value types for what leaders exchange: one replicated write (`event`), a batch of them,
// the acknowledgement, and a stored `version` of a key. These are plain copyable values;
// `codec.hpp` turns the wire ones into Cap'n Proto frames and back.

#include "messages/dot.hpp"
#include "messages/hlc.hpp"
#include "messages/seen_by.hpp"
#include "messages/version_vector.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace mlr::messages {

enum class op_kind : uint8_t { put = 0, del = 1 };

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
};

struct event_batch {
  node_index sender = 0;
  uint64_t epoch = 0;
  std::vector<event> events;
};

struct ack {
  node_index receiver = 0;
  version_vector applied;
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
};

/// One version of a key as a store keeps it; siblings are several of these.
struct version {
  dot id;
  hlc time;
  bool tombstone = false;
  std::string value;

  friend bool operator==(const version& a, const version& b) {
    return a.id == b.id && a.time == b.time && a.tombstone == b.tombstone && a.value == b.value;
  }
};

} // namespace mlr::messages
