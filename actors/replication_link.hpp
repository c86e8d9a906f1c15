#pragma once
// A replication link: one directed edge of the topology. It reads its source leader's log
// from a cursor, ships batches of the entries meant for its destination node, and keeps at
// most `window` batches in flight. The destination acknowledges on receipt; the acked
// prefix advances the cursor. A batch not acknowledged within `ack_timeout` makes the link
// go back to its acked cursor and ship again (go-back-N): the receiver's version vector
// drops whatever arrives twice, so a retry can never apply anything twice.
//
// The destination is a `sink_actor`: the destination leader itself, or anything standing
// in between (a simulated network channel in tests, a peer connection between processes).
//
// Detours (DESIGN.md, "Topologies"): when the destination stops acknowledging, the link
// ships the same entries to the next node on the way (a ring's successor's successor, a
// star's standby hub), marked as sent on the destination's behalf, so that node also
// forwards them as the destination would have. It keeps probing the destination; when
// that answers again, the link goes back to it and ships from where the detour began (what
// the destination meanwhile got otherwise, by pull, is skipped by its gossiped vector).

#include "actors/leader.hpp"

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

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
  uint64_t shipments = 0;         ///< batches the leader handed over (the link had caught up)
  uint64_t shipments_refused = 0; ///< handed over when the link had moved on: it fetched instead
};

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, link_status& x) {
  return f(caf::meta::type_name("mlr.link_status"), x.from, x.to, x.acked_cursor, x.sent_cursor,
           x.batches_sent, x.events_sent, x.acks, x.retransmits, x.in_flight, x.remote_applied,
           x.route, x.detours_taken, x.returns, x.shipments, x.shipments_refused);
}

using link_actor = caf::typed_actor<
  /// To itself: try shipping again (the route refused at once, and the pause is over).
  caf::reacts_to<log_grew_atom>,
  /// From the source leader, once this link had caught up: the next batch for it, as a
  /// fetch would return it (from, ship_to, batch). Taken only if the link still stands
  /// at `from` and ships to `ship_to`, else it fetches.
  caf::reacts_to<shipment_atom, uint64_t, messages::node_index, fetch_result>,
  /// Timer, while detoured: check whether the destination answers again.
  caf::reacts_to<tick_atom>,
  /// Cursors and counters.
  caf::replies_to<status_atom>::with<link_status>>;

struct link_config {
  messages::node_index from = 0;
  messages::node_index to = 0;
  uint32_t max_batch_events = 4096;
  /// Batches in flight at once; bounds what the destination must buffer for this link.
  uint32_t window = 4;
  std::chrono::milliseconds ack_timeout{2000};
  /// Nodes to ship to when `to` stops acknowledging, in order of preference. Empty: the
  /// link only retries (what `to` forwards then travels by pull).
  std::vector<messages::node_index> detours;
  /// Batches in a row left unacknowledged before the link takes the next detour.
  uint32_t failures_before_detour = 2;
  /// While detoured, how often the link checks whether `to` answers again.
  std::chrono::milliseconds probe_interval{500};
};

/// `detour_sinks[i]` reaches `cfg.detours[i]`.
link_actor spawn_replication_link(caf::actor_system& sys, link_config cfg, leader_actor source,
                                  sink_actor destination,
                                  std::vector<sink_actor> detour_sinks = {});

} // namespace mlr::actors
