#pragma once
// Replaying the conflict feed (DESIGN.md, "Convergent data types"): each record's question
// (its key and its input versions, whole) asked again of a resolver, and its answer compared
// with the recorded outcome. Because a resolver must be a deterministic function of the set
// of versions, a replay through the resolver that decided gives the same outcome; through
// another one it shows what that one would have made of the same conflicts.

#include "messages/conflict_record.hpp"
#include "resolvers/resolver.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace mlr::resolvers {

struct replay_outcome {
  uint64_t seq = 0;
  /// false: not comparable (unresolved, values cut, or the resolver failed; see `why`)
  bool compared = false;
  bool same = false; ///< compared, and the resolver gave the recorded outcome
  std::string why;   ///< what differed, or why the record was not compared
};

/// Asks `resolver` each record's question, one at a time, waiting at most `timeout` for
/// each answer, and compares: a selection by its set of kept dots, a merge by its value.
std::vector<replay_outcome> replay(caf::actor_system& sys, const resolver_actor& resolver,
                                   const std::vector<messages::conflict_record>& records,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(5));

} // namespace mlr::resolvers
