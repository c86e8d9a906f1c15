// The native client gateway: Cap'n Proto requests (messages/wire.hpp) from the mlr CLI
// and the blocking client, answered in request order.

#include "gateways/detail/client_state.hpp"
#include "gateways/detail/node_status.hpp"
#include "messages/wire.hpp"

#include <caf/actor_system.hpp>
#include <caf/io/broker.hpp>

#include <algorithm>
#include <map>

namespace mlr::actors {

using namespace detail;

namespace {

// Auth, and the role a request needs. False: the request was answered (refused or auth).
bool admitted(const reply_slot& answer, client_state& st, client_conn& conn,
              const messages::client_request& req) {
  if (req.kind == messages::client_request::op::auth) {
    auto role = role_for(st.ctx.access, req.value);
    if (role == client_role::none) {
      st.ctx.log.warn("client {}: auth with a wrong secret", conn.where);
      answer.fail(errc::unauthenticated,
                  "wrong secret: pass the node's client secret (or its admin secret)");
      return false;
    }
    conn.role = role;
    answer.written(role == client_role::admin ? "admin" : "client");
    return false;
  }
  if (conn.role == client_role::none) {
    answer.fail(errc::unauthenticated,
                "authentication required: this node takes requests only after the client secret "
                "(mlr --secret-file FILE, or MLR_SECRET)");
    return false;
  }
  bool topology = req.kind == messages::client_request::op::set_topology;
  if (!topology && req.kind != messages::client_request::op::set_resolver)
    return true;
  // Both change how the node treats every client's data: admin only.
  const char* what = topology ? "topology changes" : "resolver changes";
  if (conn.role != client_role::admin) {
    st.ctx.log.warn("client {}: {} refused: not authenticated as admin", conn.where,
                    topology ? "topology set" : "resolver set");
    bool none = st.ctx.access.admin_secret.empty();
    answer.fail(none ? errc::refused : errc::unauthenticated,
                std::string(what) +
                  (none ? " are refused: this node was started without --admin-secret-file"
                        : " need the admin secret (mlr --admin-secret-file FILE, or "
                          "MLR_ADMIN_SECRET)"));
    return false;
  }
  if (!topology)
    return true; // set_resolver logs once the name is known to be a resolver
  auto first_line = req.value.substr(0, req.value.find('\n'));
  st.ctx.log.info("topology set by admin client {}: {}{}", conn.where, first_line,
                  first_line.size() < req.value.size() ? " ..." : "");
  return true;
}

// Hands an admitted request to the leader (or the status collector); the answer goes to its
// slot.
void forward(const reply_slot& answer, client_conn& conn, const messages::client_request& req,
             const causal_context& ctx) {
  using op = messages::client_request::op;
  auto self = answer.self;
  auto& leader = answer.st->ctx.leader;
  bool is_write = req.kind != op::get && req.kind != op::status && req.kind != op::read &&
                  req.kind != op::watch && req.kind != op::conflicts;
  auto on_error = [answer, is_write](caf::error& err) {
    answer.fail(from_caf(err).code, failure_text(err, is_write));
  };
  auto on_dot = [answer](messages::dot& d) { answer.written(messages::to_string(d)); };
  switch (req.kind) {
  case op::put:
    if (req.has_context)
      self->request(leader, request_timeout, put_atom::value, req.key, req.value, ctx)
        .then(on_dot, on_error);
    else
      self->request(leader, request_timeout, put_atom::value, req.key, req.value)
        .then(on_dot, on_error);
    break;
  case op::del:
    if (req.has_context)
      self->request(leader, request_timeout, del_atom::value, req.key, ctx).then(on_dot, on_error);
    else
      self->request(leader, request_timeout, del_atom::value, req.key).then(on_dot, on_error);
    break;
  case op::get:
    self->request(leader, request_timeout, get_atom::value, req.key)
      .then(
        [answer](get_result& g) {
          namespace typed = core::typed;
          auto t = typed::type_of(g.siblings);
          if (t == typed::key_type::set || t == typed::key_type::hash || t == typed::key_type::text)
            return answer.fail(errc::refused, std::string("WRONGTYPE the key holds a ") +
                                                typed::name(t) + "; read it with 'read'");
          messages::client_response r;
          r.kind = messages::client_response::op::value;
          if (t == typed::key_type::counter)
            r.siblings.push_back(std::to_string(typed::counter_value(g.siblings)));
          else
            for (auto& v : typed::registers(g.siblings))
              r.siblings.push_back(v.value);
          r.context = messages::to_context_token(g.context.dots);
          answer(r);
        },
        on_error);
    break;
  case op::set_topology:
    set_topology(answer, conn.where, req.value);
    break;
  case op::typed:
  case op::read:
    forward_typed(answer, req, on_error);
    break;
  case op::watch:
    watch(answer, conn, req.key);
    break;
  case op::conflicts:
    conflicts(answer, req, on_error);
    break;
  case op::set_resolver:
    set_resolver(answer, conn.where, req.value);
    break;
  case op::auth:
    break; // answered by admitted()
  case op::status:
    collect_status(self, answer.st->ctx, answer.st->status,
                   [answer](const std::shared_ptr<const std::string>& json) {
                     messages::client_response r;
                     r.kind = messages::client_response::op::status;
                     r.status_json = *json;
                     answer(r);
                   });
    break;
  }
}

void handle(self_ptr self, const state_ptr& st, connection_handle hdl, client_conn& conn,
            uint64_t id, const messages::client_request& req) {
  reply_slot answer{self, st, hdl, conn.serial, conn.replies.reserve(), id};
  conn.flow.in_flight = conn.replies.slots.size();
  conn.flow.update(st->ctx);
  if (!admitted(answer, *st, conn, req))
    return;
  causal_context ctx;
  if (req.has_context) {
    auto dots = messages::parse_context_token(req.context);
    if (!dots) {
      answer.fail(dots.err().code, dots.err().message);
      return;
    }
    ctx.dots = std::move(*dots);
  }
  forward(answer, conn, req, ctx);
}

// Takes the connection's new bytes (if any) and every whole request in its reader, unless it
// is paused: then they wait until the resume.
void take(self_ptr self, const state_ptr& st, connection_handle hdl, uint64_t serial,
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
      handle(self, st, hdl, *conn, h.request_id, *req);
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
    drop_conn(self, *st, hdl);
  }
}

void on_new_connection(self_ptr self, client_state& st, connection_handle hdl) {
  auto& c = st.conns[hdl];
  c = client_conn{};
  c.serial = ++st.next_serial;
  // A request carries one key and one value: anything larger than the write limits plus
  // 1 MiB is refused before it is buffered.
  c.reader = std::make_unique<message_reader>(
    std::min(st.ctx.max_frame_bytes, st.ctx.max_key_bytes + st.ctx.max_value_bytes + (1u << 20)));
  c.where = accept_connection(self, hdl);
  c.role = initial_role(st.ctx.access);
  self->ack_writes(hdl, true);
  if (refused_remote(st.ctx.access, self->remote_addr(hdl))) {
    st.ctx.log.warn("refused client {}: {}", c.where, protected_mode_text);
    write_bytes(self, hdl,
                client_answer(0, failure_response(errc::unauthenticated, protected_mode_text)));
    self->close(hdl);
    st.conns.erase(hdl);
  }
}

gateway_actor::behavior_type client_gateway(self_ptr self, node_context ctx, std::string host,
                                            uint16_t port, listen_promise opened) {
  auto st = std::make_shared<client_state>();
  st->ctx = std::move(ctx);
  if (!open_listener(self, host, port, opened, "clients"))
    return no_behavior<gateway_actor::behavior_type>();
  return {
    [=](const caf::io::new_connection_msg& msg) { on_new_connection(self, *st, msg.handle); },
    [=](change_atom, uint64_t id, const std::vector<change>& changes) {
      auto i = st->watches.find(id);
      auto* conn = i == st->watches.end() ? nullptr : st->find(i->second.hdl, i->second.serial);
      if (!conn) {
        if (i != st->watches.end())
          st->watches.erase(i);
        self->send(st->ctx.leader, unwatch_atom::value, id); // its connection closed
        return;
      }
      auto stream = i->second;
      for (auto& c : changes) {
        if (!st->find(stream.hdl, stream.serial))
          break; // closed: too much unread
        messages::client_response r;
        r.kind = messages::client_response::op::change;
        r.key = c.key;
        r.event = c.event;
        r.type_name = c.type;
        r.field = c.field;
        r.value = c.value;
        r.written = messages::to_string(c.id);
        for (auto& e : c.edits)
          r.edits.push_back({e.insert, e.index, e.text, e.count});
        auto* cc = st->find(stream.hdl, stream.serial);
        reply_slot{self, st, stream.hdl, stream.serial, cc->replies.reserve(), stream.request_id}(
          r);
      }
      self->send(st->ctx.leader, watch_ack_atom::value, id, static_cast<uint64_t>(changes.size()),
                 core::change_bytes(changes));
    },
    [=](change_atom, uint64_t id, const std::string& why) {
      auto i = st->watches.find(id);
      if (i == st->watches.end())
        return;
      auto stream = i->second;
      st->watches.erase(i);
      if (auto* cc = st->find(stream.hdl, stream.serial))
        reply_slot{self, st, stream.hdl, stream.serial, cc->replies.reserve(), stream.request_id}
          .fail(errc::too_large, why);
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
        take(self, st, msg.handle, i->second.serial, &msg.buf);
    },
    [=](resume_atom, int64_t id, uint64_t serial) {
      auto hdl = connection_handle::from_int(id);
      if (auto* c = st->find(hdl, serial); c && !c->flow.paused)
        take(self, st, hdl, serial, nullptr);
    },
    [=](const caf::io::connection_closed_msg& msg) { drop_conn(self, *st, msg.handle, false); },
    [=](const caf::io::acceptor_closed_msg&) {},
  };
}

} // namespace

result<gateway> start_client_gateway(caf::actor_system& sys, node_context ctx,
                                     const std::string& host, uint16_t port) {
  return start_gateway(sys, client_gateway, std::move(ctx), host, port);
}

} // namespace mlr::actors
