#pragma once
// Client gateways of a node process: the native Cap'n Proto client port (what the `mlr`
// CLI speaks) and the Redis-protocol (RESP) port, parsed with hiredis's redisReader.
// Both are CAF io brokers that translate requests into leader messages; a malformed
// request closes that one connection, with a log line, and the node keeps serving.
// A write is acknowledged once the local leader has applied it; replication to the other
// nodes is asynchronous.

#include "transport/peer_transport.hpp"

#include <caf/actor.hpp>

#include <string>
#include <vector>

namespace mlr::actors {

/// Who may use a node's client ports (Redis's requirepass and protected mode).
struct client_access {
  /// Data requests need this secret first (RESP: AUTH or HELLO ... AUTH; native: auth).
  /// Empty: no authentication, and only loopback clients are served unless
  /// `allow_remote` says otherwise.
  std::string client_secret;
  /// Admin requests (topology set, membership) need this one; it also allows data
  /// requests. Empty: admin requests are refused.
  std::string admin_secret;
  /// Without a client secret, serve clients from other hosts too (--allow-unauthenticated-clients).
  bool allow_remote = false;
};

/// What a gateway needs to know about its node.
struct node_context {
  std::string cluster;
  std::string node_id;
  std::vector<std::string> members;
  uint64_t incarnation = 0;
  std::string topology;
  std::string resolver;
  leader_actor leader;
  acceptor_actor acceptor;
  std::vector<dialer_actor> dialers; ///< by node index; null for this node
  size_t max_frame_bytes = 64u << 20;
  /// The leader's write limits (leader_config): a request larger than these plus 1 MiB is
  /// refused by the gateway as a protocol error before it is buffered whole; one within
  /// that margin reaches the leader, whose error names the size and the limit.
  size_t max_key_bytes = 64u << 10;
  size_t max_value_bytes = 16u << 20;
  /// Requests one connection may have in flight, and answers written to it but not yet
  /// taken by the client: past either, the gateway stops parsing that connection's
  /// requests until both drained to half (a well-behaved pipelining client only slows).
  size_t max_pipeline = 1024;
  size_t max_output_bytes = 8u << 20;
  /// What a paused connection may send meanwhile. A client that goes on sending without
  /// reading its answers is disconnected with an error past it (as Redis does past its
  /// client-output-buffer-limit), so its input and answers stay bounded.
  size_t max_paused_input = 16u << 20;
  /// Answers to requests already taken are written even while parsing is paused; a client
  /// that lets more than this pile up unread is disconnected (Redis's
  /// client-output-buffer-limit).
  size_t max_output_hard_bytes = 256u << 20;
  client_access access;
  logger log; ///< where the gateways' lines go
};

/// A gateway sends itself this (with the handle's id and the connection's serial) to take
/// the requests that waited while a connection was paused, outside the handler that
/// resumed it.
using resume_atom = caf::atom_constant<caf::atom("resume")>;

/// Both gateways (native and RESP): CAF's connection events, and resuming a paused
/// connection.
using gateway_actor = caf::typed_actor<
  caf::reacts_to<caf::io::new_connection_msg>, caf::reacts_to<caf::io::new_data_msg>,
  caf::reacts_to<caf::io::data_transferred_msg>, caf::reacts_to<caf::io::connection_closed_msg>,
  caf::reacts_to<caf::io::acceptor_closed_msg>, caf::reacts_to<resume_atom, int64_t, uint64_t>,
  /// Changes from the leader's subscription (RESP keyspace notifications), and its end.
  caf::reacts_to<change_atom, uint64_t, std::vector<change>>,
  caf::reacts_to<change_atom, uint64_t, std::string>>;

struct gateway {
  gateway_actor broker;
  uint16_t port = 0;
};

result<gateway> start_client_gateway(caf::actor_system& sys, node_context ctx,
                                     const std::string& host, uint16_t port);

result<gateway> start_resp_gateway(caf::actor_system& sys, node_context ctx,
                                   const std::string& host, uint16_t port);

} // namespace mlr::actors
