#pragma once
// Leaders in different processes, over TCP. CAF io brokers own the sockets; what they send
// is standard Cap'n Proto stream framing (messages/wire.hpp), not CAF's BASP, so any Cap'n
// Proto implementation can speak to a node.
//
// Each node dials every other node once (a `dialer` broker per peer, which is that peer's
// sink_actor: links ship batches through it, the leader gossips and pulls through it) and
// accepts the other nodes' dials on its listening port (one `acceptor` broker, which hands
// requests to the local leader and writes the answers back). Every connection starts with
// the handshake of transport/handshake.hpp; a refusal is logged once, naming the reason.
//
// Dialers reconnect with exponential backoff and jitter, send heartbeats, and mark a peer
// down when it stays silent past `peer_timeout` (a stopped process keeps its socket open,
// so silence, not a closed socket, is what detects it). A write backlog above
// `max_write_backlog` drops new requests, which then time out at their sender: a peer that
// stops reading cannot grow this node's memory without limit.

#include "actors/leader.hpp"
#include "transport/handshake.hpp"
#include "transport/log.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>
#include <caf/io/system_messages.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace mlr::actors {

struct peer_address {
  std::string host;
  uint16_t port = 0;
};

struct transport_config {
  node_identity self;
  logger log; ///< where the brokers' lines go
  messages::node_index self_index = 0;
  /// Where each node listens, by node index (this node's own entry is unused).
  std::vector<peer_address> addresses;
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 0;
  size_t max_frame_bytes = 64u << 20;
  size_t max_write_backlog = 64u << 20;
  /// A connection that has not proved itself within this time is closed.
  std::chrono::milliseconds handshake_timeout{5000};
  /// At most this many connections may be unproven at once; more are closed on arrival.
  size_t max_unproven = 64;
  /// Largest frame an unproven connection may send (a hello or a proof is ~100 bytes).
  size_t unproven_frame_bytes = 4096;
  std::chrono::milliseconds heartbeat_interval{250};
  std::chrono::milliseconds peer_timeout{2000};
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{5000};
};

/// One peer as this node sees it.
struct peer_state {
  std::string id;
  bool up = false;
  uint32_t version = 0;             ///< protocol version in use (0 while down)
  int64_t silent_ms = -1;           ///< since the peer last answered (-1: never)
  uint64_t connects = 0;            ///< successful handshakes so far
  std::string last_error;           ///< why the last connection ended or was refused
  messages::version_vector applied; ///< the peer's version vector, as last heard
  uint64_t lag_events = 0;          ///< events this node has applied that the peer has not
  int64_t lag_ms = 0;               ///< how long the peer has been behind this node (0: caught up)
  uint64_t bytes_received = 0;      ///< on this node's connection to the peer (acks, pull answers)
};

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, peer_state& x) {
  return f(caf::meta::type_name("mlr.peer_state"), x.id, x.up, x.version, x.silent_ms, x.connects,
           x.last_error, x.applied, x.lag_events, x.lag_ms, x.bytes_received);
}

/// The acceptor's counters, declared once: X(field, what it counts). This table makes the
/// struct, CAF's `inspect` and the status document's "inbound" object (for_each_counter).
#define MLR_ACCEPTOR_STATS(X)                                                                      \
  X(accepted, "connections accepted")                                                              \
  X(refused, "handshakes refused (secret, node id, versions, cluster)")                            \
  X(bad_frames, "connections closed for a malformed or oversized frame")                           \
  X(handshake_timeouts, "connections that did not prove themselves in time")                       \
  X(unproven_refused, "connections closed because too many were unproven")                         \
  X(impersonations, "proven connections closed for naming another sender")                         \
  X(bytes_received, "bytes from peers, all connections")

/// The acceptor's counters: what it refused and why, and the last refusal's reason.
struct acceptor_stats {
#define MLR_ACCEPTOR_MEMBER(field, doc) uint64_t field = 0;
  MLR_ACCEPTOR_STATS(MLR_ACCEPTOR_MEMBER)
#undef MLR_ACCEPTOR_MEMBER
  std::string last_refusal;

  /// Calls f(name, value) for every counter, in the table's order.
  template <class F> void for_each_counter(F&& f) const {
#define MLR_ACCEPTOR_VISIT(field, doc) f(#field, field);
    MLR_ACCEPTOR_STATS(MLR_ACCEPTOR_VISIT)
#undef MLR_ACCEPTOR_VISIT
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, acceptor_stats& x) {
#define MLR_ACCEPTOR_FIELD(field, doc) x.field,
  return f(caf::meta::type_name("mlr.acceptor_stats"),
           MLR_ACCEPTOR_STATS(MLR_ACCEPTOR_FIELD) x.last_refusal);
#undef MLR_ACCEPTOR_FIELD
}

struct connect_result; // a dial's outcome (transport/detail/tcp_connect.hpp)

/// Messages the transport's brokers send themselves or each other (never to another process).
/// A member added at runtime: the acceptor takes the grown configuration.
using member_atom = caf::atom_constant<caf::atom("member")>;
/// A dial finished on its helper thread: the dialer adopts the socket (or goes down).
using connected_atom = caf::atom_constant<caf::atom("connected")>;

/// The listening socket and the other nodes' connections to this one.
using acceptor_actor = caf::typed_actor<
  caf::reacts_to<caf::io::new_connection_msg>, caf::reacts_to<caf::io::new_data_msg>,
  caf::reacts_to<caf::io::connection_closed_msg>, caf::reacts_to<caf::io::acceptor_closed_msg>,
  caf::reacts_to<tick_atom>, caf::replies_to<status_atom>::with<acceptor_stats>,
  caf::reacts_to<member_atom, std::shared_ptr<const transport_config>>>;

/// This node's connection to one peer: that peer's sink, plus its own events.
using dialer_actor = sink_actor::extend<
  caf::reacts_to<connected_atom, std::shared_ptr<connect_result>>, caf::reacts_to<tick_atom>,
  caf::reacts_to<caf::io::new_data_msg>, caf::reacts_to<caf::io::data_transferred_msg>,
  caf::reacts_to<caf::io::connection_closed_msg>, caf::replies_to<status_atom>::with<peer_state>>;

struct transport {
  acceptor_actor acceptor;
  uint16_t port = 0;                           ///< the listening port (useful when 0 was asked for)
  std::vector<dialer_actor> dialers;           ///< by node index; null for this node
  std::vector<sink_actor> sinks;               ///< the same, as sinks for links and the leader
  std::shared_ptr<const transport_config> cfg; ///< grows with members added at runtime
};

/// Adds a member at runtime (it gets the next node index): the acceptor accepts its dials
/// and a new dialer connects to it. Returns its sink (the existing one if it is known).
/// Not thread-safe: call it from one thread at a time.
sink_actor add_peer(caf::actor_system& sys, transport& t, leader_actor leader,
                    const std::string& name, peer_address where);

/// Opens the listening port and starts a dialer per peer. Errors name the address.
result<transport> start_transport(caf::actor_system& sys, transport_config cfg,
                                  leader_actor leader);

} // namespace mlr::actors

// Only ever sent within this process (to its own acceptor, and from a dial's helper thread to
// its dialer); never serialized. A connect_result that is never taken closes its socket.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<const mlr::actors::transport_config>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<mlr::actors::connect_result>)
