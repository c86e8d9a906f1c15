#pragma once
// A replica configuration with only the fields the replica-level tests set.

#include "core/replica.hpp"

#include <vector>

namespace mlr::testing {

inline core::replica_config config(messages::node_index self, uint64_t incarnation,
                                   std::vector<std::vector<messages::node_index>> forward_to) {
  core::replica_config c;
  c.self = self;
  c.incarnation = incarnation;
  c.forward_to = std::move(forward_to);
  return c;
}

} // namespace mlr::testing
