// The CAF-free replica state machine: deps as deltas, duplicate detection, the causal
// buffer, and a node restarted without its state taking a new incarnation.

#include "actors/replica.hpp"

#include <catch2/catch.hpp>

using namespace mlr;
using namespace mlr::actors;
using messages::dot;
using messages::event_batch;

namespace {

replica make_replica(messages::node_index self, uint64_t incarnation, size_t nodes = 3) {
  replica_config cfg;
  cfg.self = self;
  cfg.incarnation = incarnation;
  // A mesh: every node forwards its own writes to all others, nothing else.
  cfg.forward_to.resize(nodes);
  for (messages::node_index n = 0; n < nodes; ++n)
    if (n != self)
      cfg.forward_to[self].push_back(n);
  return replica(cfg, storage::make_memory_store());
}

// Everything `from` ships to `to`, as one batch.
event_batch ship(replica& from, messages::node_index to) {
  return from.fetch(to, 0, 1u << 20, 1u << 20).batch;
}

write_request put(const std::string& k, const std::string& v) {
  return write_request{k, messages::op_kind::put, v, false, {}};
}

} // namespace

TEST_CASE("replica: deps are the full vector first, then only what grew") {
  auto a = make_replica(0, 11);
  auto b = make_replica(1, 22);
  std::vector<conflict> conflicts;
  b.write(put("x", "1"), 1000, conflicts);
  b.write(put("y", "2"), 1000, conflicts);
  a.receive(ship(b, 0), 1000, conflicts);
  a.write(put("z", "3"), 1000, conflicts);  // first write of a: full vector {b:2}
  a.write(put("z", "4"), 1000, conflicts);  // nothing new since: no deps
  b.write(put("w", "5"), 1000, conflicts);
  a.receive(ship(b, 0), 1000, conflicts);   // a already has b:1,2; gets b:3
  a.write(put("z", "6"), 1000, conflicts);  // only b grew: {b:3}
  auto shipped = ship(a, 1).events;
  REQUIRE(shipped.size() == 3);
  CHECK(shipped[0].deps == std::vector<dot>{dot{{1, 22}, 2}});
  CHECK(shipped[1].deps.empty());
  CHECK(shipped[2].deps == std::vector<dot>{dot{{1, 22}, 3}});
  CHECK(a.stats().duplicates == 2); // b:1 and b:2 came again in the second batch
}

TEST_CASE("replica: an event waits for its deps and a duplicate of it is dropped") {
  auto a = make_replica(0, 11);
  auto b = make_replica(1, 22);
  auto c = make_replica(2, 33);
  std::vector<conflict> conflicts;
  a.write(put("k", "from-a"), 1000, conflicts);
  b.receive(ship(a, 1), 1000, conflicts);
  b.write(put("k", "from-b"), 1000, conflicts); // depends on a:1
  auto from_b = ship(b, 2);
  c.receive(from_b, 1000, conflicts);
  CHECK(c.buffered() == 1);
  CHECK(c.versions("k").empty());
  c.receive(from_b, 1000, conflicts); // the same event again, while buffered
  CHECK(c.stats().duplicates == 1);
  CHECK(c.buffered() == 1);
  c.receive(ship(a, 2), 1000, conflicts);
  CHECK(c.buffered() == 0);
  auto v = c.versions("k");
  REQUIRE(v.size() == 1);
  CHECK(v[0].value == "from-b");
  CHECK(conflicts.empty());
}

TEST_CASE("replica: a node restarted empty takes a new incarnation; its writes are new") {
  auto a = make_replica(0, 11);
  auto b = make_replica(1, 22);
  std::vector<conflict> conflicts;
  a.write(put("k", "1"), 1000, conflicts);
  a.write(put("k", "2"), 1000, conflicts);
  b.receive(ship(a, 1), 1000, conflicts);
  // Node 0 restarts without its state: counters start again at 1, under a new incarnation.
  auto a2 = make_replica(0, 12);
  auto d = a2.write(put("k", "3"), 1000, conflicts);
  CHECK(d == dot{{0, 12}, 1});
  auto got = b.receive(ship(a2, 1), 1000, conflicts);
  CHECK(got.duplicates == 0); // not mistaken for a:1 of the old incarnation
  CHECK(b.applied().get({0, 11}) == 2);
  CHECK(b.applied().get({0, 12}) == 1);
  CHECK(b.applied().size() == 2);
}
