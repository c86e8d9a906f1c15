#pragma once
// A replication link: one directed edge of the topology. It tells its source leader where
// it stands in the leader's log (want), is handed the next batch of the entries meant for
// its destination node (shipment), ships it, and keeps at most `window` batches in flight. The
// destination acknowledges on receipt; the acked prefix advances the cursor. A batch not
// acknowledged within `ack_timeout` makes the link go back to its acked cursor and ship again
// (go-back-N): the receiver's version vector drops whatever arrives twice, so a retry can never
// apply anything twice.
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
#include "actors/link_interface.hpp"

#include <caf/fwd.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

namespace mlr::actors {

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
