// The native client gateway: Cap'n Proto requests (messages/wire.hpp) from the mlr CLI
// and the blocking client, answered in request order.

#include "actors/gateway_common.hpp"
#include "actors/node_status.hpp"
#include "messages/wire.hpp"

#include <caf/actor_system.hpp>
#include <caf/io/broker.hpp>
#include <spdlog/spdlog.h>

#include <map>

namespace mlr::actors {

using namespace detail;

namespace {

struct client_conn {
  std::unique_ptr<message_reader> reader;
  reply_queue replies;
  std::string where;
};

struct client_state {
  node_context ctx;
  std::map<connection_handle, client_conn> conns;
};

std::string client_answer(uint64_t id, const messages::client_response& r) {
  return frame_bytes(messages::encode(messages::wire_header{messages::wire_kind::client_response, id})) +
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

  auto answer = [self, st](connection_handle hdl, uint64_t seq, uint64_t id,
                           const messages::client_response& r) {
    auto i = st->conns.find(hdl);
    if (i != st->conns.end())
      write_bytes(self, hdl, i->second.replies.fill(seq, client_answer(id, r)));
  };

  auto handle = [self, st, answer](connection_handle hdl, uint64_t id,
                                   const messages::client_request& req) {
    auto seq = st->conns[hdl].replies.reserve();
    auto on_error = [answer, hdl, seq, id, self](caf::error& err) {
      answer(hdl, seq, id, failure_response(errc::timeout, self->system().render(err)));
    };
    auto on_dot = [answer, hdl, seq, id](messages::dot& d) {
      messages::client_response r;
      r.kind = messages::client_response::op::written;
      r.written = messages::to_string(d);
      answer(hdl, seq, id, r);
    };
    causal_context ctx;
    if (req.has_context) {
      auto dots = messages::parse_context_token(req.context);
      if (!dots) {
        answer(hdl, seq, id, failure_response(dots.err().code, dots.err().message));
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
            [answer, hdl, seq, id](get_result& g) {
              messages::client_response r;
              r.kind = messages::client_response::op::value;
              for (auto& v : g.siblings)
                r.siblings.push_back(v.value);
              r.context = messages::to_context_token(g.context.dots);
              answer(hdl, seq, id, r);
            },
            on_error);
        break;
      case messages::client_request::op::set_topology:
        self->request(st->ctx.leader, request_timeout, topology_atom::value, req.value)
          .then(
            [answer, hdl, seq, id](messages::dot& d) {
              messages::client_response r;
              r.kind = messages::client_response::op::written;
              r.written = messages::to_string(d);
              answer(hdl, seq, id, r);
            },
            on_error);
        break;
      case messages::client_request::op::status:
        collect_status(self, st->ctx, [answer, hdl, seq, id](std::string json) {
          messages::client_response r;
          r.kind = messages::client_response::op::status;
          r.status_json = std::move(json);
          answer(hdl, seq, id, r);
        });
        break;
    }
  };

  return {
    [=](const caf::io::new_connection_msg& msg) {
      auto& c = st->conns[msg.handle];
      c.reader = std::make_unique<message_reader>(st->ctx.max_frame_bytes);
      c.where = accept_connection(self, msg.handle);
    },
    [=](const caf::io::new_data_msg& msg) {
      auto i = st->conns.find(msg.handle);
      if (i == st->conns.end())
        return;
      auto hdl = msg.handle;
      auto err = i->second.reader->feed(
        msg.buf, [&](const messages::wire_header& h, const frame& payload) -> std::optional<error> {
          if (h.kind != messages::wire_kind::client_request)
            return error{errc::malformed_frame, "expected a client request, got " +
                                                  std::string(messages::to_string(h.kind))};
          auto req = messages::decode_client_request(payload);
          if (!req)
            return req.err();
          handle(hdl, h.request_id, *req);
          return std::nullopt;
        });
      if (err) {
        spdlog::warn("closing client connection from {}: {}", i->second.where, err->message);
        self->close(hdl);
        st->conns.erase(hdl);
      }
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
