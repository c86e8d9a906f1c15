// The CAF-free replica state machine: deps as deltas, duplicate detection, the causal
// buffer, and a node restarted without its state taking a new incarnation.

#include "core/replica.hpp"
#include "kept_store.hpp"
#include "replica_config.hpp"
#include "storage/serialize.hpp"

#include <filesystem>

#include <catch2/catch.hpp>

using namespace mlr;
using namespace mlr::core;
using messages::dot;
using messages::event_batch;

using mlr::testing::config;

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
  b.write(put("x", "1"), 1000);
  b.write(put("y", "2"), 1000);
  a.receive(ship(b, 0), 1000);
  a.write(put("z", "3"), 1000); // first write of a: full vector {b:2}
  a.write(put("z", "4"), 1000); // nothing new since: no deps
  b.write(put("w", "5"), 1000);
  a.receive(ship(b, 0), 1000);  // a already has b:1,2; gets b:3
  a.write(put("z", "6"), 1000); // only b grew: {b:3}
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
  a.write(put("k", "from-a"), 1000);
  b.receive(ship(a, 1), 1000);
  b.write(put("k", "from-b"), 1000); // depends on a:1
  auto from_b = ship(b, 2);
  c.receive(from_b, 1000);
  CHECK(c.buffered() == 1);
  CHECK(c.versions("k").empty());
  c.receive(from_b, 1000); // the same event again, while buffered
  CHECK(c.stats().duplicates == 1);
  CHECK(c.buffered() == 1);
  c.receive(ship(a, 2), 1000);
  CHECK(c.buffered() == 0);
  auto v = c.versions("k");
  REQUIRE(v.size() == 1);
  CHECK(v[0].value == "from-b");
  CHECK(c.take_ready().conflicts.empty()); // one write replaced the other: no conflict
}

TEST_CASE("replica: a node restarted empty takes a new incarnation, its writes are new") {
  auto a = make_replica(0, 11);
  auto b = make_replica(1, 22);
  a.write(put("k", "1"), 1000);
  a.write(put("k", "2"), 1000);
  b.receive(ship(a, 1), 1000);
  // Node 0 restarts without its state: counters start again at 1, under a new incarnation.
  auto a2 = make_replica(0, 12);
  auto d = a2.write(put("k", "3"), 1000);
  CHECK(d == dot{{0, 12}, 1});
  auto got = b.receive(ship(a2, 1), 1000);
  CHECK(got.duplicates == 0); // not mistaken for a:1 of the old incarnation
  CHECK(b.applied().get({0, 11}) == 2);
  CHECK(b.applied().get({0, 12}) == 1);
  CHECK(b.applied().size() == 2);
}

TEST_CASE("replica: a peer showing a dot of this node beyond its counter forces a new "
          "incarnation") {
  // Node 0 wrote 3 events, node 1 has them all; node 0 then comes back with only 1 of them
  // (say, a restored backup): it must not issue counters 2 and 3 again.
  auto a = make_replica(0, 11);
  for (int i = 0; i < 3; ++i)
    a.write(put("k" + std::to_string(i), "v"), 1000);
  auto b = make_replica(1, 22);
  b.receive(ship(a, 1), 1000);

  replica_config cfg;
  cfg.self = 0;
  cfg.incarnation = 11;
  cfg.forward_to = {{1, 2}, {}, {}};
  cfg.new_incarnation = [] { return uint64_t{99}; };
  auto store = storage::make_memory_store();
  storage::log_entry first{*a.store().read(0)};
  store->append(first);
  messages::version_vector vv;
  vv.advance(dot{{0, 11}, 1});
  store->put_meta("applied", storage::serialize(vv));
  replica restored(cfg, std::move(store));
  CHECK(restored.applied().get({0, 11}) == 1);
  restored.observe_report(1, b.applied()); // node 1 holds (0, 11, 3)
  auto d = restored.write(put("k", "new"), 1000);
  CHECK(d.origin.incarnation == 99);
  CHECK(d.counter == 1);
  CHECK(restored.stats().incarnations_taken == 1);
}

TEST_CASE("rocksdb store: committed writes survive a reopen, uncommitted ones do not") {
  auto dir = std::string("test_replica_store.db");
  std::filesystem::remove_all(dir);
  uint64_t digest = 0;
  {
    auto s = storage::open_rocksdb_store(dir);
    REQUIRE(s);
    auto a = replica(config(0, 11, {{1}, {}}), std::move(*s));
    a.write(put("x", "1"), 1000);
    a.write(put("y", "2"), 1000);
    CHECK(a.take_ready().commit); // the metadata goes with it
    REQUIRE(a.mutable_store().commit(true));
    digest = storage::state_digest(a.store());
    a.write(put("z", "never committed"), 1000);
  }
  auto s = storage::open_rocksdb_store(dir);
  REQUIRE(s);
  auto a = replica(config(0, 11, {{1}, {}}), std::move(*s));
  CHECK(a.applied().get({0, 11}) == 2);
  CHECK(a.log_end() == 2);
  CHECK(storage::state_digest(a.store()) == digest);
  CHECK(a.versions("z").empty());
  // Same incarnation: the counter goes on where the durable state stopped.
  CHECK(a.write(put("w", "3"), 1000).counter == 3);
  std::filesystem::remove_all(dir);
}

namespace {
std::string names(const std::vector<storage::store::meta_item>& items) {
  std::string out;
  for (auto& [n, v] : items)
    out += (out.empty() ? "" : " ") + n + "=" + v;
  return out;
}

// meta_range on one store: prefix bounds, `after`, the limit, and pending writes and
// erases over committed ones.
void check_meta_range(storage::store& s) {
  s.put_meta("conflict.0003", "c");
  s.put_meta("conflict.0001", "a");
  s.put_meta("conflicts", "not in the range: no dot");
  s.put_meta("conflict.0002", "b");
  s.put_meta("cursor.1", "other prefix");
  CHECK(names(s.meta_range("conflict.", "", 10)) ==
        "conflict.0001=a conflict.0002=b conflict.0003=c");
  REQUIRE(s.commit(true));
  s.put_meta("conflict.0004", "d");  // pending
  s.put_meta("conflict.0002", "b2"); // pending over committed
  s.erase_meta("conflict.0001");     // pending erase of a committed one
  CHECK_FALSE(s.get_meta("conflict.0001"));
  CHECK(names(s.meta_range("conflict.", "", 10)) ==
        "conflict.0002=b2 conflict.0003=c conflict.0004=d");
  CHECK(names(s.meta_range("conflict.", "conflict.0002", 10)) == "conflict.0003=c conflict.0004=d");
  CHECK(names(s.meta_range("conflict.", "conflict.0002", 1)) == "conflict.0003=c");
  CHECK(names(s.meta_range("conflict.", "a", 10)) ==
        "conflict.0002=b2 conflict.0003=c conflict.0004=d");
  CHECK(s.meta_range("conflict.", "conflict.0004", 10).empty());
  CHECK(s.meta_range("conflict.", "", 0).empty());
  REQUIRE(s.commit(true));
  CHECK(names(s.meta_range("conflict.", "", 10)) ==
        "conflict.0002=b2 conflict.0003=c conflict.0004=d");
  CHECK(names(s.meta_range("cursor.", "", 10)) == "cursor.1=other prefix");
}
} // namespace

TEST_CASE("store meta ranges: in name order under a prefix, after a name, bounded, pending writes "
          "and erases seen, on the memory and the RocksDB store") {
  auto memory = storage::make_memory_store();
  check_meta_range(*memory);
  auto dir = std::string("test_replica_meta.db");
  std::filesystem::remove_all(dir);
  {
    auto s = storage::open_rocksdb_store(dir);
    REQUIRE(s);
    check_meta_range(**s);
  }
  {
    auto s = storage::open_rocksdb_store(dir); // what was committed survives a reopen
    REQUIRE(s);
    CHECK(names((*s)->meta_range("conflict.", "", 10)) ==
          "conflict.0002=b2 conflict.0003=c conflict.0004=d");
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("replica: a batch stops below its byte budget and at 65,536 sources, the first event "
          "always fits") {
  messages::event big;
  big.id = messages::dot{messages::source{0, 1}, 1};
  big.key = "k";
  big.value = std::string(16u << 20, 'v'); // the largest value a client may write
  core::batch_budget by_bytes(8u << 20);
  CHECK(by_bytes.take(big)); // alone it is over the budget, but a batch carries at least one
  CHECK_FALSE(by_bytes.take(big));
  core::batch_budget by_sources(SIZE_MAX);
  size_t taken = 0;
  for (uint32_t i = 0; i < 70000; ++i) {
    messages::event e;
    e.id = messages::dot{messages::source{i, 1}, 1}; // a new source each
    if (!by_sources.take(e))
      break;
    ++taken;
  }
  CHECK(taken == messages::max_batch_sources); // the rest goes into the next batch
}

TEST_CASE("ready: what the inputs ask of the shell comes in one value, each effect once") {
  auto a = make_replica(0, 11, 2);
  auto b = make_replica(1, 22, 2);
  // Nothing happened yet: nothing to do (what the store recovered is committed).
  auto idle = a.take_ready();
  CHECK_FALSE(idle.commit);
  CHECK(idle.conflicts.empty());
  // A local write: the store changed, commit it; no conflict.
  a.write(put("k", "from-a"), 1000);
  auto wrote = a.take_ready();
  CHECK(wrote.commit);
  CHECK(wrote.conflicts.empty());
  CHECK_FALSE(a.take_ready().commit); // handed out once
  // Concurrent writes meet at b: the conflict comes with the ready value of that input.
  b.write(put("k", "from-b"), 1000);
  b.take_ready();
  b.receive(ship(a, 1), 1000);
  auto met = b.take_ready();
  CHECK(met.commit);
  REQUIRE(met.conflicts.size() == 1);
  CHECK(met.conflicts[0].key == "k");
  CHECK(met.conflicts[0].versions.size() == 2);
  CHECK(b.take_ready().conflicts.empty());
  // The resolver's answer changes the store without growing the log: commit it too.
  b.resolve(met.conflicts[0], {met.conflicts[0].versions[0].id});
  CHECK(b.take_ready().commit);
  CHECK(b.versions("k").size() == 1);
  // A topology write: the new routing comes with the ready value.
  a.write(put(reserved_key_prefix + "topology", "members n0 n1\nn0 -> n1\nn1 -> n0\n"), 2000);
  auto routed = a.take_ready();
  REQUIRE(routed.topology);
  CHECK(routed.topology->find("members n0 n1") == 0);
  CHECK_FALSE(a.take_ready().topology);
}

// Durability is the replica's decision (ready), carried out by its shell: this test plays
// the shell (the leader does the same in actors/leader_effects.cpp) on a store that
// survives the replica, so "durable" means what a crash would keep.
TEST_CASE("durability is decided in the core: batch holds answers and shipping until the "
          "group fsync, always syncs each commit, none ships at commit, collection never "
          "syncs") {
  using policy = sync_policy;
  auto make = [](policy p, std::shared_ptr<mlr::testing::kept_store::disk> d) {
    auto c = config(0, 11, {{1}, {}});
    c.sync = p;
    return replica(c, mlr::testing::kept_store::open(d));
  };
  auto carry_out = [](replica& r, const ready& rd) {
    if (rd.commit) {
      REQUIRE(r.mutable_store().commit(rd.sync));
      r.committed(rd.sync);
    }
  };

  SECTION("batch") {
    auto a = make(policy::batch, std::make_shared<mlr::testing::kept_store::disk>());
    a.write(put("x", "1"), 1000);
    auto r = a.take_ready();
    CHECK(r.commit);
    CHECK_FALSE(r.sync);
    CHECK(r.group_sync);
    CHECK(r.hold_acks);
    carry_out(a, r);
    CHECK(a.shippable_end() == 0); // committed, not synced: a power cut may take it
    CHECK_FALSE(a.take_ready().durable_end);
    // A second write before the fsync: one fsync covers both, so it is not asked again.
    a.write(put("y", "2"), 1000);
    auto r2 = a.take_ready();
    CHECK_FALSE(r2.group_sync);
    CHECK(r2.hold_acks);
    carry_out(a, r2);
    a.synced(true);
    auto r3 = a.take_ready();
    CHECK(r3.release_acks);
    REQUIRE(r3.durable_end);
    CHECK(*r3.durable_end == 2);
    CHECK(a.shippable_end() == 2);
    CHECK_FALSE(r3.hold_acks);
    // A failed fsync moves nothing and releases nothing; the next write asks again.
    a.write(put("z", "3"), 1000);
    carry_out(a, a.take_ready());
    a.synced(false);
    auto r4 = a.take_ready();
    CHECK_FALSE(r4.release_acks);
    CHECK_FALSE(r4.durable_end);
    CHECK(a.shippable_end() == 2);
    a.write(put("w", "4"), 1000);
    CHECK(a.take_ready().group_sync);
  }
  SECTION("always") {
    auto a = make(policy::always, std::make_shared<mlr::testing::kept_store::disk>());
    a.write(put("x", "1"), 1000);
    auto r = a.take_ready();
    CHECK(r.sync);
    CHECK_FALSE(r.group_sync);
    CHECK_FALSE(r.hold_acks);
    carry_out(a, r);
    auto r2 = a.take_ready();
    REQUIRE(r2.durable_end);
    CHECK(*r2.durable_end == 1);
  }
  SECTION("none") {
    auto a = make(policy::none, std::make_shared<mlr::testing::kept_store::disk>());
    a.write(put("x", "1"), 1000);
    auto r = a.take_ready();
    CHECK_FALSE(r.sync);
    CHECK_FALSE(r.group_sync);
    carry_out(a, r);
    CHECK(a.shippable_end() == 1);
  }
  SECTION("a resolution is committed without an fsync and moves nothing; make_durable "
          "syncs and marks a clean stop") {
    auto d = std::make_shared<mlr::testing::kept_store::disk>();
    auto a = make(policy::always, d);
    a.write(put("k", "1"), 1000);
    carry_out(a, a.take_ready());
    (void)a.take_ready();
    conflict c{"k", a.versions("k")};
    a.unresolved(c, "test");
    auto r = a.take_ready();
    CHECK(r.commit);
    CHECK_FALSE(r.sync);
    CHECK_FALSE(r.events_in);
    a.make_durable(/*clean=*/true);
    auto r2 = a.take_ready();
    CHECK(r2.commit);
    CHECK(r2.sync);
    carry_out(a, r2);
    CHECK(mlr::testing::kept_store::open(d)->get_meta("clean") == std::optional<std::string>("1"));
  }
}

TEST_CASE("a link that caught up is handed its batches: each entry once, only what is for it, "
          "only up to the shippable end") {
  SECTION("memory store: ready carries the batch as soon as the write is in") {
    auto a = make_replica(0, 11, 3);
    (void)a.take_ready();
    a.link_waiting(1, 0, 1, 100, 1000);
    a.link_waiting(2, 0, 2, 100, 1000);
    a.write(put("x", "1"), 1000);
    a.write(put("y", "2"), 1000);
    auto r = a.take_ready();
    REQUIRE(r.batches.size() == 2);
    for (auto& b : r.batches) {
      CHECK(b.from == 0);
      CHECK(b.next == 2);
      CHECK(b.ship_to == b.dest);
      REQUIRE(b.batch.events.size() == 2);
      CHECK(b.batch.events[0].key == "x");
      CHECK(b.batch.events[1].key == "y");
    }
    // Handed over: the links ship and fetch on, nothing is handed twice.
    a.write(put("z", "3"), 1000);
    CHECK(a.take_ready().batches.empty());
    // Waiting again (after fetching z): the next write comes alone, from where it stands.
    a.link_waiting(1, 3, 1, 100, 1000);
    a.write(put("w", "4"), 1000);
    auto r2 = a.take_ready();
    REQUIRE(r2.batches.size() == 1);
    CHECK(r2.batches[0].dest == 1);
    CHECK(r2.batches[0].from == 3);
    REQUIRE(r2.batches[0].batch.events.size() == 1);
    CHECK(r2.batches[0].batch.events[0].key == "w");
  }
  SECTION("entries that are not for the link move it with an empty batch") {
    // Node 1 forwards what it receives from 0 to nobody: 1's link to 2 has nothing to ship.
    auto a = make_replica(0, 11, 3);
    auto b = make_replica(1, 22, 3);
    (void)b.take_ready();
    b.link_waiting(2, 0, 2, 100, 1000);
    a.write(put("x", "1"), 1000);
    b.receive(ship(a, 1), 1000);
    auto r = b.take_ready();
    REQUIRE(r.batches.size() == 1);
    CHECK(r.batches[0].batch.events.empty());
    CHECK(r.batches[0].from == 0);
    CHECK(r.batches[0].next == 1);
    b.write(put("y", "2"), 1000);
    CHECK(b.take_ready().batches.empty()); // handed one: it waits no longer
    b.link_waiting(2, 1, 2, 100, 1000);    // took it, and waits where it moved it
    auto r2 = b.take_ready();
    REQUIRE(r2.batches.size() == 1);
    CHECK(r2.batches[0].from == 1);
    REQUIRE(r2.batches[0].batch.events.size() == 1);
    CHECK(r2.batches[0].batch.events[0].key == "y");
  }
  SECTION("a batch is bounded like a fetch") {
    auto a = make_replica(0, 11, 2);
    (void)a.take_ready();
    a.link_waiting(1, 0, 1, 3, 1000);
    for (int i = 0; i < 5; ++i)
      a.write(put("k" + std::to_string(i), "v"), 1000);
    auto r = a.take_ready();
    REQUIRE(r.batches.size() == 1);
    CHECK(r.batches[0].batch.events.size() == 3);
    CHECK(r.batches[0].next == 3);
  }
  SECTION("--sync batch: nothing is handed over before the group fsync") {
    auto c = config(0, 11, {{1}, {}});
    c.sync = sync_policy::batch;
    auto a = replica(
      c, mlr::testing::kept_store::open(std::make_shared<mlr::testing::kept_store::disk>()));
    (void)a.take_ready();
    a.link_waiting(1, 0, 1, 100, 1000);
    a.write(put("x", "1"), 1000);
    auto r = a.take_ready();
    CHECK(r.batches.empty());
    REQUIRE(r.commit);
    REQUIRE(a.mutable_store().commit(r.sync));
    a.committed(r.sync);
    CHECK(a.take_ready().batches.empty()); // committed, not synced
    a.synced(true);
    auto r2 = a.take_ready();
    REQUIRE(r2.batches.size() == 1);
    REQUIRE(r2.batches[0].batch.events.size() == 1);
    CHECK(r2.batches[0].batch.events[0].key == "x");
  }
}
