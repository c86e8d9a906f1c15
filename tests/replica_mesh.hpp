#pragma once
// A mesh of CAF-free replicas with memory stores, moved by hand for deterministic tests:
// ship logs, gossip, pull (state-transfer chunks included), collect garbage, retire.

#include "core/replica.hpp"
#include "storage/store.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mlr::testing {

using core::conflict;
using core::replica;
using core::replica_config;
using core::write_request;

inline write_request put(const std::string& k, const std::string& v) {
  return write_request{k, messages::op_kind::put, v, false, {}};
}

/// A replica over a RocksDB store in `dir` (opened, or created): what a restart reopens.
inline std::unique_ptr<replica> rocksdb_replica(const std::string& dir, const replica_config& cfg) {
  auto s = storage::open_rocksdb_store(dir);
  REQUIRE(s);
  return std::make_unique<replica>(cfg, std::move(*s));
}

// A mesh of replicas with memory stores, moved by hand: ship logs, gossip, pull, collect.
struct mesh {
  explicit mesh(size_t n, uint64_t retention = 10000, size_t chunk_keys = 1024,
                size_t text_compact_after = 1024)
      : size(n), retention(retention), chunk_keys(chunk_keys),
        text_compact_after(text_compact_after) {
    for (messages::node_index i = 0; i < n; ++i)
      nodes.push_back(make(i));
  }

  std::unique_ptr<replica> make(messages::node_index self) {
    replica_config cfg;
    cfg.self = self;
    cfg.incarnation = ++incarnations;
    cfg.forward_to.resize(size);
    for (messages::node_index n = 0; n < size; ++n)
      if (n != self)
        cfg.forward_to[self].push_back(n);
    cfg.log_retention = retention;
    cfg.transfer_chunk_keys = chunk_keys;
    cfg.text_compact_after = text_compact_after;
    cfg.pull_grace_ms = 10;
    cfg.new_incarnation = [this] { return ++incarnations; };
    return std::make_unique<replica>(cfg, storage::make_memory_store());
  }

  // Node `i` loses everything and starts again under a new incarnation.
  void restart_empty(messages::node_index i) {
    nodes[i] = make(i);
    for (auto& [pair, cur] : cursors)
      if (pair.first == i || pair.second == i)
        cur = 0;
  }

  replica& operator[](size_t i) { return *nodes[i]; }

  // Everything `from` has to ship to `to` since the last time.
  void ship(messages::node_index from, messages::node_index to) {
    auto& cur = cursors[{from, to}];
    auto got = nodes[from]->fetch(to, cur, 1u << 20, 1u << 20);
    cur = got.next;
    if (!got.batch.events.empty())
      nodes[to]->receive(std::move(got.batch), now);
  }

  void gossip() {
    for (messages::node_index a = 0; a < size; ++a)
      for (messages::node_index b = 0; b < size; ++b)
        if (a != b)
          nodes[b]->observe_report(a, nodes[a]->applied(), nodes[a]->stable(), now);
  }

  // One pull (or one state-transfer chunk) for node `i`, if it has one due.
  bool pull(messages::node_index i) {
    now += 100;
    auto plan = nodes[i]->plan_pull(now, true);
    if (!plan)
      return false;
    auto answer = nodes[plan->holder]->serve_pull(plan->request, now);
    nodes[i]->receive_pulled(std::move(answer), now);
    return true;
  }

  // Ships, gossips, pulls and collects until nothing moves.
  void settle(int rounds = 50) {
    for (int r = 0; r < rounds; ++r) {
      for (messages::node_index a = 0; a < size; ++a)
        for (messages::node_index b = 0; b < size; ++b)
          if (a != b)
            ship(a, b);
      gossip();
      for (messages::node_index a = 0; a < size; ++a) {
        for (int k = 0; k < 1000 && pull(a); ++k) {
        }
        nodes[a]->collect_garbage(now);
        nodes[a]->retire_incarnations(now);
      }
    }
  }

  size_t size;
  uint64_t retention;
  size_t chunk_keys;
  size_t text_compact_after;
  uint64_t incarnations = 100;
  uint64_t now = 1'000'000;
  std::vector<std::unique_ptr<replica>> nodes;
  std::map<std::pair<messages::node_index, messages::node_index>, uint64_t> cursors;
  /// The conflicts every node met since the last call, collected from each node's ready
  /// value (what the leader would hand to its resolver), appended to `conflicts`.
  std::vector<conflict>& drain() {
    for (auto& n : nodes)
      for (auto& c : n->take_ready().conflicts)
        conflicts.push_back(std::move(c));
    return conflicts;
  }
  std::vector<conflict> conflicts;
};

} // namespace mlr::testing
