// The native client gateway: Cap'n Proto requests (messages/wire.hpp) from the mlr CLI
// and the blocking client, answered in request order.

#include "gateways/detail/gateway_common.hpp"
#include "gateways/node_status.hpp"
#include "messages/wire.hpp"

#include <caf/actor_system.hpp>
#include <caf/io/broker.hpp>

#include <algorithm>
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

using self_ptr = gateway_actor::broker_pointer;
using state_ptr = std::shared_ptr<client_state>;

// Closes a connection and ends its watches at the leader. Every close path comes here:
// a connection this broker closes itself gets no connection_closed_msg.
void drop_conn(self_ptr self, client_state& st, connection_handle hdl, bool close = true) {
  if (close)
    self->close(hdl);
  st.conns.erase(hdl);
  for (auto i = st.watches.begin(); i != st.watches.end();)
    if (i->second.hdl == hdl) {
      self->send(st.ctx.leader, unwatch_atom::value, i->first);
      i = st.watches.erase(i);
    } else {
      ++i;
    }
}

// Where one request's answer goes: the connection that asked (checked by serial), in its
// slot of the request order.
struct reply_slot {
  self_ptr self;
  state_ptr st;
  connection_handle hdl;
  uint64_t serial = 0, seq = 0, id = 0;

  void operator()(const messages::client_response& r) const {
    auto* c = st->find(hdl, serial);
    if (!c)
      return;
    auto ready = c->replies.fill(seq, client_answer(id, r));
    c->flow.output_backlog += ready.size(); // until the next data_transferred_msg says
    if (c->flow.output_backlog > st->ctx.max_output_hard_bytes) {
      st->ctx.log.warn("closing client connection from {}: {} bytes of answers unread (the limit "
                       "is {})",
                       c->where, c->flow.output_backlog, st->ctx.max_output_hard_bytes);
      drop_conn(self, *st, hdl);
      return;
    }
    write_bytes(self, hdl, ready);
    c->flow.in_flight = c->replies.slots.size();
    if (c->flow.update(st->ctx))
      self->send(self, resume_atom::value, hdl.id(), serial);
  }
  void fail(errc code, std::string why) const { (*this)(failure_response(code, std::move(why))); }
  void written(std::string what) const {
    messages::client_response r;
    r.kind = messages::client_response::op::written;
    r.written = std::move(what);
    (*this)(r);
  }
};

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

void set_resolver(const reply_slot& answer, const std::string& where, const std::string& name) {
  auto make = resolvers::builtin_resolver(name);
  if (!make)
    return answer.fail(errc::invalid_argument, // (not echoed: the name may hold anything)
                       "unknown resolver name of " + std::to_string(name.size()) +
                         " bytes; use lww, multi, max or tags");
  auto log = answer.st->ctx.log;
  answer.self
    ->request(answer.st->ctx.leader, request_timeout, resolver_atom::value,
              resolver_swap{make, name})
    .then(
      [answer, where, name, log](uint32_t in_flight) {
        log.info("resolver set by admin client {}: now '{}', {} questions in flight go on with "
                 "the previous one",
                 where, name, in_flight);
        answer.written(std::to_string(in_flight));
      },
      [answer](caf::error& err) { answer.fail(from_caf(err).code, failure_text(err, true)); });
}

// A page of the conflict feed.
void conflicts(const reply_slot& answer, const messages::client_request& req,
               std::function<void(caf::error&)> on_error) {
  answer.self
    ->request(answer.st->ctx.leader, request_timeout, conflicts_atom::value, req.after,
              req.limit) // (the leader answers at most 1,000 records, about 4 MiB)
    .then(
      [answer](std::vector<conflict_record>& records) {
        messages::client_response r;
        r.kind = messages::client_response::op::conflicts;
        r.conflicts = std::move(records);
        answer(r);
      },
      std::move(on_error));
}

void set_topology(const reply_slot& answer, const std::string& where, const std::string& spec) {
  auto log = answer.st->ctx.log;
  answer.self->request(answer.st->ctx.leader, request_timeout, topology_atom::value, spec)
    .then(
      [answer, where, log](messages::dot& d) {
        log.info("topology set by admin client {}: accepted, epoch {}", where,
                 messages::to_string(d));
        answer.written(messages::to_string(d));
      },
      [answer, where, log](caf::error& err) {
        auto e = from_caf(err);
        log.warn("topology set by admin client {}: refused: {}", where, e.message);
        answer.fail(e.code, failure_text(err, true));
      });
}

// A typed write (answered by its number) or a typed read (answered by the value as its
// type renders it).
void forward_typed(const reply_slot& answer, const messages::client_request& req,
                   std::function<void(caf::error&)> on_error) {
  namespace typed = core::typed;
  auto self = answer.self;
  auto& leader = answer.st->ctx.leader;
  if (req.kind == messages::client_request::op::typed) {
    write_request w;
    w.key = req.key;
    w.op = req.typed_op;
    w.field = req.field;
    w.value = req.value;
    w.delta = req.delta;
    self->request(leader, request_timeout, typed_atom::value, std::vector<write_request>{w})
      .then(
        [answer](std::vector<int64_t>& replies) {
          messages::client_response r;
          r.kind = messages::client_response::op::number;
          r.number = replies.empty() ? 0 : replies.front();
          answer(r);
        },
        on_error);
    return;
  }
  self->request(leader, request_timeout, get_atom::value, req.key)
    .then(
      [answer](get_result& g) {
        messages::client_response r;
        r.kind = messages::client_response::op::typed;
        auto t = typed::type_of(g.siblings);
        r.type_name = typed::name(t);
        if (t == typed::key_type::string)
          r.items.push_back(*typed::string_value(g.siblings));
        else if (t == typed::key_type::counter)
          r.items.push_back(std::to_string(typed::counter_value(g.siblings)));
        else if (t == typed::key_type::set)
          r.items = typed::set_members(g.siblings);
        for (auto& [f, v] : typed::hash_fields(g.siblings)) {
          r.items.push_back(f);
          r.items.push_back(v);
        }
        answer(r);
      },
      on_error);
}

// A watch: a leader subscription whose changes go to this connection, each as a response
// to the watch request, after the first answer ("watching").
void watch(const reply_slot& answer, client_conn& conn, const std::string& prefix) {
  auto st = answer.st;
  if (conn.watches >= max_watches_per_connection)
    return answer.fail(errc::too_large, "more than " + std::to_string(max_watches_per_connection) +
                                          " watches on one connection; watch a shorter prefix");
  if (prefix.size() > st->ctx.max_key_bytes)
    return answer.fail(errc::too_large, "the prefix is longer than a key may be (" +
                                          std::to_string(st->ctx.max_key_bytes) + " bytes)");
  ++conn.watches; // counted at once: pipelined watches do not all pass the check
  auto self = answer.self;
  self
    ->request(st->ctx.leader, request_timeout, watch_atom::value, prefix,
              caf::actor_cast<caf::actor>(self))
    .then(
      [answer, st, self](uint64_t id) {
        if (!st->find(answer.hdl, answer.serial)) {
          self->send(st->ctx.leader, unwatch_atom::value, id); // closed meanwhile
          return;
        }
        st->watches[id] = watch_stream{answer.hdl, answer.serial, answer.id};
        answer.written("watching");
      },
      [answer, st](caf::error& err) {
        if (auto* c = st->find(answer.hdl, answer.serial); c && c->watches > 0)
          --c->watches;
        answer.fail(from_caf(err).code, failure_text(err, false));
      });
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
          if (t == typed::key_type::set || t == typed::key_type::hash)
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
