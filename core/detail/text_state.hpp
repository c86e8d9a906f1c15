#pragma once
// The replica's text documents as it holds them (core/replica_text.cpp,
// core/replica_text_snapshot.cpp): a loaded document, and a parsed snapshot record.

#include "core/text.hpp"
#include "messages/version_vector.hpp"

#include <cstdint>
#include <vector>

namespace mlr::core::detail {

// A loaded document: the CRDT; every operation applied to it (per origin incarnation, the
// highest counter: an origin's operations at one key apply in its counter order); the
// operations whose records its snapshot record replaced; the records still stored; how
// many operations were applied since the snapshot record last covered it.
struct loaded_text {
  text::document doc;
  messages::version_vector covers;
  messages::version_vector dropped;
  std::vector<messages::dot> records;
  size_t since_snapshot = 0;
  bool unreadable_snapshot = false; // its stored snapshot does not parse: never rewritten
  uint64_t last_use = 0;            // the replica's use count when it was last used
};

// Snapshot records (replica_text_snapshot.cpp): the encoded document, what it covers, and
// the operations whose records were dropped since (all covered, all stable).
struct text_snapshot {
  messages::version_vector covers;
  messages::version_vector dropped;
  text::document doc;
  size_t doc_at = 0; // where the encoded document starts in the record's value
};

} // namespace mlr::core::detail
