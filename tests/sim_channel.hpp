#pragma once
// A test-only channel between a replication link and its destination leader: it stands in
// the network's place (it is a sink_actor) so tests can hold and release traffic on one
// edge, deterministically, under CAF's test_coordinator.

#include "actors/leader.hpp"

namespace mlr::testing {

using hold_atom = caf::atom_constant<caf::atom("hold")>;
using release_atom = caf::atom_constant<caf::atom("release")>;

using channel_actor = actors::sink_actor::extend<
  /// Stop forwarding: batches queue up until release.
  caf::reacts_to<hold_atom>,
  /// Forward everything queued, in order, and stop holding.
  caf::reacts_to<release_atom>>;

channel_actor spawn_channel(caf::actor_system& sys, actors::sink_actor dest);

} // namespace mlr::testing
