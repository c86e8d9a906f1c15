#pragma once
// mlr-bench's second figure: metadata on the wire, bytes per event beyond key and value, from
// real replicas (core::replica, no actors) and the real codec.

#include "messages/wire.hpp"

#include <cstddef>

namespace mlr::bench {

struct wire_figures {
  double unpacked = 0; ///< bytes per event, plain Cap'n Proto
  double packed = 0;   ///< bytes per event, Cap'n Proto packed
};

// N replicas wired as a mesh, driven without actors. Measures what origin 0 ships to node 1
// in batches of up to 64 events, beyond key and value bytes and the empty-batch overhead.
wire_figures measure_wire(size_t n, bool bursty, size_t events_per_node,
                          messages::op_kind op = messages::op_kind::put);

} // namespace mlr::bench
