#pragma once
// Client gateways of a node process: the native Cap'n Proto client port (what the `mlr`
// CLI speaks) and the Redis-protocol (RESP) port, parsed with hiredis's redisReader.
// Both are CAF io brokers that translate requests into leader messages; a malformed
// request closes that one connection, with a log line, and the node keeps serving.
// A write is acknowledged once the local leader has applied it; replication to the other
// nodes is asynchronous.

#include "actors/peer_transport.hpp"

#include <caf/actor.hpp>

#include <string>
#include <vector>

namespace mlr::actors {

/// What a gateway needs to know about its node.
struct node_context {
  std::string cluster;
  std::string node_id;
  std::vector<std::string> members;
  uint64_t incarnation = 0;
  std::string topology;
  std::string resolver;
  leader_actor leader;
  caf::actor acceptor;
  std::vector<caf::actor> dialers; ///< by node index; null for this node
  size_t max_frame_bytes = 64u << 20;
};

struct gateway {
  caf::actor broker;
  uint16_t port = 0;
};

result<gateway> start_client_gateway(caf::actor_system& sys, node_context ctx,
                                     const std::string& host, uint16_t port);

result<gateway> start_resp_gateway(caf::actor_system& sys, node_context ctx,
                                   const std::string& host, uint16_t port);

} // namespace mlr::actors
