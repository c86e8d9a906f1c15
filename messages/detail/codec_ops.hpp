#pragma once
// What an event does on the wire (its op union, field and counter removals): the part of
// the Event struct that grows with the key types. Used by codec.cpp only.

#include "messages/error.hpp"
#include "messages/event.hpp"
#include "messages/mlr.capnp.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace mlr::messages::detail {

/// Writes e's operation, field and removals; `index_of` interns a source in the batch's
/// source table.
void write_op(wire::Event::Builder out, const event& e,
              const std::function<uint16_t(const source&)>& index_of);

/// Reads them into `e`, checking every index and counter; the error says what is wrong.
std::optional<error> read_op(wire::Event::Reader in, const std::vector<source>& table, event& e);

} // namespace mlr::messages::detail
