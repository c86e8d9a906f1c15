// State transfer and retired incarnations on the CAF-free replica, driven step by step:
// the snapshot merge rule, a node restarted empty that catches up by chunks after its
// peers compacted their logs, and version vectors that stay small across 20 empty restarts.

#include "replica_mesh.hpp"
#include "storage/serialize.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <memory>

using namespace mlr;
using namespace mlr::core;
using namespace mlr::testing;
using messages::dot;

TEST_CASE("snapshot merge: a version the receiver replaced does not come back as a sibling") {
  mesh m(2);
  m[0].write(put("k", "v1"), m.now);
  m.ship(0, 1);
  m[1].write(put("k", "v2"), m.now); // replaces v1 at node 1 only
  m[0].write(put("only-sender", "s"), m.now);
  m[1].write(put("only-receiver", "r"), m.now);
  REQUIRE(m[0].versions("k").size() == 1);
  REQUIRE(m[0].versions("k")[0].value == "v1");

  // Node 1 asks node 0 for its state (as after a pull answered "compacted").
  messages::event_batch compacted;
  compacted.sender = 0;
  compacted.compacted = true;
  m[1].receive_pulled(compacted, m.now);
  REQUIRE(m[1].transfer().active);
  while (m[1].transfer().active)
    REQUIRE(m.pull(1));

  auto k = m[1].versions("k");
  REQUIRE(k.size() == 1); // v1 is covered by node 1's vector and absent: superseded
  CHECK(k[0].value == "v2");
  REQUIRE(m[1].versions("only-sender").size() == 1);   // node 1's vector did not cover it
  REQUIRE(m[1].versions("only-receiver").size() == 1); // the snapshot did not cover it
  CHECK(m[1].applied().covers(m[0].applied()));
  CHECK(m[1].stats().transfers_received == 1);
  CHECK(m.drain().empty());
}

TEST_CASE("snapshot merge: concurrent versions from both sides become siblings for the resolver") {
  mesh m(2);
  m[0].write(put("k", "from-0"), m.now);
  m[1].write(put("k", "from-1"), m.now);
  messages::event_batch compacted;
  compacted.sender = 0;
  compacted.compacted = true;
  m[1].receive_pulled(compacted, m.now);
  while (m[1].transfer().active)
    REQUIRE(m.pull(1));
  CHECK(m[1].versions("k").size() == 2);
  REQUIRE(m.drain().size() == 1);
  CHECK(m.drain()[0].versions.size() == 2);
}

TEST_CASE("state transfer: a node restarted empty after its peers compacted catches up in chunks") {
  mesh m(3, /*retention=*/0, /*chunk_keys=*/16);
  for (int i = 0; i < 200; ++i)
    m[i % 3].write(put("key-" + std::to_string(i), "v" + std::to_string(i)), m.now);
  m.settle(4);
  REQUIRE(m[0].store().log_begin() > 0); // stable entries left the log
  auto digest = storage::state_digest(m[0].store());

  m.restart_empty(2);
  m.gossip();
  // The first pull is answered "compacted"; then chunk after chunk.
  REQUIRE(m.pull(2));
  REQUIRE(m[2].transfer().active);
  auto from = m[2].transfer().from;
  REQUIRE(m.pull(2)); // the first chunk: the sender now holds a snapshot
  CHECK(m[2].transfer().keys_done == 16);

  // Meanwhile the sender takes writes and collects: its log must not be compacted past
  // the snapshot, so the receiver can go on from the log afterwards.
  auto hold = m[from].log_end();
  for (int i = 0; i < 20; ++i)
    m[from].write(put("during-" + std::to_string(i), "d"), m.now);
  m.gossip();
  for (int r = 0; r < 3; ++r)
    m[from].collect_garbage(m.now);
  CHECK(m[from].store().log_begin() <= hold);

  int chunks = 1;
  while (m[2].transfer().active) {
    REQUIRE(m.pull(2));
    ++chunks;
  }
  CHECK(chunks >= 200 / 16);
  CHECK(m[2].stats().transfers_received == 1);
  CHECK(m[from].stats().transfers_served == 1);
  CHECK(m[2].stats().transfer_keys_received >= 200);

  m.settle(6);
  CHECK(storage::state_digest(m[2].store()) == storage::state_digest(m[0].store()));
  CHECK(storage::state_digest(m[1].store()) == storage::state_digest(m[0].store()));
  CHECK(storage::state_digest(m[0].store()) != digest); // the writes during the transfer
  for (int i = 0; i < 20; ++i)
    CHECK(m[2].versions("during-" + std::to_string(i)).size() == 1);

  // Its next writes reach everyone.
  m[2].write(put("after", "x"), m.now);
  m.settle(2);
  CHECK(m[0].versions("after").size() == 1);
  CHECK(m[1].versions("after").size() == 1);
}

TEST_CASE("retired incarnations: 20 empty restarts leave every vector at most members + 2 long") {
  mesh m(3);
  for (int restart = 0; restart < 20; ++restart) {
    for (messages::node_index n = 0; n < 3; ++n)
      m[n].write(put("k" + std::to_string(n), std::to_string(restart)), m.now);
    m.settle(6);
    m.restart_empty(2);
  }
  m[2].write(put("last", "x"), m.now);
  m.settle(8);
  for (messages::node_index n = 0; n < 3; ++n) {
    INFO("node " << n << " applied " << messages::to_string(m[n].applied()) << " transfer "
                 << m[n].transfer().active << " pulls " << m[n].stats().pulls_sent << " pulled "
                 << m[n].stats().pulled_events << " buffered " << m[n].buffered() << " received "
                 << m[n].stats().transfers_received << " late " << m[n].stats().retired_late);
    CHECK(m[n].applied().size() <= 3 + 2);
    CHECK(m[n].retired().size() >= 19);
    CHECK(m[n].versions("last").size() == 1);
    CHECK(storage::state_digest(m[n].store()) == storage::state_digest(m[0].store()));
  }
  CHECK(m[0].stats().incarnations_retired >= 19);
}

TEST_CASE("retired incarnations: an event held back that depends on a folded one is applied") {
  mesh m(3);
  m[2].write(put("x", "from-old-2"), m.now); // (2, old incarnation):1
  m.settle(3);
  auto a_before = m[0].applied();
  // Node 0 writes y after x: its deps name (2, old):1. Hold y back from everyone.
  m[0].write(put("y", "from-0"), m.now);
  auto held = m[0].fetch(1, m.cursors[{0, 1}], 1u << 20, 1u << 20).batch;
  REQUIRE(held.events.size() == 1);
  REQUIRE_FALSE(held.events[0].deps.empty());
  m.cursors[{0, 1}] = m[0].log_end();
  m.cursors[{0, 2}] = m[0].log_end();

  // Node 2 restarts empty and catches x up from node 1; gossip from node 0 is late (its
  // report still says it has not written y).
  m.restart_empty(2);
  for (int r = 0; r < 6; ++r) {
    m.ship(1, 2);
    m.ship(2, 1);
    for (messages::node_index a : {1, 2})
      for (messages::node_index b : {1, 2})
        if (a != b)
          m[b].observe_report(a, m[a].applied());
    m[1].observe_report(0, a_before);
    m[2].observe_report(0, a_before);
    for (messages::node_index n : {1, 2}) {
      while (m.pull(n)) {
      }
      m[n].collect_garbage(m.now);
      m[n].retire_incarnations(m.now);
    }
    m[2].write(put("tick", std::to_string(r)), m.now);
  }
  REQUIRE(m[1].retired().size() == 1); // node 1 folded node 2's old incarnation
  REQUIRE(m[1].applied().get(held.events[0].deps[0].origin) == 0);

  m[1].receive(held, m.now);
  CHECK(m[1].buffered() == 0);
  REQUIRE(m[1].versions("y").size() == 1);
  CHECK(m[1].versions("y")[0].value == "from-0");
}

TEST_CASE("memory: with a million events and retention 50, the log and the position index stay "
          "bounded at every node") {
  mesh m(2, /*retention=*/50);
  const int chunk = 10000;
  size_t most_log = 0, most_index = 0;
  for (int done = 0; done < 1000000; done += chunk) {
    for (int i = 0; i < chunk; ++i)
      m[(done / chunk) % 2].write(put("key-" + std::to_string(i % 1000), "v"), m.now);
    for (int round = 0; round < 3; ++round) {
      m.ship(0, 1);
      m.ship(1, 0);
      m.gossip();
      m[0].collect_garbage(m.now);
      m[1].collect_garbage(m.now);
    }
    for (size_t n = 0; n < 2; ++n) {
      most_log = std::max<size_t>(most_log, m[n].log_end() - m[n].store().log_begin());
      most_index = std::max(most_index, m[n].indexed_positions());
    }
  }
  INFO("most log entries held " << most_log << ", most positions indexed " << most_index);
  CHECK(m[0].applied().total() == 1000000);
  CHECK(m[1].applied() == m[0].applied());
  CHECK(most_log <= 50 + 2 * chunk);
  CHECK(most_index <= most_log); // it held 8 bytes per event ever applied before
  for (size_t n = 0; n < 2; ++n)
    CHECK(m[n].indexed_positions() <= 50 + chunk);
}

TEST_CASE("memory: the causal buffer is bounded in bytes, what does not fit is pulled later") {
  replica_config cfg;
  cfg.self = 1;
  cfg.incarnation = 2;
  cfg.forward_to.resize(2);
  cfg.max_buffered_bytes = 1u << 20;
  replica r(cfg, storage::make_memory_store());
  messages::event_batch b;
  b.sender = 0;
  for (uint64_t c = 2; c < 40; ++c) { // counter 1 never comes: all of them wait
    messages::event e;
    e.id = dot{messages::source{0, 7}, c};
    e.key = "k" + std::to_string(c);
    e.value = std::string(64u << 10, 'x');
    b.events.push_back(e);
  }
  r.receive(b, 1000);
  CHECK(r.buffered_bytes() <= (1u << 20));
  CHECK(r.buffered() < 38);
  CHECK(r.stats().buffer_overflows > 0);
}

TEST_CASE("state transfer: siblings that arrive by transfer go to the receiver's resolver") {
  mesh m(2);
  // Node 0 holds two versions of k whose resolution is still pending (a write that did not
  // replace the other: an explicit, empty context).
  m[0].write(put("k", "a"), m.now);
  m[0].write(write_request{"k", messages::op_kind::put, "b", true, {}}, m.now);
  REQUIRE(m[0].versions("k").size() == 2);
  m.drain().clear();
  messages::event_batch compacted;
  compacted.sender = 0;
  compacted.compacted = true;
  m[1].receive_pulled(compacted, m.now);
  while (m[1].transfer().active)
    REQUIRE(m.pull(1));
  REQUIRE(m[1].versions("k").size() == 2);
  REQUIRE(m.drain().size() == 1); // before: none, and the siblings stayed for good
  CHECK(m.drain()[0].key == "k");
}

TEST_CASE("a node restarted empty no longer counts, in its peers' tables, as holding what its "
          "old incarnation held, so they keep their logs for it and it catches up from them") {
  mesh m(3, /*retention=*/0);
  for (int i = 0; i < 30; ++i)
    m[0].write(put("key-" + std::to_string(i), "v"), m.now);
  for (messages::node_index to : {1, 2})
    m.ship(0, to);
  m.gossip(); // node 2 reports holding all 30
  REQUIRE(m[0].known().get(m[0].self()) == 30);

  m.restart_empty(2);
  m.gossip(); // ... and now reports holding nothing
  for (int r = 0; r < 3; ++r)
    m[0].collect_garbage(m.now);
  // Before the fix node 0 merged the new report into the old one, found the 30 writes
  // stable everywhere and dropped them from its log (retention 0), so the restarted node
  // could only catch up by a state transfer.
  CHECK(m[0].stable().get(m[0].self()) == 0);
  CHECK(m[0].store().log_begin() == 0);

  m.settle(3);
  CHECK(m[2].applied().get(m[0].self()) == 30);
  CHECK(m[2].stats().transfers_received == 0);
  CHECK(storage::state_digest(m[2].store()) == storage::state_digest(m[0].store()));
  CHECK(m[0].store().log_begin() > 0); // once it holds them, they are stable and leave the log
}

TEST_CASE("buffered events whose past was lost with an empty restart are dropped once every "
          "member has reported long after, and only then") {
  mesh m(3);
  m[2].write(put("a", "1"), m.now); // (2, old):1, which only node 2 ever holds
  m[2].write(put("b", "2"), m.now); // (2, old):2, which waits for it
  auto got = m[2].fetch(0, 0, 1u << 20, 1u << 20).batch;
  REQUIRE(got.events.size() == 2);
  got.events.erase(got.events.begin());
  m[0].receive(got, m.now);
  REQUIRE(m[0].buffered() == 1);

  m.restart_empty(2); // (2, old):1 is gone with its disk
  // Pull grace is 10 ms here: the patience is 20 of them. Until then, and while node 1
  // (which could hold it) has not reported since, the event stays.
  for (int step = 0; step < 3; ++step) {
    m.now += 50;
    m.gossip();
    m[0].collect_garbage(m.now);
  }
  CHECK(m[0].buffered() == 1);
  for (int step = 0; step < 10; ++step) {
    m.now += 50;
    m.gossip();
    m[0].collect_garbage(m.now);
  }
  CHECK(m[0].buffered() == 0); // before the fix it waited forever
  CHECK(m[0].stats().orphans_dropped == 1);
  m.settle(3);
  for (int n = 0; n < 3; ++n)
    CHECK(storage::state_digest(m[n].store()) == storage::state_digest(m[0].store()));
}

TEST_CASE("a buffered event whose past some node holds is pulled, never dropped") {
  mesh m(3);
  m[2].write(put("a", "1"), m.now);
  m[2].write(put("b", "2"), m.now);
  m.ship(2, 1); // node 1 holds both
  auto got = m[2].fetch(0, 0, 1u << 20, 1u << 20).batch;
  got.events.erase(got.events.begin());
  m[0].receive(got, m.now);
  REQUIRE(m[0].buffered() == 1);
  m.restart_empty(2);
  m.cursors[{1, 0}] = m[1].log_end(); // node 1's link to node 0 already shipped (lost)
  // Long past the patience, with every member reporting, and no pull made yet: node 1's
  // reports show it holds the missing event, so it is not dropped.
  for (int step = 0; step < 20; ++step) {
    m.now += 50;
    m.gossip();
    m[0].collect_garbage(m.now);
  }
  CHECK(m[0].buffered() == 1);
  CHECK(m[0].stats().orphans_dropped == 0);
  while (m.pull(0)) {
  }
  CHECK(m[0].buffered() == 0);
  CHECK(m[0].versions("a").size() == 1);
  CHECK(m[0].versions("b").size() == 1);
}

TEST_CASE("retiring an incarnation while one of its events is still in flight: the node that "
          "gets it late keeps it and the others take it from there, so all converge") {
  mesh m(3);
  m[2].write(put("a", "1"), m.now); // (2, old):1
  m[2].write(put("b", "2"), m.now); // (2, old):2
  auto both = m[2].fetch(1, 0, 1u << 20, 1u << 20).batch;
  REQUIRE(both.events.size() == 2);
  auto first = both;
  first.events.pop_back();
  auto late = both;
  late.events.erase(late.events.begin()); // (2, old):2, still in the network
  m[0].receive(first, m.now);
  m[1].receive(first, m.now);

  // Node 2 restarts empty, catches (2, old):1 up, and once everyone reports holding
  // exactly that, retires its old incarnation at counter 1.
  m.restart_empty(2);
  std::optional<messages::dot> retirement;
  for (int r = 0; r < 6 && !retirement; ++r) {
    m.gossip();
    while (m.pull(2)) {
    }
    m.gossip();
    m[2].collect_garbage(m.now);
    retirement = m[2].retire_incarnations(m.now);
  }
  REQUIRE(retirement);
  REQUIRE(m[2].retired().size() == 1);

  // Only now does (2, old):2 reach node 1; then the retirement reaches nodes 0 and 1.
  m[1].receive(late, m.now);
  REQUIRE(m[1].versions("b").size() == 1);
  m.ship(2, 0);
  m.ship(2, 1);
  m.settle(6);
  // Before the fix node 1 kept "b" while nodes 0 and 2 refused (2, old):2 as above the
  // final counter of a retired incarnation: the replicas differed for good.
  for (int n = 0; n < 3; ++n) {
    CHECK(m[n].versions("b").size() == 1);
    CHECK(storage::state_digest(m[n].store()) == storage::state_digest(m[0].store()));
    CHECK(m[n].buffered() == 0);
  }
  CHECK(m[0].stats().retired_late == 1); // taken as what follows the final counter
}

TEST_CASE("a node that starts without state takes writes only once it holds what a peer with "
          "a history reported, so its writes follow the deletes the others forgot") {
  mesh m(3);
  m[0].write(put("k", "v"), m.now);
  m.settle(3);
  m[0].write(write_request{"k", messages::op_kind::del, {}, false, {}}, m.now);
  m.settle(6);
  for (int n = 0; n < 3; ++n)
    REQUIRE(m[n].stats().tombstones_collected == 1); // the delete is forgotten everywhere
  auto deleted = m[0].applied();

  m.restart_empty(2);
  CHECK_FALSE(m[2].caught_up(m.now)); // it has heard nobody
  m.gossip();
  CHECK_FALSE(m[2].caught_up(m.now)); // nodes 0 and 1 have a history it does not hold
  m.now += 60000;
  CHECK_FALSE(m[2].caught_up(m.now)); // however long it waits
  m.settle(3);
  CHECK(m[2].applied().covers(deleted));
  CHECK(m[2].caught_up(m.now));
}

TEST_CASE("a fresh cluster takes writes once every node heard every other, or after the "
          "patience when a member is missing") {
  mesh all(3);
  CHECK_FALSE(all[0].caught_up(all.now));
  all.gossip();
  for (int n = 0; n < 3; ++n)
    CHECK(all[n].caught_up(all.now));

  mesh two(3); // node 1 never starts
  CHECK_FALSE(two[0].caught_up(two.now));
  two[0].observe_report(2, two[2].applied(), two[2].stable(), two.now);
  CHECK_FALSE(two[0].caught_up(two.now)); // node 1 not heard yet
  two.now += 2000;
  CHECK(two[0].caught_up(two.now)); // catch_up_patience_ms after it started
}
