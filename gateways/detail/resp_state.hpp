#pragma once
// Internal to the RESP gateway (resp_gateway.cpp, resp_commands.cpp): the connection state,
// the RESP encoders, and the command table: one function per command family.

#include "gateways/detail/gateway_common.hpp"
#include "gateways/detail/node_status.hpp"
#include "gateways/resp_reader.hpp"

#include <caf/io/broker.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace mlr::actors::detail {

inline std::string resp_simple(const std::string& s) {
  return "+" + s + "\r\n";
}
inline std::string resp_error(const std::string& s) {
  return "-" + s + "\r\n";
}
inline std::string resp_int(uint64_t x) {
  return ":" + std::to_string(x) + "\r\n";
}
inline std::string resp_signed(int64_t x) {
  return ":" + std::to_string(x) + "\r\n";
}
inline std::string resp_nil(bool resp3) {
  return resp3 ? "_\r\n" : "$-1\r\n";
}
inline std::string resp_bulk(const std::string& s) {
  return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
}
inline std::string resp_array(const std::vector<std::string>& encoded) {
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
  /// Pub/sub (keyspace notifications): the channels and patterns subscribed to. A
  /// connection with any is in subscribed mode.
  std::set<std::string> channels;
  std::set<std::string> patterns;
  bool subscribed() const { return !channels.empty() || !patterns.empty(); }
};

/// Channels and patterns one connection may subscribe to, how many of them may be patterns
/// (each is matched against every change), and how long each may be.
inline constexpr size_t max_subscriptions = 10000;
inline constexpr size_t max_patterns = 64;
inline constexpr size_t max_channel_bytes = 1024;

/// Redis's glob (*, ?, [a-z], [^...], \x) without recursion: at most |pattern| x |text|
/// steps.
bool glob_match(const std::string& pattern, const std::string& text);

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
  /// The leader subscription that feeds keyspace notifications (0: none), while any
  /// connection is subscribed.
  uint64_t watch_id = 0;
  bool watch_pending = false;
  /// INFO: collections shared by the requests that waited for them (status_batch), and
  /// the last collection's text, rendered once for all of its requests.
  std::shared_ptr<status_batch> status = std::make_shared<status_batch>();
  std::shared_ptr<const std::string> info_json;
  std::string info_rendered;

  resp_conn* find(connection_handle hdl) {
    auto i = conns.find(hdl);
    return i == conns.end() ? nullptr : &i->second;
  }
  resp_conn* find(connection_handle hdl, uint64_t serial) {
    auto* c = find(hdl);
    return c && c->serial == serial ? c : nullptr;
  }
};

inline std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

/// One request being answered: everything a command's function needs.
struct resp_call {
  gateway_actor::broker_pointer self;
  std::shared_ptr<resp_state> st;
  resp_conn& conn;
  reply_to to;
  std::vector<std::string>& args;
  std::function<void(const reply_to&, std::string)> answer;

  void reply(std::string bytes) const { answer(to, std::move(bytes)); }
  /// What a failed read or write answers (a write's timeout says its outcome is unknown).
  std::function<void(caf::error&)> fail(bool write) const;
  /// Reads `keys` in one leader message and hands the results, in order, to `done`.
  void get_all(std::vector<std::string> keys, std::function<void(std::vector<get_result>)> done,
               bool write = false) const;
};

/// A command: its argument count (the command's name included; `pairs`: name plus pairs)
/// and its function. Commands that check their own arguments take 1..many.
struct resp_command {
  size_t min_args = 1;
  size_t max_args = ~size_t{0};
  bool pairs = false;
  void (*run)(resp_call&) = nullptr;
};

/// The command named `upper_name` (upper case), or nullptr.
const resp_command* find_command(const std::string& upper_name);

/// SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE (resp_pubsub.cpp): keyspace
/// notifications.
const std::vector<std::pair<std::string, resp_command>>& pubsub_commands();
/// Starts or ends the leader subscription as connections subscribe or leave.
void update_watch(gateway_actor::broker_pointer self, const std::shared_ptr<resp_state>& st);
/// The notifications `changes` make for connection `c`, encoded (RESP2 push arrays).
std::vector<std::string> notifications(const resp_conn& c, const std::vector<change>& changes);
/// Whether a connection in subscribed mode may run `upper_name`.
bool allowed_when_subscribed(const std::string& upper_name);

/// The typed-key commands (resp_typed.cpp): counters, sets, hashes, TYPE.
const std::vector<std::pair<std::string, resp_command>>& typed_commands();

/// What GET answers for a key as read: a string's value, a counter's decimal value, nil
/// when absent; for a set or hash WRONGTYPE when `strict` (GET), nil otherwise (MGET).
std::string resp_value(const get_result& g, bool resp3, bool strict);

/// INFO's text from the status document.
std::string info_text(const std::string& json_text);

} // namespace mlr::actors::detail
