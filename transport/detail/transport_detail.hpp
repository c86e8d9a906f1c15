#pragma once
// Internal to the peer transport (peer_transport.cpp, dialer.cpp, acceptor.cpp): the two
// broker behaviours and what they share. Not for other components.

#include "messages/wire.hpp"
#include "transport/broker_util.hpp"
#include "transport/peer_transport.hpp"

#include <caf/atom.hpp>
#include <caf/io/broker.hpp>

#include <chrono>
#include <cstdint>
#include <memory>

namespace mlr::actors::detail {

using steady = std::chrono::steady_clock;

inline int64_t ms_since(steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t).count();
}

/// One message on a connection: its header frame, then its payload frame.
inline void write_message(caf::io::abstract_broker* self, caf::io::connection_handle hdl,
                          messages::wire_kind kind, uint64_t id, const messages::frame& payload) {
  auto header = messages::encode(messages::wire_header{kind, id});
  self->write(hdl, header.bytes.size(), header.bytes.data());
  self->write(hdl, payload.bytes.size(), payload.bytes.data());
  self->flush(hdl);
}

/// This node's connection to peer `to`: its sink (see peer_transport.hpp).
dialer_actor::behavior_type dialer(dialer_actor::broker_pointer self,
                                   std::shared_ptr<const transport_config> cfg,
                                   messages::node_index to, leader_actor leader);

/// The listening socket and the other nodes' connections to this one.
acceptor_actor::behavior_type acceptor(acceptor_actor::broker_pointer self,
                                       std::shared_ptr<const transport_config> cfg,
                                       leader_actor leader, listen_promise opened);

} // namespace mlr::actors::detail
