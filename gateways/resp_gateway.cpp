// The Redis-protocol (RESP) gateway, parsed with hiredis's redisReader: redis-cli and
// redis-benchmark work unmodified. Pipelined SETs and GETs are gathered into one leader
// message per read.
//
// Hostile and careless clients: requests are read by resp_reader, which bounds every count
// and length before anything is allocated for it; a connection's requests in flight and
// unsent answers are bounded by client_flow. Over a limit the client gets
// "-ERR Protocol error: ..." and the connection is closed; everyone else is served.

#include "gateways/detail/resp_state.hpp"
#include "gateways/node_status.hpp"
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

caf::behavior resp_gateway(caf::io::broker* self, node_context ctx, std::string host, uint16_t port,
                           listen_promise opened) {
  auto st = std::make_shared<resp_state>();
  st->ctx = std::move(ctx);
  if (!open_listener(self, host, port, opened, "Redis clients"))
    return {};

  auto close_conn = [self, st](connection_handle hdl) {
    auto i = st->conns.find(hdl);
    if (i == st->conns.end())
      return;
    self->close(hdl);
    st->conns.erase(i);
    st->runs.erase(hdl);
  };

  // Writes an answer to the connection that asked, in request order; an answer for a
  // connection that closed (even if its handle was reused since) is dropped.
  auto answer = [self, st, close_conn](const reply_to& to, std::string bytes) {
    auto* c = st->find(to.hdl, to.serial);
    if (!c)
      return;
    auto ready = c->replies.fill(to.seq, std::move(bytes));
    c->flow.output_backlog += ready.size(); // until the next data_transferred_msg says
    if (c->flow.output_backlog > st->ctx.max_output_hard_bytes) {
      st->ctx.log.warn("closing RESP connection from {}: {} bytes of answers unread (the limit is "
                       "{})",
                       c->where, c->flow.output_backlog, st->ctx.max_output_hard_bytes);
      close_conn(to.hdl);
      return;
    }
    write_bytes(self, to.hdl, ready);
    c->flow.in_flight = c->replies.slots.size();
    if (c->flow.update(st->ctx))
      self->send(self, resume_atom::value, to.hdl.id(), to.serial);
    if (c->closing && c->replies.slots.empty())
      close_conn(to.hdl);
  };

  auto reserve = [self, st](connection_handle hdl, resp_conn& c) {
    reply_to to{hdl, c.serial, c.replies.reserve()};
    c.flow.in_flight = c.replies.slots.size();
    c.flow.update(st->ctx);
    return to;
  };

  // One request, by the command table (resp_commands.cpp).
  auto dispatch = [self, st, answer, reserve](connection_handle hdl,
                                              std::vector<std::string> args) {
    auto& conn = *st->find(hdl);
    auto to = reserve(hdl, conn);
    auto* command = find_command(upper(args[0]));
    if (!command) {
      std::string shown = args[0].size() > 64 ? args[0].substr(0, 64) + "..." : args[0];
      answer(to, resp_error("ERR unknown command '" + shown + "'"));
      return;
    }
    if (args.size() < command->min_args || args.size() > command->max_args ||
        (command->pairs && args.size() % 2 == 0)) {
      answer(to, resp_error("ERR wrong number of arguments for '" + args[0] + "' command"));
      return;
    }
    resp_call call{self, st, conn, to, args, answer};
    command->run(call);
  };

  // Sends the gathered run of SETs (one write message) or GETs (one read message).
  auto flush_run = [self, st, answer](connection_handle hdl) {
    auto i = st->runs.find(hdl);
    if (i == st->runs.end() || i->second.kind == run_kind::none)
      return;
    auto run = std::move(i->second);
    st->runs.erase(i);
    auto tos = std::make_shared<std::vector<reply_to>>(std::move(run.to));
    auto fail_all = [answer, tos, kind = run.kind](caf::error& err) {
      for (auto& to : *tos)
        answer(to, resp_error("ERR " + failure_text(err, kind == run_kind::set)));
    };
    if (run.kind == run_kind::set) {
      std::vector<write_request> writes;
      writes.reserve(run.keys.size());
      for (size_t k = 0; k < run.keys.size(); ++k)
        writes.push_back(write_request{
          std::move(run.keys[k]), messages::op_kind::put, std::move(run.values[k]), false, {}});
      self->request(st->ctx.leader, request_timeout, write_atom::value, std::move(writes))
        .then(
          [answer, tos](std::vector<messages::dot>&) {
            for (auto& to : *tos)
              answer(to, resp_simple("OK"));
          },
          fail_all);
    } else {
      self->request(st->ctx.leader, request_timeout, get_atom::value, std::move(run.keys))
        .then(
          [answer, tos, resp3 = run.resp3](std::vector<get_result>& rs) {
            for (size_t k = 0; k < tos->size() && k < rs.size(); ++k) {
              auto* v = newest(rs[k].siblings);
              answer((*tos)[k], v ? resp_bulk(v->value) : resp_nil(resp3));
            }
          },
          fail_all);
    }
  };

  // Closes a connection whose input broke a rule, telling the client why first.
  auto protocol_error = [self, st, close_conn](connection_handle hdl, const std::string& why) {
    auto* c = st->find(hdl);
    if (!c)
      return;
    st->ctx.log.warn("closing RESP connection from {}: protocol error: {}", c->where, why);
    write_bytes(self, hdl, resp_error("ERR Protocol error: " + why));
    close_conn(hdl);
  };

  // Takes every whole request out of the connection's reader.
  auto drain = [st, dispatch, flush_run, protocol_error, reserve, answer](connection_handle hdl) {
    auto flush_at_exit = caf::detail::make_scope_guard([&] { flush_run(hdl); });
    for (;;) {
      auto* c = st->find(hdl);
      if (!c || c->closing || c->flow.paused)
        return; // a paused connection's requests wait in its reader
      auto got = c->reader->next();
      if (!got) {
        flush_run(hdl);
        protocol_error(hdl, got.err().message);
        return;
      }
      if (!*got)
        return; // needs more bytes
      auto req = &**got;
      if (req->empty())
        continue; // "*0\r\n": nothing to do, as in Redis
      auto& args = *req;
      auto cmd = upper(args[0]);
      if (c->role == client_role::none && cmd != "AUTH" && cmd != "HELLO" && cmd != "QUIT") {
        flush_run(hdl);
        answer(reserve(hdl, *c), resp_error("NOAUTH Authentication required."));
        continue;
      }
      // Pipelined plain SETs and GETs are gathered into one leader message per run.
      auto kind = cmd == "SET" && args.size() == 3   ? run_kind::set
                  : cmd == "GET" && args.size() == 2 ? run_kind::get
                                                     : run_kind::none;
      if (kind == run_kind::none) {
        flush_run(hdl);
        dispatch(hdl, std::move(args));
        continue;
      }
      if (auto it = st->runs.find(hdl); it != st->runs.end() && it->second.kind != kind)
        flush_run(hdl);
      auto& r = st->runs[hdl];
      r.kind = kind;
      r.resp3 = c->resp3;
      r.to.push_back(reserve(hdl, *c));
      r.keys.push_back(std::move(args[1]));
      if (kind == run_kind::set)
        r.values.push_back(std::move(args[2]));
    }
  };

  return {
    [=](const caf::io::new_connection_msg& msg) {
      auto& c = st->conns[msg.handle];
      c = resp_conn{}; // a closed connection whose handle the OS reused goes
      c.serial = ++st->next_serial;
      c.reader = std::make_unique<resp_reader>(
        std::max(st->ctx.max_value_bytes, st->ctx.max_key_bytes) + (1u << 20));
      c.where = accept_connection(self, msg.handle);
      c.role = initial_role(st->ctx.access);
      c.reader->set_authenticated(c.role != client_role::none);
      self->ack_writes(msg.handle, true);
      if (refused_remote(st->ctx.access, self->remote_addr(msg.handle))) {
        st->ctx.log.warn("refused RESP client {}: {}", c.where, protected_mode_text);
        write_bytes(self, msg.handle, resp_error(std::string("DENIED ") + protected_mode_text));
        close_conn(msg.handle);
      }
    },
    [=](const caf::io::new_data_msg& msg) {
      auto* c = st->find(msg.handle);
      if (!c || c->closing)
        return;
      c->reader->feed(msg.buf.data(), msg.buf.size());
      if (c->flow.paused && c->reader->buffered() > st->ctx.max_paused_input) {
        auto why = c->flow.overrun(st->ctx);
        st->ctx.log.warn("closing RESP connection from {}: {}", c->where, why);
        write_bytes(self, msg.handle, resp_error("ERR " + why));
        close_conn(msg.handle);
        return;
      }
      drain(msg.handle);
    },
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
        drain(hdl);
    },
    [=](const caf::io::connection_closed_msg& msg) {
      st->runs.erase(msg.handle);
      st->conns.erase(msg.handle);
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
