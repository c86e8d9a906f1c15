#pragma once
// Private to mlr_gateways: the native client gateway's state (connections, watches) and the
// slot an answer goes to, shared by client_gateway.cpp (connections, auth, dispatch) and
// client_requests.cpp (the requests that need more than one leader call or a check first).

#include "gateways/detail/gateway_common.hpp"
#include "gateways/detail/node_status.hpp"
#include "messages/wire.hpp"

#include <caf/io/broker.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace mlr::actors::detail {

struct client_conn {
  /// Unique per connection in this process (the OS reuses handles): answers check it.
  uint64_t serial = 0;
  std::unique_ptr<message_reader> reader;
  reply_queue replies;
  client_flow flow;
  std::string where;
  client_role role = client_role::none;
  size_t watches = 0; ///< watch requests taken, answered or not
};

// A watch request's stream: which connection (and request id) a leader subscription
// feeds.
struct watch_stream {
  connection_handle hdl;
  uint64_t serial = 0, request_id = 0;
};

/// Watches one connection may hold at once.
constexpr size_t max_watches_per_connection = 16;

struct client_state {
  node_context ctx;
  std::map<connection_handle, client_conn> conns;
  uint64_t next_serial = 0;
  std::map<uint64_t, watch_stream> watches; ///< leader subscription id -> its stream
  std::shared_ptr<status_batch> status = std::make_shared<status_batch>();

  client_conn* find(connection_handle hdl, uint64_t serial) {
    auto i = conns.find(hdl);
    return i != conns.end() && i->second.serial == serial ? &i->second : nullptr;
  }
};

std::string client_answer(uint64_t id, const messages::client_response& r);

messages::client_response failure_response(errc code, std::string msg);

using self_ptr = gateway_actor::broker_pointer;
using state_ptr = std::shared_ptr<client_state>;

// Closes a connection and ends its watches at the leader. Every close path comes here:
// a connection this broker closes itself gets no connection_closed_msg.
void drop_conn(self_ptr self, client_state& st, connection_handle hdl, bool close = true);

// Where one request's answer goes: the connection that asked (checked by serial), in its
// slot of the request order.
struct reply_slot {
  self_ptr self;
  state_ptr st;
  connection_handle hdl;
  uint64_t serial = 0, seq = 0, id = 0;

  /// Fills the slot; writes what is ready in order, closing a connection that reads too little.
  void operator()(const messages::client_response& r) const;
  void fail(errc code, std::string why) const { (*this)(failure_response(code, std::move(why))); }
  void written(std::string what) const {
    messages::client_response r;
    r.kind = messages::client_response::op::written;
    r.written = std::move(what);
    (*this)(r);
  }
};

// The requests client_requests.cpp answers.
void set_resolver(const reply_slot& answer, const std::string& where, const std::string& name);
/// A page of the conflict feed.
void conflicts(const reply_slot& answer, const messages::client_request& req,
               std::function<void(caf::error&)> on_error);
void set_topology(const reply_slot& answer, const std::string& where, const std::string& spec);
/// A typed write (answered by its number) or a typed read (answered by the value as its
/// type renders it).
void forward_typed(const reply_slot& answer, const messages::client_request& req,
                   std::function<void(caf::error&)> on_error);
/// A watch: a leader subscription whose changes go to this connection, each as a response
/// to the watch request, after the first answer ("watching").
void watch(const reply_slot& answer, client_conn& conn, const std::string& prefix);

} // namespace mlr::actors::detail
