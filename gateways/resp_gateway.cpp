// The Redis-protocol (RESP) gateway, parsed with hiredis's redisReader: redis-cli and
// redis-benchmark work unmodified. Pipelined SETs and GETs are gathered into one leader
// message per read.
//
// Hostile and careless clients: requests are read by resp_reader, which bounds every count
// and length before anything is allocated for it; a connection's requests in flight and
// unsent answers are bounded by client_flow. Over a limit the client gets
// "-ERR Protocol error: ..." and the connection is closed; everyone else is served.

#include "gateways/detail/node_status.hpp"
#include "gateways/detail/resp_state.hpp"
#include "gateways/resp_reader.hpp"
#include "messages/wire.hpp"

#include <caf/actor_system.hpp>
#include <caf/detail/scope_guard.hpp>
#include <caf/io/broker.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>

namespace mlr::actors {

using namespace detail;

namespace {

using self_ptr = gateway_actor::broker_pointer;
using state_ptr = std::shared_ptr<resp_state>;

void close_conn(self_ptr self, resp_state& st, connection_handle hdl) {
  auto i = st.conns.find(hdl);
  if (i == st.conns.end())
    return;
  self->close(hdl);
  st.conns.erase(i);
  st.runs.erase(hdl);
}

// Writes an answer to the connection that asked, in request order; an answer for a
// connection that closed (even if its handle was reused since) is dropped.
void answer(self_ptr self, resp_state& st, const reply_to& to, std::string bytes) {
  auto* c = st.find(to.hdl, to.serial);
  if (!c)
    return;
  auto ready = c->replies.fill(to.seq, std::move(bytes));
  c->flow.output_backlog += ready.size(); // until the next data_transferred_msg says
  if (c->flow.output_backlog > st.ctx.max_output_hard_bytes) {
    st.ctx.log.warn("closing RESP connection from {}: {} bytes of answers unread (the limit is "
                    "{})",
                    c->where, c->flow.output_backlog, st.ctx.max_output_hard_bytes);
    close_conn(self, st, to.hdl);
    return;
  }
  write_bytes(self, to.hdl, ready);
  c->flow.in_flight = c->replies.slots.size();
  if (c->flow.update(st.ctx))
    self->send(self, resume_atom::value, to.hdl.id(), to.serial);
  if (c->closing && c->replies.slots.empty())
    close_conn(self, st, to.hdl);
}

// The answer function a command (resp_commands.cpp) is handed.
std::function<void(const reply_to&, std::string)> answerer(self_ptr self, const state_ptr& st) {
  return
    [self, st](const reply_to& to, std::string bytes) { answer(self, *st, to, std::move(bytes)); };
}

reply_to reserve(resp_state& st, connection_handle hdl, resp_conn& c) {
  reply_to to{hdl, c.serial, c.replies.reserve()};
  c.flow.in_flight = c.replies.slots.size();
  c.flow.update(st.ctx);
  return to;
}

// One request, by the command table (resp_commands.cpp).
void dispatch(self_ptr self, const state_ptr& st, connection_handle hdl,
              std::vector<std::string> args) {
  auto& conn = *st->find(hdl);
  auto to = reserve(*st, hdl, conn);
  auto* command = find_command(upper(args[0]));
  if (!command) {
    std::string shown = args[0].size() > 64 ? args[0].substr(0, 64) + "..." : args[0];
    answer(self, *st, to, resp_error("ERR unknown command '" + shown + "'"));
    return;
  }
  if (args.size() < command->min_args || args.size() > command->max_args ||
      (command->pairs && args.size() % 2 == 0)) {
    answer(self, *st, to,
           resp_error("ERR wrong number of arguments for '" + args[0] + "' command"));
    return;
  }
  resp_call call{self, st, conn, to, args, answerer(self, st)};
  command->run(call);
}

// Sends the gathered run of SETs (one write message) or GETs (one read message).
void flush_run(self_ptr self, const state_ptr& st, connection_handle hdl) {
  auto i = st->runs.find(hdl);
  if (i == st->runs.end() || i->second.kind == run_kind::none)
    return;
  auto run = std::move(i->second);
  st->runs.erase(i);
  auto tos = std::make_shared<std::vector<reply_to>>(std::move(run.to));
  auto reply = answerer(self, st);
  auto fail_all = [reply, tos, kind = run.kind](caf::error& err) {
    for (auto& to : *tos)
      reply(to, resp_error("ERR " + failure_text(err, kind == run_kind::set)));
  };
  if (run.kind == run_kind::set) {
    std::vector<write_request> writes;
    writes.reserve(run.keys.size());
    for (size_t k = 0; k < run.keys.size(); ++k)
      writes.push_back(write_request{
        std::move(run.keys[k]), messages::op_kind::put, std::move(run.values[k]), false, {}});
    self->request(st->ctx.leader, request_timeout, write_atom::value, std::move(writes))
      .then(
        [reply, tos](std::vector<messages::dot>&) {
          for (auto& to : *tos)
            reply(to, resp_simple("OK"));
        },
        fail_all);
  } else {
    self->request(st->ctx.leader, request_timeout, get_atom::value, std::move(run.keys))
      .then(
        [reply, tos, resp3 = run.resp3](std::vector<get_result>& rs) {
          for (size_t k = 0; k < tos->size() && k < rs.size(); ++k) {
            reply((*tos)[k], resp_value(rs[k], resp3, true));
          }
        },
        fail_all);
  }
}

// Closes a connection whose input broke a rule, telling the client why first.
void protocol_error(self_ptr self, resp_state& st, connection_handle hdl, const std::string& why) {
  auto* c = st.find(hdl);
  if (!c)
    return;
  st.ctx.log.warn("closing RESP connection from {}: protocol error: {}", c->where, why);
  write_bytes(self, hdl, resp_error("ERR Protocol error: " + why));
  close_conn(self, st, hdl);
}

// Takes every whole request out of the connection's reader.
void drain(self_ptr self, const state_ptr& st, connection_handle hdl) {
  auto flush_at_exit = caf::detail::make_scope_guard([&] { flush_run(self, st, hdl); });
  for (;;) {
    auto* c = st->find(hdl);
    if (!c || c->closing || c->flow.paused)
      return; // a paused connection's requests wait in its reader
    auto got = c->reader->next();
    if (!got) {
      flush_run(self, st, hdl);
      protocol_error(self, *st, hdl, got.err().message);
      return;
    }
    if (!*got)
      return; // needs more bytes
    auto& args = **got;
    if (args.empty())
      continue; // "*0\r\n": nothing to do, as in Redis
    auto cmd = upper(args[0]);
    if (c->role == client_role::none && cmd != "AUTH" && cmd != "HELLO" && cmd != "QUIT") {
      flush_run(self, st, hdl);
      answer(self, *st, reserve(*st, hdl, *c), resp_error("NOAUTH Authentication required."));
      continue;
    }
    if (c->subscribed() && !allowed_when_subscribed(cmd)) {
      flush_run(self, st, hdl);
      std::string shown = args[0].size() > 64 ? args[0].substr(0, 64) + "..." : args[0];
      answer(self, *st, reserve(*st, hdl, *c),
             resp_error("ERR Can't execute '" + shown +
                        "': only (P)SUBSCRIBE / (P)UNSUBSCRIBE / PING / QUIT are allowed in "
                        "this context"));
      continue;
    }
    // Pipelined plain SETs and GETs are gathered into one leader message per run.
    auto kind = cmd == "SET" && args.size() == 3   ? run_kind::set
                : cmd == "GET" && args.size() == 2 ? run_kind::get
                                                   : run_kind::none;
    if (kind == run_kind::none) {
      flush_run(self, st, hdl);
      dispatch(self, st, hdl, std::move(args));
      continue;
    }
    if (auto it = st->runs.find(hdl); it != st->runs.end() && it->second.kind != kind)
      flush_run(self, st, hdl);
    auto& r = st->runs[hdl];
    r.kind = kind;
    r.resp3 = c->resp3;
    r.to.push_back(reserve(*st, hdl, *c));
    r.keys.push_back(std::move(args[1]));
    if (kind == run_kind::set)
      r.values.push_back(std::move(args[2]));
  }
}

void on_new_connection(self_ptr self, resp_state& st, connection_handle hdl) {
  auto& c = st.conns[hdl];
  c = resp_conn{}; // a closed connection whose handle the OS reused goes
  c.serial = ++st.next_serial;
  c.reader = std::make_unique<resp_reader>(std::max(st.ctx.max_value_bytes, st.ctx.max_key_bytes) +
                                           (1u << 20));
  c.where = accept_connection(self, hdl);
  c.role = initial_role(st.ctx.access);
  c.reader->set_authenticated(c.role != client_role::none);
  self->ack_writes(hdl, true);
  if (refused_remote(st.ctx.access, self->remote_addr(hdl))) {
    st.ctx.log.warn("refused RESP client {}: {}", c.where, protected_mode_text);
    write_bytes(self, hdl, resp_error(std::string("DENIED ") + protected_mode_text));
    close_conn(self, st, hdl);
  }
}

void on_data(self_ptr self, const state_ptr& st, const caf::io::new_data_msg& msg) {
  auto* c = st->find(msg.handle);
  if (!c || c->closing)
    return;
  c->reader->feed(msg.buf.data(), msg.buf.size());
  if (c->flow.paused && c->reader->buffered() > st->ctx.max_paused_input) {
    auto why = c->flow.overrun(st->ctx);
    st->ctx.log.warn("closing RESP connection from {}: {}", c->where, why);
    write_bytes(self, msg.handle, resp_error("ERR " + why));
    close_conn(self, *st, msg.handle);
    return;
  }
  drain(self, st, msg.handle);
}

gateway_actor::behavior_type resp_gateway(self_ptr self, node_context ctx, std::string host,
                                          uint16_t port, listen_promise opened) {
  auto st = std::make_shared<resp_state>();
  st->ctx = std::move(ctx);
  if (!open_listener(self, host, port, opened, "Redis clients"))
    return no_behavior<gateway_actor::behavior_type>();
  return {
    [=](const caf::io::new_connection_msg& msg) { on_new_connection(self, *st, msg.handle); },
    [=](const caf::io::new_data_msg& msg) { on_data(self, st, msg); },
    [=](const caf::io::data_transferred_msg& msg) {
      if (auto* c = st->find(msg.handle)) {
        c->flow.output_backlog -= std::min<size_t>(msg.written, c->flow.output_backlog);
        if (c->flow.update(st->ctx))
          self->send(self, resume_atom::value, msg.handle.id(), c->serial);
      }
    },
    [=](resume_atom, int64_t id, uint64_t serial) {
      auto hdl = connection_handle::from_int(id);
      if (auto* c = st->find(hdl, serial); c && !c->flow.paused)
        drain(self, st, hdl);
    },
    [=](const caf::io::connection_closed_msg& msg) {
      st->runs.erase(msg.handle);
      st->conns.erase(msg.handle);
      update_watch(self, st);
    },
    [=](change_atom, uint64_t id, const std::vector<change>& changes) {
      if (id != st->watch_id)
        return; // a subscription this gateway has ended
      std::vector<std::pair<connection_handle, uint64_t>> listeners;
      for (auto& [hdl, c] : st->conns)
        if (c.subscribed() && !c.closing)
          listeners.emplace_back(hdl, c.serial);
      for (auto& [hdl, serial] : listeners) {
        auto* c = st->find(hdl, serial);
        if (!c)
          continue;
        for (auto& bytes : notifications(*c, changes)) {
          if (!(c = st->find(hdl, serial)))
            break; // closed: too much unread
          answer(self, *st, reserve(*st, hdl, *c), std::move(bytes));
        }
      }
      self->send(st->ctx.leader, watch_ack_atom::value, id, static_cast<uint64_t>(changes.size()),
                 core::change_bytes(changes));
      update_watch(self, st);
    },
    [=](change_atom, uint64_t id, const std::string& why) {
      if (id != st->watch_id)
        return;
      // Notifications were lost: close every subscriber, as Redis closes a pub/sub client
      // past its output limit, so that none listens on unaware of the gap.
      std::vector<connection_handle> subscribers;
      for (auto& [hdl, c] : st->conns)
        if (c.subscribed())
          subscribers.push_back(hdl);
      st->ctx.log.warn("keyspace notifications stopped: {}; closing its {} subscriber "
                       "connections (they may subscribe again)",
                       why, subscribers.size());
      for (auto hdl : subscribers)
        close_conn(self, *st, hdl);
      st->watch_id = 0;
      update_watch(self, st); // subscribe again, for whoever subscribes next
    },
    [=](const caf::io::acceptor_closed_msg&) {},
  };
}

} // namespace

result<gateway> start_resp_gateway(caf::actor_system& sys, node_context ctx,
                                   const std::string& host, uint16_t port) {
  return start_gateway(sys, resp_gateway, std::move(ctx), host, port);
}

} // namespace mlr::actors
