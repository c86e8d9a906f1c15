// The Redis-protocol (RESP) gateway, parsed with hiredis's redisReader: redis-cli and
// redis-benchmark work unmodified. Pipelined SETs and GETs are gathered into one leader
// message per read.

#include "actors/gateway_common.hpp"
#include "actors/node_status.hpp"
#include "messages/wire.hpp"

#include <caf/actor_system.hpp>
#include <caf/io/broker.hpp>
#include <spdlog/spdlog.h>
#include <caf/detail/scope_guard.hpp>
#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>

namespace mlr::actors {

using namespace detail;

namespace {

std::string resp_simple(const std::string& s) { return "+" + s + "\r\n"; }
std::string resp_error(const std::string& s) { return "-" + s + "\r\n"; }
std::string resp_int(uint64_t x) { return ":" + std::to_string(x) + "\r\n"; }
std::string resp_nil() { return "$-1\r\n"; }
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
  redisReader* reader = nullptr;
  reply_queue replies;
  std::string where;
  bool closing = false;
};

enum class run_kind { none, set, get };

// Consecutive SETs or GETs of one connection, parsed from the same read.
struct command_run {
  run_kind kind = run_kind::none;
  std::vector<uint64_t> seqs;
  std::vector<std::string> keys;
  std::vector<std::string> values;
};

struct resp_state {
  node_context ctx;
  std::map<connection_handle, resp_conn> conns;
  std::map<connection_handle, command_run> runs;
  ~resp_state() {
    for (auto& [h, c] : conns)
      if (c.reader)
        redisReaderFree(c.reader);
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

caf::behavior resp_gateway(caf::io::broker* self, node_context ctx, std::string host,
                           uint16_t port, listen_promise opened) {
  auto st = std::make_shared<resp_state>();
  st->ctx = std::move(ctx);
  if (!open_listener(self, host, port, opened, "Redis clients"))
    return {};

  auto answer = [self, st](connection_handle hdl, uint64_t seq, std::string bytes) {
    auto i = st->conns.find(hdl);
    if (i == st->conns.end())
      return;
    write_bytes(self, hdl, i->second.replies.fill(seq, std::move(bytes)));
    if (i->second.closing && i->second.replies.slots.empty()) {
      self->close(hdl);
      redisReaderFree(i->second.reader);
      st->conns.erase(i);
    }
  };

  // Reads `keys` in one leader message and hands the results, in order, to `done`.
  auto get_all = [self, st](std::vector<std::string> keys,
                            std::function<void(std::vector<get_result>)> done) {
    auto n = keys.size();
    self->request(st->ctx.leader, request_timeout, get_atom::value, std::move(keys))
      .then([done](std::vector<get_result>& rs) { done(std::move(rs)); },
            [done, n](caf::error&) { done(std::vector<get_result>(n)); });
  };

  auto dispatch = [self, st, answer, get_all](connection_handle hdl,
                                              std::vector<std::string> args) {
    auto& conn = st->conns[hdl];
    auto seq = conn.replies.reserve();
    auto cmd = upper(args[0]);
    auto fail = [answer, hdl, seq, self](caf::error& err) {
      answer(hdl, seq, resp_error("ERR " + self->system().render(err)));
    };
    auto arity = [&](size_t min, size_t max, bool pairs = false) {
      if (args.size() < min || args.size() > max || (pairs && args.size() % 2 == 0)) {
        answer(hdl, seq, resp_error("ERR wrong number of arguments for '" + args[0] +
                                    "' command"));
        return false;
      }
      return true;
    };
    constexpr size_t many = ~size_t{0};
    if (cmd == "PING") {
      if (arity(1, 2))
        answer(hdl, seq, args.size() == 2 ? resp_bulk(args[1]) : resp_simple("PONG"));
    } else if (cmd == "GET") {
      if (arity(2, 2))
        self->request(st->ctx.leader, request_timeout, get_atom::value, args[1])
          .then(
            [answer, hdl, seq](get_result& g) {
              auto* v = newest(g.siblings);
              answer(hdl, seq, v ? resp_bulk(v->value) : resp_nil());
            },
            fail);
    } else if (cmd == "SET") {
      if (args.size() > 3)
        answer(hdl, seq, resp_error("ERR SET options (EX, PX, NX, XX, ...) are not supported"));
      else if (arity(3, 3))
        self->request(st->ctx.leader, request_timeout, put_atom::value, args[1], args[2])
          .then([answer, hdl, seq](messages::dot&) { answer(hdl, seq, resp_simple("OK")); },
                fail);
    } else if (cmd == "MSET") {
      if (arity(3, many, true)) {
        std::vector<write_request> writes;
        for (size_t i = 1; i + 1 < args.size(); i += 2)
          writes.push_back(write_request{args[i], messages::op_kind::put, args[i + 1], false, {}});
        self->request(st->ctx.leader, request_timeout, write_atom::value, std::move(writes))
          .then([answer, hdl, seq](std::vector<messages::dot>&) {
                  answer(hdl, seq, resp_simple("OK"));
                },
                fail);
      }
    } else if (cmd == "MGET") {
      if (arity(2, many))
        get_all(std::vector<std::string>(args.begin() + 1, args.end()),
                [answer, hdl, seq](std::vector<get_result> rs) {
                  std::vector<std::string> out;
                  for (auto& g : rs) {
                    auto* v = newest(g.siblings);
                    out.push_back(v ? resp_bulk(v->value) : resp_nil());
                  }
                  answer(hdl, seq, resp_array(out));
                });
    } else if (cmd == "EXISTS") {
      if (arity(2, many))
        get_all(std::vector<std::string>(args.begin() + 1, args.end()),
                [answer, hdl, seq](std::vector<get_result> rs) {
                  answer(hdl, seq, resp_int(static_cast<uint64_t>(std::count_if(
                                     rs.begin(), rs.end(),
                                     [](const get_result& g) { return g.found(); }))));
                });
    } else if (cmd == "DEL") {
      if (arity(2, many)) {
        std::vector<std::string> keys(args.begin() + 1, args.end());
        get_all(keys, [self, st, answer, hdl, seq, keys](std::vector<get_result> rs) {
          std::vector<write_request> writes;
          for (size_t i = 0; i < keys.size(); ++i)
            if (rs[i].found())
              writes.push_back(write_request{keys[i], messages::op_kind::del, {}, true,
                                             rs[i].context.dots});
          auto n = writes.size();
          if (n == 0) {
            answer(hdl, seq, resp_int(0));
            return;
          }
          self->request(st->ctx.leader, request_timeout, write_atom::value, std::move(writes))
            .then([answer, hdl, seq, n](std::vector<messages::dot>&) {
                    answer(hdl, seq, resp_int(n));
                  },
                  [answer, hdl, seq, self](caf::error& err) {
                    answer(hdl, seq, resp_error("ERR " + self->system().render(err)));
                  });
        });
      }
    } else if (cmd == "DBSIZE") {
      if (arity(1, 1))
        self->request(st->ctx.leader, request_timeout, status_atom::value)
          .then([answer, hdl, seq](node_status& s) { answer(hdl, seq, resp_int(s.live_keys)); },
                fail);
    } else if (cmd == "INFO") {
      collect_status(self, st->ctx, [self, st, answer, hdl, seq](std::string json) {
        // live_keys comes from the leader's status; add it to the document.
        self->request(st->ctx.leader, request_timeout, status_atom::value)
          .then(
            [answer, hdl, seq, json](node_status& s) {
              auto j = nlohmann::json::parse(json, nullptr, false);
              j["live_keys"] = s.live_keys;
              answer(hdl, seq, resp_bulk(info_text(j.dump())));
            },
            [answer, hdl, seq, json](caf::error&) {
              answer(hdl, seq, resp_bulk(info_text(json)));
            });
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
        answer(hdl, seq, resp_array(out));
      } else {
        answer(hdl, seq, resp_error("ERR only CONFIG GET is supported"));
      }
    } else if (cmd == "COMMAND") {
      answer(hdl, seq, resp_array({}));
    } else if (cmd == "QUIT") {
      conn.closing = true;
      answer(hdl, seq, resp_simple("OK"));
    } else {
      std::string shown = args[0].size() > 64 ? args[0].substr(0, 64) + "..." : args[0];
      answer(hdl, seq, resp_error("ERR unknown command '" + shown + "'"));
    }
  };

  // Sends the gathered run of SETs (one write message) or GETs (one read message).
  auto flush_run = [self, st, answer](connection_handle hdl) {
    auto i = st->runs.find(hdl);
    if (i == st->runs.end() || i->second.kind == run_kind::none)
      return;
    auto run = std::move(i->second);
    st->runs.erase(i);
    auto seqs = std::make_shared<std::vector<uint64_t>>(std::move(run.seqs));
    auto fail_all = [answer, hdl, seqs, self](caf::error& err) {
      for (auto seq : *seqs)
        answer(hdl, seq, resp_error("ERR " + self->system().render(err)));
    };
    if (run.kind == run_kind::set) {
      std::vector<write_request> writes;
      writes.reserve(run.keys.size());
      for (size_t k = 0; k < run.keys.size(); ++k)
        writes.push_back(write_request{std::move(run.keys[k]), messages::op_kind::put,
                                       std::move(run.values[k]), false, {}});
      self->request(st->ctx.leader, request_timeout, write_atom::value, std::move(writes))
        .then(
          [answer, hdl, seqs](std::vector<messages::dot>&) {
            for (auto seq : *seqs)
              answer(hdl, seq, resp_simple("OK"));
          },
          fail_all);
    } else {
      self->request(st->ctx.leader, request_timeout, get_atom::value, std::move(run.keys))
        .then(
          [answer, hdl, seqs](std::vector<get_result>& rs) {
            for (size_t k = 0; k < seqs->size() && k < rs.size(); ++k) {
              auto* v = newest(rs[k].siblings);
              answer(hdl, (*seqs)[k], v ? resp_bulk(v->value) : resp_nil());
            }
          },
          fail_all);
    }
  };

  return {
    [=](const caf::io::new_connection_msg& msg) {
      auto& c = st->conns[msg.handle];
      c.reader = redisReaderCreate();
      c.where = accept_connection(self, msg.handle);
    },
    [=](const caf::io::new_data_msg& msg) {
      auto i = st->conns.find(msg.handle);
      if (i == st->conns.end() || i->second.closing)
        return;
      auto hdl = msg.handle;
      redisReaderFeed(i->second.reader, msg.buf.data(), msg.buf.size());
      auto flush_at_exit = caf::detail::make_scope_guard([&] { flush_run(hdl); });
      for (;;) {
        auto j = st->conns.find(hdl);
        if (j == st->conns.end() || j->second.closing)
          return;
        void* raw = nullptr;
        if (redisReaderGetReply(j->second.reader, &raw) != REDIS_OK) {
          auto why = std::string(j->second.reader->errstr);
          spdlog::warn("closing RESP connection from {}: protocol error: {}", j->second.where,
                       why);
          write_bytes(self, hdl, resp_error("ERR Protocol error: " + why));
          self->close(hdl);
          redisReaderFree(j->second.reader);
          st->conns.erase(j);
          return;
        }
        if (!raw)
          return;
        auto* reply = static_cast<redisReply*>(raw);
        std::vector<std::string> args;
        bool ok = reply->type == REDIS_REPLY_ARRAY && reply->elements > 0;
        for (size_t k = 0; ok && k < reply->elements; ++k) {
          auto* e = reply->element[k];
          if (e->type != REDIS_REPLY_STRING) {
            ok = false;
            break;
          }
          args.emplace_back(e->str, e->len);
        }
        freeReplyObject(reply);
        if (!ok) {
          flush_run(hdl);
          auto seq = j->second.replies.reserve();
          answer(hdl, seq, resp_error("ERR Protocol error: expected an array of bulk strings"));
          continue;
        }
        // Pipelined plain SETs and GETs are gathered into one leader message per run.
        auto cmd = upper(args[0]);
        auto kind = cmd == "SET" && args.size() == 3 ? run_kind::set
                    : cmd == "GET" && args.size() == 2 ? run_kind::get
                                                       : run_kind::none;
        if (kind == run_kind::none) {
          flush_run(hdl);
          dispatch(hdl, std::move(args));
          continue;
        }
        auto& run = st->runs[hdl];
        if (run.kind != kind)
          flush_run(hdl);
        run.kind = kind;
        run.seqs.push_back(j->second.replies.reserve());
        run.keys.push_back(std::move(args[1]));
        if (kind == run_kind::set)
          run.values.push_back(std::move(args[2]));
      }
    },
    [=](const caf::io::connection_closed_msg& msg) {
      st->runs.erase(msg.handle);
      auto i = st->conns.find(msg.handle);
      if (i != st->conns.end()) {
        redisReaderFree(i->second.reader);
        st->conns.erase(i);
      }
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
