// Value types and the codec: version vector algebra, HLC rules, seen-by, and that every
// malformed or oversized frame becomes an error value.

#include "messages/codec.hpp"
#include "messages/hlc.hpp"
#include "messages/version_vector.hpp"

#include <catch2/catch.hpp>

#include <cstring>

using namespace mlr::messages;

namespace {

source s(node_index n, uint64_t inc = 7) {
  return source{n, inc};
}

version_vector vv(std::initializer_list<std::pair<source, uint64_t>> xs) {
  version_vector out;
  for (auto& [src, c] : xs)
    out.advance(dot{src, c});
  return out;
}

event sample_event() {
  event e;
  e.id = dot{s(2, 0xdeadbeefcafef00dull), 42};
  e.time = hlc::make(1700000000000ull, 3);
  e.deps = {dot{s(0), 5}, dot{s(1, 9), 11}};
  e.context = {dot{s(0), 4}};
  e.seen.insert(0);
  e.seen.insert(2);
  e.seen.insert(70);
  e.key = "user:1";
  e.value = std::string("v\0alue", 6);
  return e;
}

} // namespace

TEST_CASE("version vector covers, merges and compares") {
  auto a = vv({{s(0), 3}, {s(1), 1}});
  auto b = vv({{s(0), 2}, {s(1), 4}});
  CHECK(a.covers(dot{s(0), 3}));
  CHECK_FALSE(a.covers(dot{s(0), 4}));
  CHECK_FALSE(a.covers(dot{s(0, 8), 1})); // another incarnation of node 0
  CHECK(a.compare(b) == causal_order::concurrent);
  auto m = a;
  m.merge(b);
  CHECK(m == vv({{s(0), 3}, {s(1), 4}}));
  CHECK(a.compare(m) == causal_order::before);
  CHECK(m.compare(a) == causal_order::after);
  CHECK(m.compare(m) == causal_order::equal);
  CHECK(m.covers(a));
  CHECK_FALSE(a.covers(m));
  CHECK(m.total() == 7);
  auto delta = m.delta_since(a);
  REQUIRE(delta.size() == 1);
  CHECK(delta[0] == dot{s(1), 4});
  // lag: what one vector holds that the other does not, per source, never negative
  CHECK(a.missing_from(b) == 1);
  CHECK(b.missing_from(a) == 3);
  CHECK(m.missing_from(m) == 0);
  CHECK(vv({{s(0, 8), 2}}).missing_from(a) == 2); // another incarnation counts in full
}

TEST_CASE("hlc ticks past what it observed, but caps far-future clocks") {
  hlc_clock clock(500);
  auto t1 = clock.tick(1000);
  CHECK(t1 == hlc::make(1000, 0));
  auto t2 = clock.tick(1000); // same millisecond: logical part grows
  CHECK(t2 == hlc::make(1000, 1));
  clock.observe(hlc::make(1200, 5), 1000); // within the offset: folded in
  CHECK(clock.tick(1000) == hlc::make(1200, 6));
  clock.observe(hlc::make(999999, 0), 1000); // far future: capped at now + offset
  CHECK(clock.last().physical_ms() == 1500);
  CHECK(clock.tick(900) > hlc::make(1500, 0)); // never backwards, even if the wall clock is
}

TEST_CASE("seen-by holds node indices beyond 64") {
  seen_by x;
  x.insert(3);
  x.insert(64);
  x.insert(130);
  CHECK(x.contains(130));
  CHECK_FALSE(x.contains(4));
  CHECK(x.count() == 3);
}

TEST_CASE("event batch survives an encode/decode round trip") {
  event_batch b;
  b.sender = 3;
  b.epoch = 9;
  b.events.push_back(sample_event());
  auto del = sample_event();
  del.id.counter = 43;
  del.op = op_kind::del;
  del.value.clear();
  b.events.push_back(del);
  auto f = encode(b);
  auto back = decode_batch(f);
  REQUIRE(back);
  CHECK(back->sender == 3);
  CHECK(back->epoch == 9);
  REQUIRE(back->events.size() == 2);
  auto& e = back->events[0];
  CHECK(e.id == b.events[0].id);
  CHECK(e.time == b.events[0].time);
  CHECK(e.deps == b.events[0].deps);
  CHECK(e.context == b.events[0].context);
  CHECK(e.seen == b.events[0].seen);
  CHECK(e.key == "user:1");
  CHECK(e.value == b.events[0].value);
  CHECK(back->events[1].op == op_kind::del);
}

TEST_CASE("ack carries the receiver's version vector") {
  ack a;
  a.receiver = 4;
  a.applied = vv({{s(0), 3}, {s(4, 99), 8}});
  a.received = 10;
  a.duplicates = 2;
  auto back = decode_ack(encode(a));
  REQUIRE(back);
  CHECK(back->applied == a.applied);
  CHECK(back->received == 10);
  CHECK(back->duplicates == 2);
}

TEST_CASE("bad frames give error values, never crashes") {
  event_batch b;
  b.events.push_back(sample_event());
  auto good = encode(b);

  SECTION("bytes that are not Cap'n Proto") {
    frame f;
    f.bytes.assign(64, 0xAB);
    auto r = decode_batch(f);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == mlr::errc::malformed_frame);
  }
  SECTION("a length that is not whole words") {
    frame f{{1, 2, 3}};
    auto r = decode_batch(f);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == mlr::errc::malformed_frame);
  }
  SECTION("an empty frame") {
    auto r = decode_batch(frame{});
    REQUIRE_FALSE(r);
    CHECK(r.err().code == mlr::errc::malformed_frame);
  }
  SECTION("a truncated frame") {
    auto f = good;
    f.bytes.resize(f.bytes.size() - 16);
    auto r = decode_batch(f);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == mlr::errc::malformed_frame);
  }
  SECTION("a frame whose segment table claims 2^31 words") {
    auto f = good;
    uint32_t huge = 1u << 31;
    std::memcpy(f.bytes.data() + 4, &huge, 4);
    auto r = decode_batch(f);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == mlr::errc::malformed_frame);
  }
  SECTION("an oversized frame") {
    decode_limits limits;
    limits.max_frame_bytes = good.bytes.size() - 8;
    auto r = decode_batch(good, limits);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == mlr::errc::oversized_frame);
    CHECK(r.err().message.find("exceeds the limit") != std::string::npos);
  }
  SECTION("an event with counter 0, which no write can have") {
    b.events[0].id.counter = 0; // counters start at 1
    auto r = decode_batch(encode(b));
    REQUIRE_FALSE(r);
    CHECK(r.err().code == mlr::errc::malformed_frame);
  }
}

TEST_CASE(
  "ack: gossip says it carries a stable vector even when it is empty, a heartbeat does not") {
  ack gossip;
  gossip.receiver = 1;
  gossip.has_stable = true;
  auto g = decode_ack(encode(gossip), decode_limits{});
  REQUIRE(g);
  CHECK(g->has_stable);
  CHECK(g->stable.empty());
  ack heartbeat;
  heartbeat.receiver = 1;
  auto h = decode_ack(encode(heartbeat), decode_limits{});
  REQUIRE(h);
  CHECK_FALSE(h->has_stable);
}
