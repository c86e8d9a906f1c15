// The RESP commands of typed keys (core/typed.hpp): counters (INCR, INCRBY, DECR, DECRBY),
// sets (SADD, SREM, SMEMBERS, SISMEMBER, SCARD), hashes (HSET, HGET, HDEL, HGETALL, HLEN,
// HINCRBY), text (TEXT.INSERT, TEXT.DEL, TEXT.GET, TEXT.LEN) and TYPE. Writes go to the leader as
// typed writes, which answer in Redis's terms and refuse a key of another type with Redis's
// WRONGTYPE error.

#include "core/text.hpp"
#include "core/typed.hpp"
#include "gateways/detail/resp_state.hpp"

#include <caf/actor_system.hpp>

#include <charconv>
#include <numeric>

namespace mlr::actors::detail {

namespace typed = core::typed;
using messages::op_kind;

static const char* wrong_type = "WRONGTYPE Operation against a key holding the wrong kind of value";

std::string resp_value(const get_result& g, bool resp3, bool strict) {
  switch (typed::type_of(g.siblings)) {
  case typed::key_type::string:
    return resp_bulk(*typed::string_value(g.siblings));
  case typed::key_type::counter:
    return resp_bulk(std::to_string(typed::counter_value(g.siblings)));
  case typed::key_type::none:
    return resp_nil(resp3);
  default:
    return strict ? resp_error(wrong_type) : resp_nil(resp3);
  }
}

namespace {

std::optional<int64_t> integer(const std::string& s) {
  int64_t x = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty())
    return std::nullopt;
  return x;
}

const char* not_integer = "ERR value is not an integer or out of range";

write_request typed_write(op_kind op, const std::string& key, const std::string& field = {},
                          const std::string& value = {}, int64_t delta = 0) {
  write_request w;
  w.key = key;
  w.op = op;
  w.field = field;
  w.value = value;
  w.delta = delta;
  return w;
}

// Sends typed writes; `done` turns their replies into the answer. The leader's own words
// (WRONGTYPE, an overflow) reach the client as Redis would say them.
void send_typed(resp_call& c, std::vector<write_request> ws,
                std::function<std::string(const std::vector<int64_t>&)> done) {
  auto generic = c.fail(true);
  c.self->request(c.st->ctx.leader, request_timeout, typed_atom::value, std::move(ws))
    .then([answer = c.answer, to = c.to,
           done](std::vector<int64_t>& replies) { answer(to, done(replies)); },
          [answer = c.answer, to = c.to, generic](caf::error& err) {
            auto text = failure_text(err, true);
            if (text.rfind("WRONGTYPE ", 0) == 0 || text.rfind("ERR ", 0) == 0)
              return answer(to, resp_error(text));
            generic(err);
          });
}

std::string sum(const std::vector<int64_t>& rs) {
  return resp_signed(std::accumulate(rs.begin(), rs.end(), int64_t{0}));
}
std::string last(const std::vector<int64_t>& rs) {
  return resp_signed(rs.empty() ? 0 : rs.back());
}

// Reads one key and answers from its versions, or WRONGTYPE when it holds a type other
// than `want` (none: any type).
void read_typed(resp_call& c, typed::key_type want,
                std::function<std::string(const std::vector<messages::version>&)> done) {
  c.self->request(c.st->ctx.leader, request_timeout, get_atom::value, c.args[1])
    .then(
      [answer = c.answer, to = c.to, want, done](get_result& g) {
        auto t = typed::type_of(g.siblings);
        bool other = want != typed::key_type::none && t != want && t != typed::key_type::none;
        answer(to, other ? resp_error(wrong_type) : done(g.siblings));
      },
      c.fail(false));
}

// INCR, DECR, INCRBY, DECRBY.
void counter(resp_call& c) {
  auto name = upper(c.args[0]);
  int64_t delta = name == "DECR" ? -1 : 1;
  if (name == "INCRBY" || name == "DECRBY") {
    auto by = integer(c.args[2]);
    if (!by || (name == "DECRBY" && *by == INT64_MIN))
      return c.reply(resp_error(not_integer));
    delta = name == "DECRBY" ? -*by : *by;
  }
  send_typed(c, {typed_write(op_kind::incr, c.args[1], {}, {}, delta)}, last);
}

// SADD and SREM key member [member ...]: how many were added or removed.
void set_write(resp_call& c) {
  auto op = upper(c.args[0]) == "SADD" ? op_kind::sadd : op_kind::srem;
  std::vector<write_request> ws;
  for (size_t i = 2; i < c.args.size(); ++i)
    ws.push_back(typed_write(op, c.args[1], c.args[i]));
  send_typed(c, std::move(ws), sum);
}

void smembers(resp_call& c) {
  read_typed(c, typed::key_type::set, [](const std::vector<messages::version>& vs) {
    std::vector<std::string> out;
    for (auto& m : typed::set_members(vs))
      out.push_back(resp_bulk(m));
    return resp_array(out);
  });
}

void sismember(resp_call& c) {
  read_typed(c, typed::key_type::set, [m = c.args[2]](const std::vector<messages::version>& vs) {
    return resp_int(typed::set_contains(vs, m) ? 1 : 0);
  });
}

void scard(resp_call& c) {
  read_typed(c, typed::key_type::set, [](const std::vector<messages::version>& vs) {
    return resp_int(typed::set_members(vs).size());
  });
}

// HSET key field value [field value ...]: how many fields are new.
void hset(resp_call& c) {
  if (c.args.size() % 2 != 0)
    return c.reply(resp_error("ERR wrong number of arguments for 'hset' command"));
  std::vector<write_request> ws;
  for (size_t i = 2; i + 1 < c.args.size(); i += 2)
    ws.push_back(typed_write(op_kind::hset, c.args[1], c.args[i], c.args[i + 1]));
  send_typed(c, std::move(ws), sum);
}

void hdel(resp_call& c) {
  std::vector<write_request> ws;
  for (size_t i = 2; i < c.args.size(); ++i)
    ws.push_back(typed_write(op_kind::hdel, c.args[1], c.args[i]));
  send_typed(c, std::move(ws), sum);
}

void hincrby(resp_call& c) {
  auto by = integer(c.args[3]);
  if (!by)
    return c.reply(resp_error(not_integer));
  send_typed(c, {typed_write(op_kind::hincr, c.args[1], c.args[2], {}, *by)}, last);
}

void hget(resp_call& c) {
  read_typed(c, typed::key_type::hash,
             [f = c.args[2], resp3 = c.conn.resp3](const std::vector<messages::version>& vs) {
               auto v = typed::hash_get(vs, f);
               return v ? resp_bulk(*v) : resp_nil(resp3);
             });
}

void hgetall(resp_call& c) {
  read_typed(c, typed::key_type::hash,
             [resp3 = c.conn.resp3](const std::vector<messages::version>& vs) {
               auto fields = typed::hash_fields(vs);
               std::string out = (resp3 ? "%" : "*") +
                                 std::to_string(resp3 ? fields.size() : 2 * fields.size()) + "\r\n";
               for (auto& [f, v] : fields)
                 out += resp_bulk(f) + resp_bulk(v);
               return out;
             });
}

void hlen(resp_call& c) {
  read_typed(c, typed::key_type::hash, [](const std::vector<messages::version>& vs) {
    return resp_int(typed::hash_fields(vs).size());
  });
}

// TEXT.INSERT key index string, TEXT.DEL key index count: the document's new length.
// Indexes and counts are code points; an index past the end means the end.
void text_write(resp_call& c) {
  auto index = integer(c.args[2]);
  if (!index || *index < 0)
    return c.reply(resp_error("ERR index is not a non-negative integer"));
  auto w = typed_write(op_kind::text_insert, c.args[1], {}, c.args[3]);
  w.index = static_cast<uint64_t>(*index);
  if (upper(c.args[0]) == "TEXT.DEL") {
    auto count = integer(c.args[3]);
    if (!count || *count < 0)
      return c.reply(resp_error("ERR count is not a non-negative integer"));
    w.op = op_kind::text_delete;
    w.value.clear();
    w.count = static_cast<uint64_t>(*count);
  }
  send_typed(c, {std::move(w)}, last);
}

// Reads a text key, only code points start..end (GETRANGE's arithmetic, applied by the
// leader): `done` gets that part (UTF-8) and the whole length, or nothing when the key is
// missing; WRONGTYPE when it holds another type.
void read_text(resp_call& c, int64_t start, int64_t end,
               std::function<std::string(const get_result*)> done) {
  c.self->request(c.st->ctx.leader, request_timeout, get_atom::value, c.args[1], start, end)
    .then(
      [answer = c.answer, to = c.to, done](get_result& g) {
        auto t = typed::type_of(g.siblings);
        if (t == typed::key_type::none)
          return answer(to, done(nullptr));
        answer(to, t == typed::key_type::text ? done(&g) : resp_error(wrong_type));
      },
      c.fail(false));
}

// TEXT.GET key [start end]: the document, or the code points start..end (inclusive;
// negative counts from the end, as GETRANGE does).
void text_get(resp_call& c) {
  std::optional<int64_t> start = 0, end = -1;
  if (c.args.size() == 4) {
    start = integer(c.args[2]);
    end = integer(c.args[3]);
  } else if (c.args.size() != 2) {
    return c.reply(resp_error("ERR wrong number of arguments for 'text.get' command"));
  }
  if (!start || !end)
    return c.reply(resp_error(not_integer));
  read_text(c, *start, *end, [resp3 = c.conn.resp3](const get_result* g) {
    return g ? resp_bulk(g->text) : resp_nil(resp3);
  });
}

// TEXT.LEN key: the length alone (an empty range: nothing of the document is read).
void text_len(resp_call& c) {
  read_text(c, 1, 0, [](const get_result* g) { return resp_int(g ? g->text_length : 0); });
}

// TYPE key: Redis's names (a counter is a string there, as INCR's keys are in Redis).
void type(resp_call& c) {
  read_typed(c, typed::key_type::none, [](const std::vector<messages::version>& vs) {
    auto t = typed::type_of(vs);
    return resp_simple(t == typed::key_type::counter ? "string" : typed::name(t));
  });
}

} // namespace

const std::vector<std::pair<std::string, resp_command>>& typed_commands() {
  constexpr size_t many = ~size_t{0};
  static const std::vector<std::pair<std::string, resp_command>> commands{
    {"INCR", {2, 2, false, counter}},
    {"DECR", {2, 2, false, counter}},
    {"INCRBY", {3, 3, false, counter}},
    {"DECRBY", {3, 3, false, counter}},
    {"SADD", {3, many, false, set_write}},
    {"SREM", {3, many, false, set_write}},
    {"SMEMBERS", {2, 2, false, smembers}},
    {"SISMEMBER", {3, 3, false, sismember}},
    {"SCARD", {2, 2, false, scard}},
    {"HSET", {4, many, false, hset}},
    {"HGET", {3, 3, false, hget}},
    {"HDEL", {3, many, false, hdel}},
    {"HGETALL", {2, 2, false, hgetall}},
    {"HLEN", {2, 2, false, hlen}},
    {"HINCRBY", {4, 4, false, hincrby}},
    {"TYPE", {2, 2, false, type}},
    {"TEXT.INSERT", {4, 4, false, text_write}},
    {"TEXT.DEL", {4, 4, false, text_write}},
    {"TEXT.GET", {2, 4, false, text_get}},
    {"TEXT.LEN", {2, 2, false, text_len}},
  };
  return commands;
}

} // namespace mlr::actors::detail
