#pragma once
// The storage interface of one leader: the key state (each key's live versions, tombstones
// included) and the replication log (every event in the order this node applied it, with
// the set of nodes this node forwards it to). One interface, several implementations:
// memory (the default, for demos and tests) now, RocksDB later.
//
// A store is a resource owned by exactly one leader; it is not thread-safe.
//
// Writes (assign, append, put_meta) become visible to reads at once, and durable together,
// atomically, at the next `commit`: a crash keeps all of a commit or none of it. With
// `sync`, commit returns only once the data is on stable storage.

#include "messages/error.hpp"
#include "messages/event.hpp"
#include "messages/seen_by.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rocksdb {
class Env;
} // namespace rocksdb

namespace mlr::storage {

struct log_entry {
  /// The event as applied here, seen-by already stamped with this node's forwarding set.
  messages::event ev;
  /// Nodes this node ships the event to (its children in the origin's tree, minus the
  /// nodes that had already seen it).
  messages::seen_by forward;
};

/// A consistent, read-only view of a store's committed key state: what a state transfer
/// sends, in chunks, while the leader goes on writing.
class state_snapshot {
public:
  virtual ~state_snapshot() = default;
  struct chunk {
    std::vector<std::pair<std::string, std::vector<messages::version>>> keys;
    bool more = false; ///< keys remain after this chunk
  };
  /// Up to `max_keys` keys in ascending order (fewer once about `max_bytes` were read),
  /// after `after`, or from the first key when `from_start`.
  virtual chunk read(const std::string& after, bool from_start, size_t max_keys,
                     size_t max_bytes) = 0;
  /// Keys in the snapshot (an estimate on RocksDB): for progress reports.
  virtual uint64_t estimated_keys() const = 0;
};

class store {
public:
  virtual ~store() = default;

  /// The live versions of `key`, or nullptr if the key was never written.
  virtual const std::vector<messages::version>* find(const std::string& key) const = 0;
  virtual void assign(const std::string& key, std::vector<messages::version> versions) = 0;
  /// Forgets a key entirely (garbage collection of a stable tombstone).
  virtual void erase(const std::string& key) = 0;
  /// Keys with at least one version (tombstones included).
  virtual size_t key_count() const = 0;
  /// Keys with a value (not only deletes), and the state digest (see state_digest). These
  /// scan the whole state; a store made by with_digest answers both in O(1).
  virtual uint64_t live_key_count() const;
  virtual uint64_t digest() const;
  /// Visits every key in ascending key order.
  virtual void
  for_each(const std::function<void(const std::string&, const std::vector<messages::version>&)>& fn)
    const = 0;
  /// Visits the keys that start with `prefix`, in ascending key order (what is not yet
  /// committed included). This default filters for_each; the stores seek to the prefix.
  virtual void for_each_prefix(
    const std::string& prefix,
    const std::function<void(const std::string&, const std::vector<messages::version>&)>& fn) const;

  /// Positions run from log_begin() to log_end() - 1; compaction moves log_begin().
  virtual uint64_t log_begin() const = 0;
  virtual uint64_t log_end() const = 0;
  /// Drops the entries before `pos` (compaction of stable entries).
  virtual void truncate_log(uint64_t pos) = 0;
  virtual void append(log_entry entry) = 0;
  /// The entry at `pos`, or nullptr if `pos` is past the end. The pointer stays valid until
  /// the next call of read().
  virtual const log_entry* read(uint64_t pos) const = 0;

  /// Small named values: version vector, HLC, counter, incarnation, identity.
  virtual std::optional<std::string> get_meta(const std::string& name) const = 0;
  virtual void put_meta(const std::string& name, std::string value) = 0;
  virtual void erase_meta(const std::string& name) = 0;
  /// Named values whose names start with `prefix`, in ascending name order, from the first
  /// name greater than `after` (from the first with the prefix when `after` is empty), at
  /// most `limit` of them. Writes not yet committed are seen, as by get_meta. For records
  /// kept in order under one prefix (a conflict feed: the name ends in a fixed-width
  /// sequence number).
  using meta_item = std::pair<std::string, std::string>;
  virtual std::vector<meta_item> meta_range(const std::string& prefix, const std::string& after,
                                            size_t limit) const = 0;

  /// Makes everything written since the previous commit atomic (and durable with `sync`).
  /// An error (a full disk, say) leaves the previous commit as the durable state.
  virtual result<bool> commit(bool sync) = 0;
  /// Forces what earlier commits wrote to stable storage (the group-commit fsync).
  virtual result<bool> sync() = 0;
  /// After a commit failed (a full disk): tries again to make what is pending durable.
  virtual result<bool> recover() { return commit(true); }
  /// False for the memory store: nothing survives the process.
  virtual bool durable() const = 0;
  /// True once an fsync failed: the store refuses every write from then on, and only a
  /// restart (reopening the data directory) recovers what really reached the disk.
  virtual bool broken() const { return false; }

  /// A consistent view of the committed key state (commit first: what was written since
  /// the last commit is not in it). It stays valid while the store lives.
  virtual std::unique_ptr<state_snapshot> snapshot() const = 0;
};

std::unique_ptr<store> make_memory_store();

/// Opens (or creates) a RocksDB store in `dir`. Errors name the directory and the cause.
/// `env`: RocksDB's environment; tests pass one whose file system can lose unsynced data.
result<std::unique_ptr<store>> open_rocksdb_store(const std::string& dir,
                                                  rocksdb::Env* env = nullptr);

/// A 64-bit digest of the live key state (keys, dots, values). Left out, since replicas
/// drop them at different moments: deletes (stable tombstones are collected), and a text
/// document's stored operations and snapshot record (compacted). Replicas that converged have
/// equal digests. It is the sum of key_digest over the keys, so that a store can keep it
/// up to date with every write (with_digest).
uint64_t state_digest(const store& s);

/// One key's share of the digest; nothing for a key with no live value.
std::optional<uint64_t> key_digest(const std::string& key,
                                   const std::vector<messages::version>& versions);

/// Wraps a store so that digest() and live_key_count() cost O(1): it reads the whole state
/// once, here, and keeps both up to date with every assign and erase.
std::unique_ptr<store> with_digest(std::unique_ptr<store> inner);

} // namespace mlr::storage
