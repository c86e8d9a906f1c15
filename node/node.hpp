#pragma once
// A networked mlr node inside your own program: one options value in, a running leader out,
// replicating over TCP with the other members of its cluster (mlr-node processes or other
// programs that embed this). `mlr-node` is this plus command-line parsing and signals.
//
//   mlr::node::node_options o;
//   o.cluster = "shop";
//   o.id = "a";
//   o.members = {{"a", "127.0.0.1:7000"}, {"b", "127.0.0.1:7001"}};
//   o.secret = "...";                   // the cluster secret (every member has the same)
//   auto n = mlr::node::node::start(o); // the ports are open when it returns
//   n.value()->put("cart", "apples");   // replicated to b
//
// Everything a node needs is in node_options; start() checks it and says what is wrong.
// No CAF type appears here: the node owns its actor system.

#include "core/change.hpp"
#include "messages/conflict_record.hpp"
#include "messages/dot.hpp"
#include "messages/error.hpp"
#include "messages/event.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace mlr::core {
class replica_observer;
struct write_request;
} // namespace mlr::core

namespace mlr::node {

/// One member of the cluster: its id and where its peer port listens (HOST:PORT).
struct member {
  std::string id;
  std::string peer_address;
};

struct node_options {
  std::string cluster = "mlr"; ///< a node refuses peers of another cluster
  std::string id;              ///< this node; must be one of `members`
  /// Every member, this node included. Their order gives node indexes (keep it the same at
  /// every member and across restarts; mlr-node sorts ids given by --peer).
  std::vector<member> members;
  std::string listen;        ///< peer port (HOST:PORT); empty: this node's address in `members`
  std::string client_listen; ///< native client port (what `mlr` speaks); empty: none
  std::string resp_listen;   ///< Redis-protocol port; empty: none
  // (HOST:0 for either: any free port; client_port() and resp_port() say which.)

  std::string topology = "mesh";         ///< ring, star, mesh, or an edge-list file
  std::string hub;                       ///< the star's hub (default: the first member)
  std::vector<std::string> standby_hubs; ///< star: who takes over a lost hub, in order
  std::string hub_return = "resume";     ///< resume or spoke (DESIGN.md, "Topologies")
  std::string resolver = "lww";          ///< lww, multi, max or tags

  std::string secret;        ///< the cluster secret; empty: any process may join (warned)
  std::string client_secret; ///< clients authenticate with it; empty: loopback only
  std::string admin_secret;  ///< needed for topology changes; empty: they are refused
  bool allow_unauthenticated_clients = false; ///< serve other hosts without a client secret

  std::string data_dir;       ///< RocksDB directory; empty: in memory (lost on stop)
  std::string sync = "batch"; ///< always, batch (group commit) or none

  size_t threads = 2;                ///< CAF scheduler threads
  std::vector<std::string> caf_args; ///< CAF's own flags (--scheduler.*), passed through
  std::chrono::milliseconds heartbeat{250};
  std::chrono::milliseconds peer_timeout{2000};
  std::chrono::milliseconds handshake_timeout{5000};
  std::chrono::milliseconds ack_timeout{1000};
  std::chrono::milliseconds pull_grace{500};
  size_t max_key_bytes = 64u << 10;
  size_t max_value_bytes = 16u << 20;
  uint64_t log_retention = 10000;
  /// Changes a subscriber (watch(), RESP keyspace notifications) may leave unread before it
  /// is dropped.
  uint64_t max_watch_backlog = 100000;
  /// The conflict feed (conflicts()): at most this many records and about this many bytes
  /// are kept in the store, the oldest dropped first. Zero records: none are kept.
  size_t conflict_feed_records = 10000;
  size_t conflict_feed_bytes = 64u << 20;

  /// Called (on an actor's thread) when the leader stops while running: it threw, or its
  /// store broke. The node serves nothing useful after that: stop it and restart. Never
  /// call the node from here (it would wait for the thread it runs on); signal another
  /// thread, as mlr-node does with SIGUSR1.
  std::function<void(const std::string& why)> on_failure;
  /// Takes every log line of the node ("info", "warn" or "error", and the line); empty:
  /// they go to standard error as "level: line".
  std::function<void(const std::string& level, const std::string& line)> log;
  /// Sees every applied event (tests, fault injection). Optional.
  std::shared_ptr<core::replica_observer> observer;
};

/// What a read returns: the live versions (siblings when concurrent writes were kept) and
/// the context to pass to a write that replaces them.
struct read_result {
  std::vector<messages::version> siblings;
  std::vector<messages::dot> context;
};

/// A key's value as its type renders it (see read()).
struct typed_value {
  std::string type;               ///< none, string, counter, set, hash or text
  std::vector<std::string> items; ///< string: its value; counter: its decimal value; set: the
                                  ///< members; hash: field, value, field, value, ...
};

/// A text key's document (see text_read()).
struct text_value {
  std::string text;    ///< UTF-8
  uint64_t length = 0; ///< in code points
  /// The document's version: hand it to text_insert/text_delete so that their index counts
  /// in the document as read, whatever this node applied since.
  std::vector<messages::dot> context;
};

/// A change the node applied (local or remote); see core/change.hpp.
using change = core::change;
using conflict_record = messages::conflict_record;

class node {
public:
  /// Checks `o` (the error says which field is wrong and what to do), opens the store,
  /// and starts the leader, the peer transport and the client ports.
  static result<std::unique_ptr<node>> start(node_options o);
  ~node(); ///< stop(), if it was not called

  /// The ports, as bound (the client and RESP ports may be asked for as HOST:0); 0 when
  /// not opened.
  uint16_t peer_port() const;
  uint16_t client_port() const;
  uint16_t resp_port() const;
  uint64_t incarnation() const;
  const std::string& where() const; ///< "peers on ..., clients on ..." for a log line

  /// The blocking API, as a client sees it (a write returns once applied here, and once
  /// durable under sync batch or always; replication is asynchronous).
  result<messages::dot> put(const std::string& key, const std::string& value);
  result<messages::dot> put(const std::string& key, const std::string& value,
                            const std::vector<messages::dot>& context);
  result<messages::dot> del(const std::string& key);
  result<read_result> get(const std::string& key);

  /// Counters, sets and maps (DESIGN.md, "Convergent data types"): op is incr, sadd, srem,
  /// hset, hdel or hincr; `field` the set member or map field, `value` hset's value,
  /// `delta` what incr and hincr add. Returns what the operation answers (the new value,
  /// or 1/0 for a member or field added or removed); errc::refused with "WRONGTYPE ..."
  /// when the key holds another type.
  result<int64_t> typed(messages::op_kind op, const std::string& key, const std::string& field = {},
                        const std::string& value = {}, int64_t delta = 0);
  /// Any key's value by its type (text: the document, as one item).
  result<typed_value> read(const std::string& key);

  /// Text (DESIGN.md, "Text"): inserts `text` (UTF-8) at code point `index` (past the end:
  /// at the end), or deletes `count` code points from `index`. With `context` (a
  /// text_read()'s), the index counts in the document as it was read. Returns the
  /// document's length after; errc::refused with "WRONGTYPE ..." when the key holds
  /// another type, errc::invalid_argument when the text is not UTF-8. Remote edits reach
  /// watch() subscribers as change::edits, by index.
  result<uint64_t> text_insert(const std::string& key, uint64_t index, const std::string& text,
                               const std::vector<messages::dot>* context = nullptr);
  result<uint64_t> text_delete(const std::string& key, uint64_t index, uint64_t count,
                               const std::vector<messages::dot>* context = nullptr);
  /// The document (empty when the key is missing).
  result<text_value> text_read(const std::string& key);

  /// Change subscriptions: `on_change` gets every change applied from now on to a key
  /// starting with `prefix` ("" for all), local and remote, in the order this node applied
  /// them, on one of the node's threads (one call at a time; do not call the node from it).
  /// A subscriber that falls more than max_watch_backlog changes behind is dropped, and
  /// `on_dropped` says why; the node is not slowed. Returns the subscription's id, for unwatch().
  result<uint64_t> watch(const std::string& prefix, std::function<void(const change&)> on_change,
                         std::function<void(const std::string&)> on_dropped = {});
  void unwatch(uint64_t id);

  /// Replaces the resolver while the node runs (hot swap) with a built-in one: lww, multi,
  /// max or tags. Questions already asked are answered by the previous resolver; failed
  /// ones are asked of the new one. Every member should run the same resolver: swap them
  /// all. Replies how many questions were in flight.
  result<uint32_t> set_resolver(const std::string& name);

  /// The conflict feed: every conflict this node met and what its resolver made of it (key,
  /// the input versions whole, the outcome, the resolver's name, the time), oldest first,
  /// from sequence number `after` + 1, at most `limit` (at most 1,000, and about 4 MiB).
  /// Kept in the store (across restarts with a data directory), bounded by
  /// conflict_feed_records and conflict_feed_bytes: the oldest are dropped first, so the
  /// first record may be past `after` + 1. resolvers::replay() checks records against a
  /// resolver.
  result<std::vector<conflict_record>> conflicts(uint64_t after = 0, uint32_t limit = 1000);

  /// Flushes the links (up to `flush`), marks a clean shutdown in the store, and stops
  /// every actor. Idempotent.
  void stop(std::chrono::milliseconds flush = std::chrono::seconds(2));

  struct impl;

private:
  explicit node(std::unique_ptr<impl> p);
  result<uint64_t> text_length_after(const core::write_request& w);
  std::unique_ptr<impl> impl_;
};

} // namespace mlr::node
