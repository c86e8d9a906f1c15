#pragma once
// A blocking client for a node's native client port (Cap'n Proto framing, see
// messages/wire.hpp): what the `mlr` CLI and the process-level tests use. One request at a
// time; every call has a timeout. No CAF.

#include "messages/unique_fd.hpp"
#include "messages/wire.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace mlr::client {

class connection {
public:
  connection() = default;
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// "host:port"; errors say what could not be reached.
  static result<std::unique_ptr<connection>>
  open(const std::string& address,
       std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

  result<messages::client_response> call(const messages::client_request& req);

  result<std::string> put(const std::string& key, const std::string& value,
                          const std::string* context = nullptr);
  result<std::string> del(const std::string& key, const std::string* context = nullptr);
  /// Values (siblings) and the context token; no values when the key has none.
  result<messages::client_response> get(const std::string& key);
  /// A counter, set or map operation (incr, sadd, srem, hset, hdel, hincr): what it
  /// answers (the new value, or 1/0 for added or removed); WRONGTYPE when the key holds
  /// another type.
  result<int64_t> typed(messages::op_kind op, const std::string& key, const std::string& field,
                        const std::string& value = {}, int64_t delta = 0);
  /// A text edit (op text_insert: `text` at `index`; text_delete: `count` code points at
  /// `index`), with a read's context to index in the document as read: the document's new
  /// length; WRONGTYPE when the key holds another type.
  result<int64_t> text(messages::op_kind op, const std::string& key, uint64_t index,
                       const std::string& text, uint64_t count = 0,
                       const std::string* context = nullptr);
  /// A key's value by its type: type_name and items (see ClientResponse.typed; a text
  /// key's context too).
  result<messages::client_response> read(const std::string& key);
  /// The node's status as JSON text.
  result<std::string> status();
  /// Proves this connection knows the node's client secret ("client") or admin secret
  /// ("admin", which also allows data requests); a node started with --client-secret-file
  /// serves nothing else before it.
  result<std::string> auth(const std::string& secret);
  /// Changes the cluster's topology ("ring", "star:HUB", "mesh" or an edge list) through
  /// this node. Returns the new epoch (a dot).
  result<std::string> set_topology(const std::string& spec);
  /// Replaces the node's resolver (lww, multi, max or tags) while it runs; needs the admin
  /// secret. Returns how many questions were in flight (the previous resolver answers them).
  result<uint32_t> set_resolver(const std::string& name);
  /// The node's conflict feed after sequence number `after`, oldest first, at most `limit`
  /// records (the node answers at most 1,000, about 4 MiB, per call).
  result<std::vector<messages::conflict_record>> conflicts(uint64_t after, uint32_t limit = 1000);

  /// Subscribes to every change under `prefix` ("" for all) this node applies, local and
  /// remote, in apply order, and hands each to `on_change` (a response of kind change: key,
  /// event, type_name, field, value, and the dot in `written`) until it returns false or
  /// `idle` passes without one (zero: wait for ever). Returns why it stopped: true when
  /// `on_change` said so, a timeout when idle, a failure when the node dropped the
  /// subscription (it fell too far behind) or closed the connection.
  result<bool> watch(const std::string& prefix,
                     const std::function<bool(const messages::client_response&)>& on_change,
                     std::chrono::milliseconds idle = std::chrono::milliseconds(0));

private:
  uint64_t send_request(const messages::client_request& req, std::optional<error>& failed);
  /// The next response to request `id`, waiting at most `timeout` (zero: for ever).
  result<messages::client_response> receive(uint64_t id, std::chrono::milliseconds timeout);

  unique_fd fd_;
  uint64_t next_id_ = 0;
  std::chrono::milliseconds timeout_{5000};
  messages::frame_splitter splitter_{64u << 20};
};

/// Splits "host:port"; the error names the bad input.
result<std::pair<std::string, uint16_t>> parse_address(const std::string& address);

} // namespace mlr::client
