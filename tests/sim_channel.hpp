#pragma once
// The simulated network of the tests: one channel actor per ordered pair of nodes, standing
// where a TCP connection would (it is a sink_actor). Each channel can hold traffic and
// release it, cut it (a partition) and heal it, and inject faults drawn from its own
// seeded RNG: drop, duplicate, delay (which reorders). Under CAF's test_coordinator, delays
// are timers on the deterministic clock, so a seed replays exactly.
//
// A dropped request is never answered (its promise is kept, not broken), so the sender
// sees what a real network gives it: a timeout.

#include "actors/leader.hpp"

#include <caf/fwd.hpp>

#include <chrono>
#include <functional>
#include <map>

namespace mlr::testing {

using hold_atom = caf::atom_constant<caf::atom("hold")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using cut_atom = caf::atom_constant<caf::atom("cut")>;
using heal_atom = caf::atom_constant<caf::atom("heal")>;
using faults_atom = caf::atom_constant<caf::atom("faults")>;
using deliver_atom = caf::atom_constant<caf::atom("deliver")>;
using hold_batches_atom = caf::atom_constant<caf::atom("holdbatch")>;
using retarget_atom = caf::atom_constant<caf::atom("retarget")>;

struct fault_config {
  double drop = 0;      ///< probability that a message, or the answer to it, is lost
  double duplicate = 0; ///< probability that a message is delivered twice
  double delay = 0;     ///< probability that a message is delayed (and so reordered)
  uint32_t max_delay_ms = 50;
};

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, fault_config& x) {
  return f(caf::meta::type_name("mlr.fault_config"), x.drop, x.duplicate, x.delay, x.max_delay_ms);
}

struct channel_stats {
  uint64_t forwarded = 0;
  uint64_t dropped = 0;
  uint64_t duplicated = 0;
  uint64_t delayed = 0;
  uint64_t events = 0; ///< events in forwarded batches (eager traffic only)
};

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, channel_stats& x) {
  return f(caf::meta::type_name("mlr.channel_stats"), x.forwarded, x.dropped, x.duplicated,
           x.delayed, x.events);
}

using channel_actor = actors::sink_actor::extend<
  /// Stop forwarding: messages queue up until release.
  caf::reacts_to<hold_atom>,
  /// Stop forwarding eager batches only (gossip and pulls still pass) until release.
  caf::reacts_to<hold_batches_atom>,
  /// Forward everything queued, in order, and stop holding.
  caf::reacts_to<release_atom>,
  /// Partition: drop everything until healed.
  caf::reacts_to<cut_atom>, caf::reacts_to<heal_atom>,
  /// Replace the fault probabilities.
  caf::reacts_to<faults_atom, fault_config>,
  /// The destination node restarted: deliver to its new leader from now on (what is in
  /// transit goes there too, as bytes in a socket would reach the restarted process).
  caf::reacts_to<retarget_atom, actors::sink_actor>,
  /// Internal: a delayed message is due.
  caf::reacts_to<deliver_atom, uint64_t>,
  caf::replies_to<actors::status_atom>::with<channel_stats>>;

channel_actor spawn_channel(caf::actor_system& sys, actors::sink_actor dest, uint64_t seed = 1);

/// The channels of one simulated cluster, created on first use for each ordered pair.
class sim_network {
public:
  sim_network(caf::actor_system& sys, uint64_t seed) : sys_(sys), seed_(seed) {}
  /// Stops every channel (they outlive the leaders they feed, which may restart).
  ~sim_network();

  /// For cluster_spec::make_sink. Asked again for a pair (the destination restarted), it
  /// points that pair's channel at the new leader.
  actors::sink_actor sink(messages::node_index from, messages::node_index to,
                          actors::leader_actor dest);
  channel_actor at(messages::node_index from, messages::node_index to) const;
  const std::map<std::pair<uint32_t, uint32_t>, channel_actor>& channels() const {
    return channels_;
  }

private:
  caf::actor_system& sys_;
  uint64_t seed_;
  std::map<std::pair<uint32_t, uint32_t>, channel_actor> channels_;
};

} // namespace mlr::testing
