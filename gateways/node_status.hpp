#pragma once
// The status of a node process as JSON (nlohmann; never formatted by hand): its version
// vector and counters from the leader, each peer's state and lag from its dialer, and what
// the acceptor refused. Asynchronous: `collect_status` asks every actor and calls `done`
// once all have answered (or timed out).

#include "gateways/gateways.hpp"

#include <caf/io/typed_broker.hpp>

#include <functional>
#include <string>

namespace mlr::actors {

void collect_status(gateway_actor::broker_pointer self, const node_context& ctx,
                    std::function<void(std::string json)> done);

} // namespace mlr::actors
