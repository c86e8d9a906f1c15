// The RESP commands, one function per family, and the table that names them
// (detail/resp_state.hpp). Pipelined plain SETs and GETs do not come here: the gateway
// gathers them into one leader message (resp_gateway.cpp).

#include "gateways/detail/node_status.hpp"
#include "gateways/detail/resp_state.hpp"

#include <caf/actor_system.hpp>
#include <nlohmann/json.hpp>

#include <unordered_map>

namespace mlr::actors::detail {

std::function<void(caf::error&)> resp_call::fail(bool write) const {
  return [answer = answer, to = to, write](caf::error& err) {
    answer(to, resp_error("ERR " + failure_text(err, write)));
  };
}

void resp_call::get_all(std::vector<std::string> keys,
                        std::function<void(std::vector<get_result>)> done, bool write) const {
  self->request(st->ctx.leader, request_timeout, get_atom::value, std::move(keys))
    .then([done](std::vector<get_result>& rs) { done(std::move(rs)); }, fail(write));
}

namespace {

const char* wrong_pass = "WRONGPASS invalid username-password pair or user is disabled.";

// AUTH secret, or AUTH user secret (Redis 6's form; the user name is not checked).
void auth(resp_call& c) {
  auto role = role_for(c.st->ctx.access, c.args.back());
  if (role == client_role::none) {
    c.st->ctx.log.warn("RESP client {}: AUTH with a wrong secret", c.conn.where);
    c.reply(resp_error(wrong_pass));
    return;
  }
  c.conn.role = role;
  c.conn.reader->set_authenticated(true);
  c.reply(resp_simple("OK"));
}

std::string hello_fields(const resp_conn& conn) {
  std::vector<std::pair<std::string, std::string>> fields{
    {resp_bulk("server"), resp_bulk("mlr")},
    {resp_bulk("version"), resp_bulk("0.1.0")},
    {resp_bulk("proto"), resp_int(conn.resp3 ? 3 : 2)},
    {resp_bulk("id"), resp_int(conn.serial)},
    {resp_bulk("mode"), resp_bulk("standalone")},
    {resp_bulk("role"), resp_bulk("master")},
    {resp_bulk("modules"), resp_array({})}};
  std::string out = (conn.resp3 ? "%" : "*") +
                    std::to_string(conn.resp3 ? fields.size() : 2 * fields.size()) + "\r\n";
  for (auto& [k, v] : fields)
    out += k + v;
  return out;
}

// HELLO [protover [AUTH user secret] [SETNAME name]]
void hello(resp_call& c) {
  auto& args = c.args;
  bool resp3 = c.conn.resp3;
  if (args.size() >= 2) {
    if (args[1] != "2" && args[1] != "3")
      return c.reply(resp_error("NOPROTO unsupported protocol version"));
    resp3 = args[1] == "3";
  }
  for (size_t i = 2; i < args.size(); ++i) {
    auto opt = upper(args[i]);
    if (opt == "AUTH" && i + 2 < args.size()) {
      auto role = role_for(c.st->ctx.access, args[i + 2]);
      if (role == client_role::none) {
        c.st->ctx.log.warn("RESP client {}: HELLO AUTH with a wrong secret", c.conn.where);
        return c.reply(resp_error(wrong_pass));
      }
      c.conn.role = role;
      c.conn.reader->set_authenticated(true);
      i += 2;
    } else if (opt == "SETNAME" && i + 1 < args.size()) {
      ++i;
    } else {
      return c.reply(resp_error("ERR syntax error in HELLO option '" + args[i] + "'"));
    }
  }
  if (c.conn.role == client_role::none)
    return c.reply(resp_error("NOAUTH HELLO must be called with the client's credentials "
                              "(HELLO 3 AUTH default SECRET)"));
  c.conn.resp3 = resp3;
  c.reply(hello_fields(c.conn));
}

void ping(resp_call& c) {
  if (c.conn.subscribed() && !c.conn.resp3) // Redis answers a push-shaped pong then
    c.reply("*2\r\n" + resp_bulk("pong") + resp_bulk(c.args.size() == 2 ? c.args[1] : ""));
  else
    c.reply(c.args.size() == 2 ? resp_bulk(c.args[1]) : resp_simple("PONG"));
}

void quit(resp_call& c) {
  c.conn.closing = true;
  c.reply(resp_simple("OK"));
}

// Strings: GET, SET, MGET, MSET.
void get(resp_call& c) {
  c.self->request(c.st->ctx.leader, request_timeout, get_atom::value, c.args[1])
    .then([answer = c.answer, to = c.to,
           resp3 = c.conn.resp3](get_result& g) { answer(to, resp_value(g, resp3, true)); },
          c.fail(false));
}

void set(resp_call& c) {
  if (c.args.size() > 3)
    return c.reply(resp_error("ERR SET options (EX, PX, NX, XX, ...) are not supported"));
  if (c.args.size() < 3)
    return c.reply(resp_error("ERR wrong number of arguments for '" + c.args[0] + "' command"));
  c.self->request(c.st->ctx.leader, request_timeout, put_atom::value, c.args[1], c.args[2])
    .then([answer = c.answer, to = c.to](messages::dot&) { answer(to, resp_simple("OK")); },
          c.fail(true));
}

void mset(resp_call& c) {
  std::vector<write_request> writes;
  for (size_t i = 1; i + 1 < c.args.size(); i += 2)
    writes.push_back(write_request{c.args[i], messages::op_kind::put, c.args[i + 1], false, {}});
  c.self->request(c.st->ctx.leader, request_timeout, write_atom::value, std::move(writes))
    .then([answer = c.answer,
           to = c.to](std::vector<messages::dot>&) { answer(to, resp_simple("OK")); },
          c.fail(true));
}

void mget(resp_call& c) {
  c.get_all(std::vector<std::string>(c.args.begin() + 1, c.args.end()),
            [answer = c.answer, to = c.to, resp3 = c.conn.resp3](std::vector<get_result> rs) {
              std::vector<std::string> out;
              for (auto& g : rs)
                out.push_back(resp_value(g, resp3, false));
              answer(to, resp_array(out));
            });
}

// Keys: EXISTS, DEL (a delete replaces exactly the versions read), DBSIZE.
void exists(resp_call& c) {
  c.get_all(std::vector<std::string>(c.args.begin() + 1, c.args.end()),
            [answer = c.answer, to = c.to](std::vector<get_result> rs) {
              answer(to, resp_int(static_cast<uint64_t>(std::count_if(
                           rs.begin(), rs.end(), [](const get_result& g) { return g.found(); }))));
            });
}

void del(resp_call& c) {
  std::vector<std::string> keys(c.args.begin() + 1, c.args.end());
  c.get_all(keys, [self = c.self, st = c.st, answer = c.answer, to = c.to, failed = c.fail(true),
                   keys](std::vector<get_result> rs) {
    std::vector<write_request> writes;
    for (size_t i = 0; i < keys.size() && i < rs.size(); ++i)
      if (rs[i].found())
        writes.push_back(
          write_request{keys[i], messages::op_kind::del, {}, true, rs[i].context.dots});
    auto n = writes.size();
    if (n == 0)
      return answer(to, resp_int(0));
    self->request(st->ctx.leader, request_timeout, write_atom::value, std::move(writes))
      .then([answer, to, n](std::vector<messages::dot>&) { answer(to, resp_int(n)); }, failed);
  });
}

void dbsize(resp_call& c) {
  c.self->request(c.st->ctx.leader, request_timeout, status_atom::value)
    .then([answer = c.answer, to = c.to](node_status& s) { answer(to, resp_int(s.live_keys)); },
          c.fail(false));
}

// Server: INFO, CONFIG GET, COMMAND.
void info(resp_call& c) {
  collect_status(
    c.self, c.st->ctx, c.st->status,
    [st = c.st, answer = c.answer, to = c.to](const std::shared_ptr<const std::string>& json) {
      if (st->info_json != json) {
        st->info_json = json;
        st->info_rendered = resp_bulk(info_text(*json));
      }
      answer(to, st->info_rendered);
    });
}

void config(resp_call& c) {
  if (c.args.size() != 3 || upper(c.args[1]) != "GET")
    return c.reply(resp_error("ERR only CONFIG GET is supported"));
  auto& what = c.args[2];
  std::vector<std::string> out;
  if (what == "save" || what == "*") {
    out.push_back(resp_bulk("save"));
    out.push_back(resp_bulk(""));
  }
  if (what == "appendonly" || what == "*") {
    out.push_back(resp_bulk("appendonly"));
    out.push_back(resp_bulk("no"));
  }
  c.reply(resp_array(out));
}

void command(resp_call& c) {
  c.reply(resp_array({}));
}

constexpr size_t many = ~size_t{0};

const std::unordered_map<std::string, resp_command>& table() {
  static std::unordered_map<std::string, resp_command> commands{
    {"AUTH", {2, 3, false, auth}},        {"HELLO", {1, many, false, hello}},
    {"PING", {1, 2, false, ping}},        {"QUIT", {1, many, false, quit}},
    {"GET", {2, 2, false, get}},          {"SET", {1, many, false, set}},
    {"MGET", {2, many, false, mget}},     {"MSET", {3, many, true, mset}},
    {"EXISTS", {2, many, false, exists}}, {"DEL", {2, many, false, del}},
    {"DBSIZE", {1, 1, false, dbsize}},    {"INFO", {1, many, false, info}},
    {"CONFIG", {1, many, false, config}}, {"COMMAND", {1, many, false, command}},
  };
  static const bool typed_added = [] {
    for (auto& [name, cmd] : typed_commands())
      commands.emplace(name, cmd);
    for (auto& [name, cmd] : pubsub_commands())
      commands.emplace(name, cmd);
    return true;
  }();
  (void)typed_added;
  return commands;
}

} // namespace

const resp_command* find_command(const std::string& upper_name) {
  auto i = table().find(upper_name);
  return i == table().end() ? nullptr : &i->second;
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

} // namespace mlr::actors::detail
