#pragma once
// What a replication link answers to (replication_link.hpp has the link itself). Apart, so
// that the leader's interface can name the link it hands batches to without the link's
// interface naming the leader's.

#include "actors/protocol.hpp"

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>

namespace mlr::actors {

struct link_status {
  messages::node_index from = 0;
  messages::node_index to = 0;
  uint64_t acked_cursor = 0; ///< source log position acknowledged by the destination
  uint64_t sent_cursor = 0;  ///< source log position shipped so far
  uint64_t batches_sent = 0;
  uint64_t events_sent = 0;
  uint64_t acks = 0;
  uint64_t retransmits = 0;                ///< go-back-N restarts after a missing ack
  uint32_t in_flight = 0;                  ///< batches shipped and not yet acknowledged
  messages::version_vector remote_applied; ///< from the latest ack
  messages::node_index route = 0;          ///< where batches go now: `to`, or a detour
  uint64_t detours_taken = 0;              ///< switches to a detour (or to the next one)
  uint64_t returns = 0;                    ///< times the destination answered again after a detour
  uint64_t shipments = 0;                  ///< batches the leader handed over and the link shipped
  uint64_t shipments_refused = 0; ///< handed over when the link had moved on: it asked again
};

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, link_status& x) {
  return f(caf::meta::type_name("mlr.link_status"), x.from, x.to, x.acked_cursor, x.sent_cursor,
           x.batches_sent, x.events_sent, x.acks, x.retransmits, x.in_flight, x.remote_applied,
           x.route, x.detours_taken, x.returns, x.shipments, x.shipments_refused);
}

using link_actor = caf::typed_actor<
  /// To itself: try shipping again (the route refused at once, and the pause is over).
  caf::reacts_to<log_grew_atom>,
  /// From the source leader, answering the link's latest `want`: the next batch for it.
  /// Shipped only if the link still stands at `from` and ships to `ship_to`, with room in
  /// its window; otherwise it says where it stands again.
  caf::reacts_to<shipment_atom, shipment>,
  /// Timer, while detoured: check whether the destination answers again.
  caf::reacts_to<tick_atom>,
  /// Cursors and counters.
  caf::replies_to<status_atom>::with<link_status>>;

} // namespace mlr::actors
