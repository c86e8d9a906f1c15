// Keyspace notifications over RESP, so that existing Redis clients can listen:
// SUBSCRIBE __keyspace@0__:KEY (the message is the event: set, del, incrby, sadd, ...),
// SUBSCRIBE __keyevent@0__:EVENT (the message is the key), and PSUBSCRIBE with Redis's glob
// patterns (*, ?, [...], \\) over the same channel names. Every change this node applies, local or
// remote, is published in the order it applied them; unlike Redis, no notify-keyspace-events
// setting is needed. Other channels can be subscribed to but carry nothing (no PUBLISH).
//
// The gateway holds one leader subscription while any connection is subscribed and fans
// out itself. Notifications are written like answers, so a subscriber that stops reading is
// closed once its unread output passes the hard limit (said in the node's log), and
// neither the leader nor other clients wait for it. Patterns are matched without recursion
// (at most pattern x channel steps, never exponential: Redis's CVE-2022-36021), and
// their number and length are bounded.

#include "gateways/detail/resp_state.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>

namespace mlr::actors::detail {

namespace {

const std::string keyspace = "__keyspace@0__:";
const std::string keyevent = "__keyevent@0__:";

// One pattern element at p[pi] against character ch: whether it matches, and where the
// next element starts.
bool match_one(const std::string& p, size_t& pi, char ch) {
  if (p[pi] == '?') {
    ++pi;
    return true;
  }
  if (p[pi] == '\\' && pi + 1 < p.size()) {
    pi += 2;
    return p[pi - 1] == ch;
  }
  if (p[pi] != '[') {
    return p[pi++] == ch;
  }
  size_t i = pi + 1;
  bool negate = i < p.size() && (p[i] == '^' || p[i] == '!');
  if (negate)
    ++i;
  bool hit = false;
  bool first = true;
  for (; i < p.size() && (p[i] != ']' || first); first = false) {
    char lo = p[i];
    if (lo == '\\' && i + 1 < p.size())
      lo = p[++i];
    char hi = lo;
    if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
      i += 2;
      hi = p[i];
      if (hi == '\\' && i + 1 < p.size())
        hi = p[++i];
    }
    if (lo > hi)
      std::swap(lo, hi);
    hit |= ch >= lo && ch <= hi;
    ++i;
  }
  if (i >= p.size()) // no closing ']': the '[' is literal
    return p[pi++] == ch;
  pi = i + 1;
  return hit != negate;
}

} // namespace

bool glob_match(const std::string& p, const std::string& s) {
  size_t pi = 0, si = 0;
  size_t star = std::string::npos, resume = 0;
  while (si < s.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = ++pi;
      resume = si;
      continue;
    }
    size_t next = pi;
    if (pi < p.size() && match_one(p, next, s[si])) {
      pi = next;
      ++si;
      continue;
    }
    if (star == std::string::npos)
      return false;
    pi = star; // let the last '*' take one more character
    si = ++resume;
  }
  while (pi < p.size() && p[pi] == '*')
    ++pi;
  return pi == p.size();
}

namespace {

size_t count(const resp_conn& c) {
  return c.channels.size() + c.patterns.size();
}

std::string confirm(const std::string& kind, const std::string* name, size_t n) {
  return "*3\r\n" + resp_bulk(kind) + (name ? resp_bulk(*name) : std::string("$-1\r\n")) +
         resp_int(n);
}

void subscribe(resp_call& c, bool pattern) {
  auto& set = pattern ? c.conn.patterns : c.conn.channels;
  std::string out;
  for (size_t i = 1; i < c.args.size(); ++i) {
    if (c.args[i].size() > max_channel_bytes) {
      out += resp_error("ERR channel or pattern longer than " + std::to_string(max_channel_bytes) +
                        " bytes");
      continue;
    }
    if (pattern && c.conn.patterns.size() >= max_patterns && !set.count(c.args[i])) {
      out +=
        resp_error("ERR more than " + std::to_string(max_patterns) + " patterns on one connection");
      continue;
    }
    if (count(c.conn) >= max_subscriptions && !set.count(c.args[i])) {
      out += resp_error("ERR more than " + std::to_string(max_subscriptions) +
                        " channels and patterns on one connection; use a pattern");
      continue;
    }
    set.insert(c.args[i]);
    out += confirm(pattern ? "psubscribe" : "subscribe", &c.args[i], count(c.conn));
  }
  c.reply(std::move(out));
  update_watch(c.self, c.st);
}

void unsubscribe(resp_call& c, bool pattern) {
  auto& set = pattern ? c.conn.patterns : c.conn.channels;
  auto kind = std::string(pattern ? "punsubscribe" : "unsubscribe");
  std::vector<std::string> names(c.args.begin() + 1, c.args.end());
  if (names.empty())
    names.assign(set.begin(), set.end());
  std::string out;
  if (names.empty())
    out = confirm(kind, nullptr, count(c.conn));
  for (auto& n : names) {
    set.erase(n);
    out += confirm(kind, &n, count(c.conn));
  }
  c.reply(std::move(out));
  update_watch(c.self, c.st);
}

void subscribe_channels(resp_call& c) {
  subscribe(c, false);
}
void subscribe_patterns(resp_call& c) {
  subscribe(c, true);
}
void unsubscribe_channels(resp_call& c) {
  unsubscribe(c, false);
}
void unsubscribe_patterns(resp_call& c) {
  unsubscribe(c, true);
}

std::string message(const std::string& channel, const std::string& payload) {
  return "*3\r\n" + resp_bulk("message") + resp_bulk(channel) + resp_bulk(payload);
}
std::string pmessage(const std::string& pattern, const std::string& channel,
                     const std::string& payload) {
  return "*4\r\n" + resp_bulk("pmessage") + resp_bulk(pattern) + resp_bulk(channel) +
         resp_bulk(payload);
}

} // namespace

const std::vector<std::pair<std::string, resp_command>>& pubsub_commands() {
  constexpr size_t many = ~size_t{0};
  static const std::vector<std::pair<std::string, resp_command>> commands{
    {"SUBSCRIBE", {2, many, false, subscribe_channels}},
    {"PSUBSCRIBE", {2, many, false, subscribe_patterns}},
    {"UNSUBSCRIBE", {1, many, false, unsubscribe_channels}},
    {"PUNSUBSCRIBE", {1, many, false, unsubscribe_patterns}},
  };
  return commands;
}

bool allowed_when_subscribed(const std::string& upper_name) {
  return upper_name == "SUBSCRIBE" || upper_name == "PSUBSCRIBE" || upper_name == "UNSUBSCRIBE" ||
         upper_name == "PUNSUBSCRIBE" || upper_name == "PING" || upper_name == "QUIT";
}

void update_watch(gateway_actor::broker_pointer self, const std::shared_ptr<resp_state>& st) {
  bool wanted = std::any_of(st->conns.begin(), st->conns.end(),
                            [](auto& kv) { return kv.second.subscribed(); });
  if (wanted && st->watch_id == 0 && !st->watch_pending) {
    st->watch_pending = true;
    self
      ->request(st->ctx.leader, request_timeout, watch_atom::value, std::string(),
                caf::actor_cast<caf::actor>(self))
      .then(
        [self, st](uint64_t id) {
          st->watch_pending = false;
          st->watch_id = id;
          update_watch(self, st); // everyone may have left meanwhile
        },
        [st](caf::error& err) {
          st->watch_pending = false;
          st->ctx.log.warn("keyspace notifications: the leader refused the subscription: {}",
                           to_string(err));
        });
  } else if (!wanted && st->watch_id != 0) {
    self->send(st->ctx.leader, unwatch_atom::value, st->watch_id);
    st->watch_id = 0;
  }
}

std::vector<std::string> notifications(const resp_conn& c, const std::vector<change>& changes) {
  std::vector<std::string> out;
  for (auto& ch : changes) {
    auto space = keyspace + ch.key;
    auto event = keyevent + ch.event;
    // As Redis: the keyspace notification first, then the keyevent one.
    for (auto* channel : {&space, &event}) {
      auto& payload = channel == &space ? ch.event : ch.key;
      if (c.channels.count(*channel))
        out.push_back(message(*channel, payload));
      for (auto& p : c.patterns)
        if (glob_match(p, *channel))
          out.push_back(pmessage(p, *channel, payload));
    }
  }
  return out;
}

} // namespace mlr::actors::detail
