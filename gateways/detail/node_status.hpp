#pragma once
// The status of a node process as JSON (nlohmann; never formatted by hand): its version
// vector and counters from the leader, each peer's state and lag from its dialer, and what
// the acceptor refused. Asynchronous: `collect_status` asks every actor and calls `done`
// once all have answered (or timed out).

#include "gateways/gateways.hpp"

#include <caf/io/typed_broker.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace mlr::actors {

/// One gateway's status requests, collected together: a request that comes while a
/// collection runs waits for the next one, which starts when that one ends. A flood of INFO
/// or status requests then costs about two collections (each asks the leader, the acceptor
/// and every dialer, and builds the JSON document) instead of one per request, and every
/// answer was still collected after its request came.
struct status_batch {
  using done_fn = std::function<void(const std::shared_ptr<const std::string>& json)>;
  bool running = false;
  std::vector<done_fn> waiting;
};

void collect_status(gateway_actor::broker_pointer self, const node_context& ctx,
                    const std::shared_ptr<status_batch>& batch, status_batch::done_fn done);

} // namespace mlr::actors
