// What an authenticated member may and may not make a node do (issue "Replies never reach
// the wrong client ... a member cannot wedge or kill a node"), on replicas moved by hand:
// vectors from snapshots and gossip pass the own-dot check, answers and requests in the
// name of non-members are refused and counted, and state transfers are one per member with
// shared snapshots.

#include "replica_mesh.hpp"

#include <catch2/catch.hpp>

using namespace mlr;
using namespace mlr::testing;
using messages::dot;

TEST_CASE("member rights: a snapshot claiming this node's own future dots makes it take a new "
          "incarnation, its next writes do not collide") {
  mesh m(2);
  m[0].write(put("a", "1"), m.now);
  m.settle(1);
  auto self = m[1].self();
  // Node 0 (or whoever speaks for it) offers a transfer whose vector covers node 1's dots
  // up to 1000, which node 1 never issued.
  messages::event_batch compacted;
  compacted.sender = 0;
  compacted.compacted = true;
  m[1].receive_pulled(compacted, m.now);
  messages::event_batch answer;
  answer.sender = 0;
  messages::state_chunk chunk;
  chunk.transfer = 1;
  chunk.snapshot = m[0].applied();
  chunk.snapshot.advance(dot{self, 1000});
  chunk.done = true;
  answer.chunk = chunk;
  m[1].receive_pulled(answer, m.now);
  CHECK(m[1].self().incarnation != self.incarnation);
  CHECK(m[1].stats().incarnations_taken == 1);
  // Writing goes on under the new incarnation (before the fix: "applied twice", and the
  // leader actor died).
  auto d = m[1].write(put("b", "2"), m.now);
  CHECK(d.origin.incarnation == m[1].self().incarnation);
  CHECK(d.counter == 1);
  m.settle(2);
  CHECK(m[0].versions("b").size() == 1);
}

TEST_CASE("member rights: a pull answer from a node that is not a member is refused and counted, "
          "pulling goes on") {
  mesh m(3);
  m[0].write(put("a", "1"), m.now);
  m.gossip();
  messages::event_batch forged;
  forged.sender = 99;
  forged.compacted = true;
  m[2].receive_pulled(forged, m.now);
  CHECK_FALSE(m[2].transfer().active); // before the fix: a transfer "from node 99", forever
  CHECK(m[2].stats().pull_answers_refused == 1);
  // The real gap is still pulled from a real holder.
  for (int i = 0; i < 5 && m[2].versions("a").empty(); ++i)
    m.pull(2);
  CHECK(m[2].versions("a").size() == 1);
}

TEST_CASE("member rights: start-transfer pulls for made-up requesters are refused without a "
          "snapshot, one transfer per member, one snapshot shared while nothing changes") {
  mesh m(3, 10000, /*chunk_keys=*/4);
  for (int i = 0; i < 50; ++i)
    m[0].write(put("k" + std::to_string(i), "v"), m.now);
  m.settle(1);
  for (messages::node_index r = 1000; r < 1030; ++r) {
    messages::pull_request req;
    req.requester = r;
    req.start_transfer = true;
    auto answer = m[0].serve_pull(req, m.now);
    CHECK_FALSE(answer.chunk);
  }
  CHECK(m[0].stats().pulls_refused == 30);
  CHECK(m[0].outgoing_transfers().first == 0);
  // Two members start transfers; each again: still two, sharing one snapshot.
  for (int round = 0; round < 3; ++round)
    for (messages::node_index r : {1u, 2u}) {
      messages::pull_request req;
      req.requester = r;
      req.start_transfer = true;
      REQUIRE(m[0].serve_pull(req, m.now).chunk);
    }
  auto [transfers, snapshots] = m[0].outgoing_transfers();
  CHECK(transfers == 2);
  CHECK(snapshots == 1);
}

TEST_CASE("member rights: a gossiped vector in the name of a non-member is ignored and counted") {
  mesh m(2);
  messages::version_vector vv;
  vv.advance(dot{messages::source{0, 12345}, 1u << 30});
  m[1].observe_report(77, vv);
  CHECK(m[1].stats().reports_refused == 1);
  CHECK(m[1].known() == m[1].applied()); // nothing was believed
  CHECK_FALSE(m[1].plan_pull(m.now + 10'000, true));
}

TEST_CASE("member rights: pulls are counted when they are sent, not when they are planned") {
  mesh m(2);
  m[0].write(put("a", "1"), m.now);
  m.gossip();
  m.now += 10'000;
  auto plan = m[1].plan_pull(m.now, true);
  REQUIRE(plan);
  CHECK(m[1].stats().pulls_sent == 0); // a plan the leader cannot send counts nothing
  m[1].pull_sent();
  CHECK(m[1].stats().pulls_sent == 1);
}
