#pragma once
// One entry of the conflict feed (DESIGN.md, "Convergent data types"): a key's concurrent
// versions as the resolver was given them, and what it decided. Kept in the store (the
// core writes it with the resolution's commit), answered to clients, and replayable: the
// same versions given to the same resolver give the same outcome.

#include "messages/event.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace mlr::messages {

struct conflict_record {
  uint64_t seq = 0;   ///< position in the node's feed, from 1, never reused
  uint64_t at_ms = 0; ///< wall clock (ms since the epoch) when the outcome was recorded
  std::string key;
  std::string resolver;          ///< the resolver's name ("" when the shell gave none)
  std::vector<version> versions; ///< the inputs, whole (values cut: see values_cut)
  std::vector<dot> kept;         ///< selected: the dots kept; merged: every input
  bool resolved = false;         ///< false: the versions stay as siblings (see reason)
  bool merged = false;           ///< the resolver merged the inputs into `value`
  /// The inputs' values were longer than the feed keeps for one record: each holds at most
  /// its first 1 KiB, so a replay cannot compare this record.
  bool values_cut = false;
  std::string reason; ///< why it stayed unresolved
  std::string value;  ///< merged: the merged value

  std::vector<dot> inputs() const {
    std::vector<dot> out;
    for (auto& v : versions)
      out.push_back(v.id);
    return out;
  }
  /// "selected", "merged" or "unresolved".
  const char* outcome() const { return !resolved ? "unresolved" : merged ? "merged" : "selected"; }
};

} // namespace mlr::messages
