// The Redis-protocol (RESP) gateway, parsed with hiredis's redisReader: redis-cli and
// redis-benchmark work unmodified. Pipelined SETs and GETs are gathered into one leader
// message per read.
//
// Hostile and careless clients: requests are read by resp_reader, which bounds every count
// and length before anything is allocated for it; a connection's requests in flight and
// unsent answers are bounded by client_flow. Over a limit the client gets
// "-ERR Protocol error: ..." and the connection is closed; everyone else is served.

#include "gateways/detail/gateway_common.hpp"
#include "gateways/node_status.hpp"
#include "gateways/resp_reader.hpp"
#include "messages/wire.hpp"

#include <caf/actor_system.hpp>
#include <caf/detail/scope_guard.hpp>
#include <caf/io/broker.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

namespace mlr::actors {

using namespace detail;

namespace {

std::string resp_simple(const std::string& s) {
  return "+" + s + "\r\n";
}
std::string resp_error(const std::string& s) {
  return "-" + s + "\r\n";
}
std::string resp_int(uint64_t x) {
  return ":" + std::to_string(x) + "\r\n";
}
std::string resp_nil(bool resp3) {
  return resp3 ? "_\r\n" : "$-1\r\n";
}
std::string resp_bulk(const std::string& s) {
  return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
}
std::string resp_array(const std::vector<std::string>& encoded) {
  std::string out = "*" + std::to_string(encoded.size()) + "\r\n";
  for (auto& e : encoded)
    out += e;
  return out;
}

struct resp_conn {
  /// Unique per connection in this process: the OS reuses file descriptors, and with them
  /// CAF's connection handles, so every answer checks it goes to the connection that asked.
  uint64_t serial = 0;
  std::unique_ptr<resp_reader> reader;
  reply_queue replies;
  client_flow flow;
  std::string where;
  bool closing = false;
  client_role role = client_role::none;
  bool resp3 = false; ///< HELLO 3: nulls are written as RESP3's "_"
};

// Where an answer goes: the connection (and which one of those on this handle) and the
// request's place in its reply order.
struct reply_to {
  connection_handle hdl;
  uint64_t serial = 0;
  uint64_t seq = 0;
};

enum class run_kind { none, set, get };

// Consecutive SETs or GETs of one connection, parsed from the same read.
struct command_run {
  run_kind kind = run_kind::none;
  bool resp3 = false;
  std::vector<reply_to> to;
  std::vector<std::string> keys;
  std::vector<std::string> values;
};

struct resp_state {
  node_context ctx;
  std::map<connection_handle, resp_conn> conns;
  std::map<connection_handle, command_run> runs;
  uint64_t next_serial = 0;

  resp_conn* find(connection_handle hdl) {
    auto i = conns.find(hdl);
    return i == conns.end() ? nullptr : &i->second;
  }
  resp_conn* find(connection_handle hdl, uint64_t serial) {
    auto* c = find(hdl);
    return c && c->serial == serial ? c : nullptr;
  }
};

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

std::string info_text(const std::string& json_text) {
  auto j = nlohmann::json::parse(json_text, nullptr, false);
  std::string out = "# Server\r\nmlr_node:" + j.value("node", std::string()) +
                    "\r\nmlr_cluster:" + j.value("cluster", std::string()) +
                    "\r\nmlr_topology:" + j.value("topology", std::string()) +
                    "\r\nmlr_resolver:" + j.value("resolver", std::string()) +
                    "\r\n\r\n# Replication\r\nrole:master\r\n";
  size_t up = 0;
  std::string peers;
  size_t idx = 0;
  if (j.contains("peers"))
    for (auto& p : j["peers"]) {
      up += p.value("up", false) ? 1 : 0;
      peers += "peer" + std::to_string(idx++) + ":id=" + p.value("id", std::string()) +
               ",up=" + (p.value("up", false) ? "1" : "0") +
               ",protocol=" + std::to_string(p.value("protocol_version", 0)) +
               ",lag_events=" + std::to_string(p.value("lag_events", 0)) +
               ",lag_seconds=" + std::to_string(p.value("lag_seconds", 0.0)) + "\r\n";
    }
  out += "connected_peers:" + std::to_string(up) + "\r\n" + peers;
  if (j.contains("applied")) {
    std::string vv;
    for (auto& [k, v] : j["applied"].items())
      vv += (vv.empty() ? "" : ",") + k + "=" + std::to_string(v.get<uint64_t>());
    out += "version_vector:" + vv + "\r\n";
  }
  if (j.contains("stats"))
    for (auto& [k, v] : j["stats"].items())
      out += k + ":" + v.dump() + "\r\n";
  out += "\r\n# Keyspace\r\ndb0:keys=" + std::to_string(j.value("live_keys", 0)) + "\r\n";
  return out;
}

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
      spdlog::warn("closing RESP connection from {}: {} bytes of answers unread (the limit is "
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

  // Reads `keys` in one leader message and hands the results, in order, to `done`.
  auto get_all = [self, st](std::vector<std::string> keys,
                            std::function<void(std::vector<get_result>)> done,
                            std::function<void(caf::error&)> failed) {
    self->request(st->ctx.leader, request_timeout, get_atom::value, std::move(keys))
      .then([done](std::vector<get_result>& rs) { done(std::move(rs)); },
            [failed](caf::error& err) { failed(err); });
  };

  auto dispatch = [self, st, answer, get_all, reserve](connection_handle hdl,
                                                       std::vector<std::string> args) {
    auto& conn = *st->find(hdl);
    auto to = reserve(hdl, conn);
    auto cmd = upper(args[0]);
    auto fail_read = [answer, to](caf::error& err) {
      answer(to, resp_error("ERR " + failure_text(err, false)));
    };
    auto fail_write = [answer, to](caf::error& err) {
      answer(to, resp_error("ERR " + failure_text(err, true)));
    };
    auto arity = [&](size_t min, size_t max, bool pairs = false) {
      if (args.size() < min || args.size() > max || (pairs && args.size() % 2 == 0)) {
        answer(to, resp_error("ERR wrong number of arguments for '" + args[0] + "' command"));
        return false;
      }
      return true;
    };
    constexpr size_t many = ~size_t{0};
    if (cmd == "AUTH") {
      // AUTH secret, or AUTH user secret (Redis 6's form; the user name is not checked).
      if (!arity(2, 3))
        return;
      auto role = role_for(st->ctx.access, args.back());
      if (role == client_role::none) {
        spdlog::warn("RESP client {}: AUTH with a wrong secret", conn.where);
        answer(to, resp_error("WRONGPASS invalid username-password pair or user is disabled."));
      } else {
        conn.role = role;
        conn.reader->set_authenticated(true);
        answer(to, resp_simple("OK"));
      }
      return;
    }
    if (cmd == "HELLO") {
      // HELLO [protover [AUTH user secret] [SETNAME name]]
      bool resp3 = conn.resp3;
      if (args.size() >= 2) {
        if (args[1] != "2" && args[1] != "3") {
          answer(to, resp_error("NOPROTO unsupported protocol version"));
          return;
        }
        resp3 = args[1] == "3";
      }
      for (size_t i = 2; i < args.size(); ++i) {
        auto opt = upper(args[i]);
        if (opt == "AUTH" && i + 2 < args.size()) {
          auto role = role_for(st->ctx.access, args[i + 2]);
          if (role == client_role::none) {
            spdlog::warn("RESP client {}: HELLO AUTH with a wrong secret", conn.where);
            answer(to, resp_error("WRONGPASS invalid username-password pair or user is disabled."));
            return;
          }
          conn.role = role;
          conn.reader->set_authenticated(true);
          i += 2;
        } else if (opt == "SETNAME" && i + 1 < args.size()) {
          ++i;
        } else {
          answer(to, resp_error("ERR syntax error in HELLO option '" + args[i] + "'"));
          return;
        }
      }
      if (conn.role == client_role::none) {
        answer(to, resp_error("NOAUTH HELLO must be called with the client's credentials "
                              "(HELLO 3 AUTH default SECRET)"));
        return;
      }
      conn.resp3 = resp3;
      std::vector<std::pair<std::string, std::string>> fields{
        {resp_bulk("server"), resp_bulk("mlr")},       {resp_bulk("version"), resp_bulk("0.1.0")},
        {resp_bulk("proto"), resp_int(resp3 ? 3 : 2)}, {resp_bulk("id"), resp_int(conn.serial)},
        {resp_bulk("mode"), resp_bulk("standalone")},  {resp_bulk("role"), resp_bulk("master")},
        {resp_bulk("modules"), resp_array({})}};
      std::string out =
        (resp3 ? "%" : "*") + std::to_string(resp3 ? fields.size() : 2 * fields.size()) + "\r\n";
      for (auto& [k, v] : fields)
        out += k + v;
      answer(to, out);
      return;
    }
    if (cmd == "PING") {
      if (arity(1, 2))
        answer(to, args.size() == 2 ? resp_bulk(args[1]) : resp_simple("PONG"));
    } else if (cmd == "GET") {
      if (arity(2, 2))
        self->request(st->ctx.leader, request_timeout, get_atom::value, args[1])
          .then(
            [answer, to, resp3 = conn.resp3](get_result& g) {
              auto* v = newest(g.siblings);
              answer(to, v ? resp_bulk(v->value) : resp_nil(resp3));
            },
            fail_read);
    } else if (cmd == "SET") {
      if (args.size() > 3)
        answer(to, resp_error("ERR SET options (EX, PX, NX, XX, ...) are not supported"));
      else if (arity(3, 3))
        self->request(st->ctx.leader, request_timeout, put_atom::value, args[1], args[2])
          .then([answer, to](messages::dot&) { answer(to, resp_simple("OK")); }, fail_write);
    } else if (cmd == "MSET") {
      if (arity(3, many, true)) {
        std::vector<write_request> writes;
        for (size_t i = 1; i + 1 < args.size(); i += 2)
          writes.push_back(write_request{args[i], messages::op_kind::put, args[i + 1], false, {}});
        self->request(st->ctx.leader, request_timeout, write_atom::value, std::move(writes))
          .then([answer, to](std::vector<messages::dot>&) { answer(to, resp_simple("OK")); },
                fail_write);
      }
    } else if (cmd == "MGET") {
      if (arity(2, many))
        get_all(
          std::vector<std::string>(args.begin() + 1, args.end()),
          [answer, to, resp3 = conn.resp3](std::vector<get_result> rs) {
            std::vector<std::string> out;
            for (auto& g : rs) {
              auto* v = newest(g.siblings);
              out.push_back(v ? resp_bulk(v->value) : resp_nil(resp3));
            }
            answer(to, resp_array(out));
          },
          fail_read);
    } else if (cmd == "EXISTS") {
      if (arity(2, many))
        get_all(
          std::vector<std::string>(args.begin() + 1, args.end()),
          [answer, to](std::vector<get_result> rs) {
            answer(to, resp_int(static_cast<uint64_t>(std::count_if(
                         rs.begin(), rs.end(), [](const get_result& g) { return g.found(); }))));
          },
          fail_read);
    } else if (cmd == "DEL") {
      if (arity(2, many)) {
        std::vector<std::string> keys(args.begin() + 1, args.end());
        get_all(
          keys,
          [self, st, answer, to, keys, fail_write](std::vector<get_result> rs) {
            std::vector<write_request> writes;
            for (size_t i = 0; i < keys.size() && i < rs.size(); ++i)
              if (rs[i].found())
                writes.push_back(
                  write_request{keys[i], messages::op_kind::del, {}, true, rs[i].context.dots});
            auto n = writes.size();
            if (n == 0) {
              answer(to, resp_int(0));
              return;
            }
            self->request(st->ctx.leader, request_timeout, write_atom::value, std::move(writes))
              .then([answer, to, n](std::vector<messages::dot>&) { answer(to, resp_int(n)); },
                    fail_write);
          },
          fail_read);
      }
    } else if (cmd == "DBSIZE") {
      if (arity(1, 1))
        self->request(st->ctx.leader, request_timeout, status_atom::value)
          .then([answer, to](node_status& s) { answer(to, resp_int(s.live_keys)); }, fail_read);
    } else if (cmd == "INFO") {
      collect_status(self, st->ctx, [self, st, answer, to](std::string json) {
        // live_keys comes from the leader's status; add it to the document.
        self->request(st->ctx.leader, request_timeout, status_atom::value)
          .then(
            [answer, to, json](node_status& s) {
              auto j = nlohmann::json::parse(json, nullptr, false);
              j["live_keys"] = s.live_keys;
              answer(to, resp_bulk(info_text(j.dump())));
            },
            [answer, to, json](caf::error&) { answer(to, resp_bulk(info_text(json))); });
      });
    } else if (cmd == "CONFIG") {
      if (args.size() == 3 && upper(args[1]) == "GET") {
        auto what = args[2];
        std::vector<std::string> out;
        if (what == "save" || what == "*") {
          out.push_back(resp_bulk("save"));
          out.push_back(resp_bulk(""));
        }
        if (what == "appendonly" || what == "*") {
          out.push_back(resp_bulk("appendonly"));
          out.push_back(resp_bulk("no"));
        }
        answer(to, resp_array(out));
      } else {
        answer(to, resp_error("ERR only CONFIG GET is supported"));
      }
    } else if (cmd == "COMMAND") {
      answer(to, resp_array({}));
    } else if (cmd == "QUIT") {
      conn.closing = true;
      answer(to, resp_simple("OK"));
    } else {
      std::string shown = args[0].size() > 64 ? args[0].substr(0, 64) + "..." : args[0];
      answer(to, resp_error("ERR unknown command '" + shown + "'"));
    }
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
    spdlog::warn("closing RESP connection from {}: protocol error: {}", c->where, why);
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
        spdlog::warn("refused RESP client {}: {}", c.where, protected_mode_text);
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
        spdlog::warn("closing RESP connection from {}: {}", c->where, why);
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
