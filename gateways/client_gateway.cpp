// The native client gateway: Cap'n Proto requests (messages/wire.hpp) from the mlr CLI
// and the blocking client, answered in request order.

#include "gateways/detail/gateway_common.hpp"
#include "gateways/node_status.hpp"
#include "messages/wire.hpp"

#include <caf/actor_system.hpp>
#include <caf/io/broker.hpp>

#include <map>

namespace mlr::actors {

using namespace detail;

namespace {

struct client_conn {
  /// Unique per connection in this process (the OS reuses handles): answers check it.
  uint64_t serial = 0;
  std::unique_ptr<message_reader> reader;
  reply_queue replies;
  client_flow flow;
  std::string where;
  client_role role = client_role::none;
};

struct client_state {
  node_context ctx;
  std::map<connection_handle, client_conn> conns;
  uint64_t next_serial = 0;

  client_conn* find(connection_handle hdl, uint64_t serial) {
    auto i = conns.find(hdl);
    return i != conns.end() && i->second.serial == serial ? &i->second : nullptr;
  }
};

std::string client_answer(uint64_t id, const messages::client_response& r) {
  return frame_bytes(
           messages::encode(messages::wire_header{messages::wire_kind::client_response, id})) +
         frame_bytes(messages::encode(r));
}

messages::client_response failure_response(errc code, std::string msg) {
  messages::client_response r;
  r.kind = messages::client_response::op::failure;
  r.fail = messages::failure{code, std::move(msg)};
  return r;
}

caf::behavior client_gateway(caf::io::broker* self, node_context ctx, std::string host,
                             uint16_t port, listen_promise opened) {
  auto st = std::make_shared<client_state>();
  st->ctx = std::move(ctx);
  if (!open_listener(self, host, port, opened, "clients"))
    return {};

  // Answers go to the connection that asked (checked by serial), in request order.
  auto answer = [self, st](connection_handle hdl, uint64_t serial, uint64_t seq, uint64_t id,
                           const messages::client_response& r) {
    auto* c = st->find(hdl, serial);
    if (!c)
      return;
    auto ready = c->replies.fill(seq, client_answer(id, r));
    c->flow.output_backlog += ready.size(); // until the next data_transferred_msg says
    if (c->flow.output_backlog > st->ctx.max_output_hard_bytes) {
      st->ctx.log.warn("closing client connection from {}: {} bytes of answers unread (the limit "
                       "is {})",
                       c->where, c->flow.output_backlog, st->ctx.max_output_hard_bytes);
      self->close(hdl);
      st->conns.erase(hdl);
      return;
    }
    write_bytes(self, hdl, ready);
    c->flow.in_flight = c->replies.slots.size();
    if (c->flow.update(st->ctx))
      self->send(self, resume_atom::value, hdl.id(), serial);
  };

  auto handle = [self, st, answer](connection_handle hdl, client_conn& conn, uint64_t id,
                                   const messages::client_request& req) {
    auto serial = conn.serial;
    auto seq = conn.replies.reserve();
    conn.flow.in_flight = conn.replies.slots.size();
    conn.flow.update(st->ctx);
    bool is_write = req.kind != messages::client_request::op::get &&
                    req.kind != messages::client_request::op::status;
    auto on_error = [answer, hdl, serial, seq, id, is_write](caf::error& err) {
      auto e = from_caf(err);
      answer(hdl, serial, seq, id, failure_response(e.code, failure_text(err, is_write)));
    };
    auto on_dot = [answer, hdl, serial, seq, id](messages::dot& d) {
      messages::client_response r;
      r.kind = messages::client_response::op::written;
      r.written = messages::to_string(d);
      answer(hdl, serial, seq, id, r);
    };
    auto fail = [&](const std::string& why, errc code = errc::unauthenticated) {
      answer(hdl, serial, seq, id, failure_response(code, why));
    };
    if (req.kind == messages::client_request::op::auth) {
      auto role = role_for(st->ctx.access, req.value);
      if (role == client_role::none) {
        st->ctx.log.warn("client {}: auth with a wrong secret", conn.where);
        fail("wrong secret: pass the node's client secret (or its admin secret)");
        return;
      }
      conn.role = role;
      messages::client_response r;
      r.kind = messages::client_response::op::written;
      r.written = role == client_role::admin ? "admin" : "client";
      answer(hdl, serial, seq, id, r);
      return;
    }
    if (conn.role == client_role::none) {
      fail("authentication required: this node takes requests only after the client secret "
           "(mlr --secret-file FILE, or MLR_SECRET)");
      return;
    }
    if (req.kind == messages::client_request::op::set_topology) {
      if (conn.role != client_role::admin) {
        st->ctx.log.warn("client {}: topology set refused: not authenticated as admin", conn.where);
        fail(st->ctx.access.admin_secret.empty()
               ? "topology changes are refused: this node was started without "
                 "--admin-secret-file"
               : "topology changes need the admin secret (mlr --admin-secret-file FILE, or "
                 "MLR_ADMIN_SECRET)",
             st->ctx.access.admin_secret.empty() ? errc::refused : errc::unauthenticated);
        return;
      }
      auto first_line = req.value.substr(0, req.value.find('\n'));
      st->ctx.log.info("topology set by admin client {}: {}{}", conn.where, first_line,
                       first_line.size() < req.value.size() ? " ..." : "");
    }
    causal_context ctx;
    if (req.has_context) {
      auto dots = messages::parse_context_token(req.context);
      if (!dots) {
        answer(hdl, serial, seq, id, failure_response(dots.err().code, dots.err().message));
        return;
      }
      ctx.dots = std::move(*dots);
    }
    switch (req.kind) {
    case messages::client_request::op::put:
      if (req.has_context)
        self->request(st->ctx.leader, request_timeout, put_atom::value, req.key, req.value, ctx)
          .then(on_dot, on_error);
      else
        self->request(st->ctx.leader, request_timeout, put_atom::value, req.key, req.value)
          .then(on_dot, on_error);
      break;
    case messages::client_request::op::del:
      if (req.has_context)
        self->request(st->ctx.leader, request_timeout, del_atom::value, req.key, ctx)
          .then(on_dot, on_error);
      else
        self->request(st->ctx.leader, request_timeout, del_atom::value, req.key)
          .then(on_dot, on_error);
      break;
    case messages::client_request::op::get:
      self->request(st->ctx.leader, request_timeout, get_atom::value, req.key)
        .then(
          [answer, hdl, serial, seq, id](get_result& g) {
            messages::client_response r;
            r.kind = messages::client_response::op::value;
            for (auto& v : g.siblings)
              r.siblings.push_back(v.value);
            r.context = messages::to_context_token(g.context.dots);
            answer(hdl, serial, seq, id, r);
          },
          on_error);
      break;
    case messages::client_request::op::set_topology:
      self->request(st->ctx.leader, request_timeout, topology_atom::value, req.value)
        .then(
          [answer, hdl, serial, seq, id, where = conn.where, log = st->ctx.log](messages::dot& d) {
            log.info("topology set by admin client {}: accepted, epoch {}", where,
                     messages::to_string(d));
            messages::client_response r;
            r.kind = messages::client_response::op::written;
            r.written = messages::to_string(d);
            answer(hdl, serial, seq, id, r);
          },
          [answer, hdl, serial, seq, id, where = conn.where, log = st->ctx.log](caf::error& err) {
            auto e = from_caf(err);
            log.warn("topology set by admin client {}: refused: {}", where, e.message);
            answer(hdl, serial, seq, id, failure_response(e.code, failure_text(err, true)));
          });
      break;
    case messages::client_request::op::auth:
      break; // answered above
    case messages::client_request::op::status:
      collect_status(self, st->ctx, [answer, hdl, serial, seq, id](std::string json) {
        messages::client_response r;
        r.kind = messages::client_response::op::status;
        r.status_json = std::move(json);
        answer(hdl, serial, seq, id, r);
      });
      break;
    }
  };

  // Takes the connection's new bytes (if any) and every whole request in its reader, unless
  // it is paused: then they wait until the resume.
  auto take = [self, st, handle](connection_handle hdl, uint64_t serial,
                                 const std::vector<char>* bytes) {
    auto* c = st->find(hdl, serial);
    if (!c)
      return;
    auto on_request = [&](const messages::wire_header& h,
                          const frame& payload) -> std::optional<error> {
      if (h.kind != messages::wire_kind::client_request)
        return error{errc::malformed_frame,
                     "expected a client request, got " + std::string(messages::to_string(h.kind))};
      auto req = messages::decode_client_request(payload);
      if (!req)
        return req.err();
      if (auto* conn = st->find(hdl, serial))
        handle(hdl, *conn, h.request_id, *req);
      return std::nullopt;
    };
    auto paused = [&] {
      auto* conn = st->find(hdl, serial);
      return !conn || conn->flow.paused;
    };
    auto err =
      bytes ? c->reader->feed(*bytes, on_request, paused) : c->reader->drain(on_request, paused);
    if (auto* conn = st->find(hdl, serial);
        !err && conn && conn->flow.paused && conn->reader->buffered() > st->ctx.max_paused_input)
      err = error{errc::invalid_argument, conn->flow.overrun(st->ctx)};
    if (err) {
      if (auto* conn = st->find(hdl, serial))
        st->ctx.log.warn("closing client connection from {}: {}", conn->where, err->message);
      self->close(hdl);
      st->conns.erase(hdl);
    }
  };

  return {
    [=](const caf::io::new_connection_msg& msg) {
      auto& c = st->conns[msg.handle];
      c = client_conn{};
      c.serial = ++st->next_serial;
      // A request carries one key and one value: anything larger than the write limits
      // plus 1 MiB is refused before it is buffered.
      c.reader = std::make_unique<message_reader>(std::min(
        st->ctx.max_frame_bytes, st->ctx.max_key_bytes + st->ctx.max_value_bytes + (1u << 20)));
      c.where = accept_connection(self, msg.handle);
      c.role = initial_role(st->ctx.access);
      self->ack_writes(msg.handle, true);
      if (refused_remote(st->ctx.access, self->remote_addr(msg.handle))) {
        st->ctx.log.warn("refused client {}: {}", c.where, protected_mode_text);
        write_bytes(self, msg.handle,
                    client_answer(0, failure_response(errc::unauthenticated, protected_mode_text)));
        self->close(msg.handle);
        st->conns.erase(msg.handle);
      }
    },
    [=](const caf::io::data_transferred_msg& msg) {
      auto i = st->conns.find(msg.handle);
      if (i != st->conns.end()) {
        auto& c = i->second;
        c.flow.output_backlog -= std::min<size_t>(msg.written, c.flow.output_backlog);
        if (c.flow.update(st->ctx))
          self->send(self, resume_atom::value, msg.handle.id(), c.serial);
      }
    },
    [=](const caf::io::new_data_msg& msg) {
      auto i = st->conns.find(msg.handle);
      if (i != st->conns.end())
        take(msg.handle, i->second.serial, &msg.buf);
    },
    [=](resume_atom, int64_t id, uint64_t serial) {
      auto hdl = connection_handle::from_int(id);
      if (auto* c = st->find(hdl, serial); c && !c->flow.paused)
        take(hdl, serial, nullptr);
    },
    [=](const caf::io::connection_closed_msg& msg) { st->conns.erase(msg.handle); },
    [=](const caf::io::acceptor_closed_msg&) {},
  };
}

} // namespace

result<gateway> start_client_gateway(caf::actor_system& sys, node_context ctx,
                                     const std::string& host, uint16_t port) {
  return start_gateway(sys, client_gateway, std::move(ctx), host, port);
}

} // namespace mlr::actors
