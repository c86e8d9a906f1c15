// A causal context used at another node than the one it was read at (issue "Hostile peers
// and clients", defect 4): a context is part of its write's causal past, so a write whose
// context names dots the node has not applied waits for them (they are pulled) and every
// receiver applies them first. Deterministic: actors on CAF's test_coordinator over a
// simulated network, and replicas moved by hand.

#include "replica_mesh.hpp"
#include "sim_scenarios.hpp"

#include "messages/detail/capnp_io.hpp"
#include "messages/mlr.capnp.h"

#include <catch2/catch.hpp>

using namespace mlr;
using namespace mlr::testing;
using namespace std::chrono_literals;

namespace {

// Sends a put with a context and lets simulated time run until it is answered.
std::optional<messages::dot> put_with_context(sim_cluster& c, size_t node, const std::string& key,
                                              const std::string& value,
                                              const actors::causal_context& ctx,
                                              std::string* error = nullptr) {
  (*c.self)->send(c.h.leaders.at(node), actors::put_atom::value, key, value, ctx);
  std::optional<messages::dot> out;
  bool answered = false;
  for (int step = 0; step < 200 && !answered; ++step) {
    c.advance(50ms);
    (*c.self)->receive(
      [&](messages::dot& d) {
        out = d;
        answered = true;
      },
      [&](caf::error& err) {
        if (error)
          *error = actors::from_caf(err).message;
        answered = true;
      },
      caf::after(std::chrono::seconds(0)) >> [] {});
  }
  if (!answered)
    FAIL("the write was never answered");
  return out;
}

std::vector<std::string> values(sim_cluster& c, size_t node, const std::string& key) {
  std::vector<std::string> out;
  for (auto& v : c.get(node, key).siblings)
    out.push_back(v.value);
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace

TEST_CASE("context from another node: read at b, written at c before a's write reached c, "
          "converges to the new value everywhere (mesh, multi, link a->c cut)") {
  sim_cluster c;
  sim_network net(*c.sys, 7);
  auto checker = std::make_shared<invariant_checker>();
  auto spec = sim_spec(make_graph("mesh", 3), net, checker, 300ms);
  spec.make_resolver = resolvers::builtin_resolver("multi");
  c.start(std::move(spec));
  caf::anon_send(net.at(0, 2), cut_atom::value); // a -> c
  c.put(0, "k", "v1");
  run_for(c, 200ms);
  auto read = c.get(1, "k"); // at b
  REQUIRE(read.siblings.size() == 1);
  REQUIRE(c.get(2, "k").siblings.empty()); // c has not seen v1
  auto d = put_with_context(c, 2, "k", "v2", read.context);
  REQUIRE(d);
  // c waited for v1 (pulled from b), then replaced it.
  CHECK(values(c, 2, "k") == std::vector<std::string>{"v2"});
  caf::anon_send(net.at(0, 2), heal_atom::value);
  run_for(c, 2s);
  for (size_t n = 0; n < 3; ++n)
    CHECK(values(c, n, "k") == std::vector<std::string>{"v2"});
  INFO(describe(checker->violations()));
  CHECK(checker->violations().empty());
}

TEST_CASE("context naming a write that never reaches the node: refused after the wait, nothing "
          "written, other writes not held back") {
  sim_cluster c;
  sim_network net(*c.sys, 8);
  auto checker = std::make_shared<invariant_checker>();
  c.start(sim_spec(make_graph("mesh", 3), net, checker, 300ms));
  auto real = c.put(0, "k", "v1");
  run_for(c, 300ms);
  actors::causal_context bogus{{messages::dot{real.origin, real.counter + 1000}}};
  (*c.self)->send(c.h.leaders.at(2), actors::put_atom::value, std::string("k"),
                  std::string("never"), bogus);
  c.run();
  // Meanwhile another client writes at the same node, unhindered.
  auto other = c.put(2, "other", "x");
  CHECK(other.counter == 1);
  std::string error;
  bool answered = false;
  for (int step = 0; step < 200 && !answered; ++step) {
    c.advance(50ms);
    (*c.self)->receive([&](messages::dot&) { answered = true; },
                       [&](caf::error& err) {
                         error = actors::from_caf(err).message;
                         answered = true;
                       },
                       caf::after(std::chrono::seconds(0)) >> [] {});
  }
  REQUIRE(answered);
  CHECK(error.find("which this node has not received within 5000 ms; nothing was written") !=
        std::string::npos);
  for (size_t n = 0; n < 3; ++n)
    CHECK(values(c, n, "k") == std::vector<std::string>{"v1"});
  CHECK(checker->violations().empty());
}

TEST_CASE("context across an empty restart: the restarted node waits for what the context "
          "names (by pull), then the write replaces it everywhere") {
  mesh m(3);
  m[0].write(put("k", "v1"), m.now);
  m.settle(2);
  auto ctx = m[1].versions("k");
  REQUIRE(ctx.size() == 1);
  m.restart_empty(2);
  m.gossip();
  write_request w{"k", messages::op_kind::put, "v2", true, {ctx[0].id}};
  auto missing = m[2].missing_context(w);
  REQUIRE(missing == std::vector<messages::dot>{ctx[0].id});
  m[2].want(missing);
  for (int i = 0; i < 10 && !m[2].missing_context(w).empty(); ++i)
    m.pull(2);
  REQUIRE(m[2].missing_context(w).empty());
  m[2].write(w, m.now);
  m.settle(3);
  for (size_t n = 0; n < 3; ++n) {
    auto vs = m[n].versions("k");
    REQUIRE(vs.size() == 1);
    CHECK(vs[0].value == "v2");
  }
  CHECK(m.drain().empty());
}

TEST_CASE("context during a state transfer: a dot the snapshot covers counts only once the "
          "transfer finished, then the write replaces it everywhere") {
  mesh m(3, /*retention=*/0, /*chunk_keys=*/4);
  for (int i = 0; i < 40; ++i)
    m[i % 2].write(put("key-" + std::to_string(i), "v"), m.now);
  m[0].write(put("k", "v1"), m.now);
  m.settle(4);
  REQUIRE(m[0].store().log_begin() > 0);
  auto ctx = m[0].versions("k");
  m.restart_empty(2);
  m.gossip();
  REQUIRE(m.pull(2)); // "compacted"
  REQUIRE(m.pull(2)); // the first chunk
  REQUIRE(m[2].transfer().active);
  write_request w{"k", messages::op_kind::put, "v2", true, {ctx[0].id}};
  CHECK_FALSE(m[2].missing_context(w).empty()); // not held until the transfer ends
  while (m[2].transfer().active)
    REQUIRE(m.pull(2));
  REQUIRE(m[2].missing_context(w).empty());
  m[2].write(w, m.now);
  m.settle(3);
  for (size_t n = 0; n < 3; ++n) {
    auto vs = m[n].versions("k");
    REQUIRE(vs.size() == 1);
    CHECK(vs[0].value == "v2");
  }
}

TEST_CASE("contexts on the wire: one dot per origin incarnation, a batch naming one twice is "
          "refused at decode") {
  messages::event_batch b;
  messages::event e;
  e.id = messages::dot{messages::source{0, 5}, 3};
  e.key = "k";
  e.context = {messages::dot{messages::source{1, 9}, 2}, messages::dot{messages::source{1, 9}, 4}};
  b.events.push_back(e);
  // The encoder writes the canonical form (the highest dot per origin incarnation)...
  auto decoded = messages::decode_batch(messages::encode(b));
  REQUIRE(decoded);
  REQUIRE(decoded->events[0].context.size() == 1);
  CHECK(decoded->events[0].context[0].counter == 4);
  // ...and the decoder refuses anything else (a frame built by hand, below the encoder).
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<wire::EventBatch>();
  auto sources = root.initSources(2);
  sources[0].setNode(0);
  sources[0].setIncarnation(5);
  sources[1].setNode(1);
  sources[1].setIncarnation(9);
  auto ev = root.initEvents(1)[0];
  ev.setSource(0);
  ev.setCounter(3);
  auto ctx = ev.initContext(2);
  ctx[0].setSource(1);
  ctx[0].setCounterLow(2);
  ctx[1].setSource(1);
  ctx[1].setCounterLow(4);
  auto bad = messages::decode_batch(messages::detail::to_frame(msg));
  REQUIRE_FALSE(bad);
  CHECK(bad.err().message.find("context names origin incarnation n1.0000000000000009 twice") !=
        std::string::npos);
}

TEST_CASE("a node restarted empty takes a write only once it caught up: status says so, and the "
          "write then reaches every node") {
  sim_cluster c;
  sim_network net(*c.sys, 9);
  auto checker = std::make_shared<invariant_checker>();
  auto spec = sim_spec(make_graph("mesh", 3), net, checker, 150ms);
  c.keep_stores(spec);
  c.start(std::move(spec));
  CHECK(c.status(2).caught_up); // a fresh cluster: every node heard every other at start
  c.put(0, "k", "v");
  run_for(c, 1s);
  (*c.self)->send(c.h.leaders.at(0), actors::del_atom::value, std::string("k"));
  c.run();
  c.take<messages::dot>();
  run_for(c, 3s);
  for (size_t n = 0; n < 3; ++n)
    REQUIRE(c.status(n).stats.tombstones_collected == 1); // forgotten everywhere

  c.restart(2, /*empty=*/true, checker.get());
  CHECK_FALSE(c.status(2).caught_up);
  (*c.self)->send(c.h.leaders.at(2), actors::put_atom::value, std::string("k"),
                  std::string("after"));
  c.run();
  bool answered = false;
  (*c.self)->receive([&](messages::dot&) { answered = true; },
                     [&](caf::error&) { answered = true; },
                     caf::after(std::chrono::seconds(0)) >> [] {});
  CHECK_FALSE(answered); // it waits: node 2 holds nothing of the others' history yet
  for (int step = 0; step < 100 && !answered; ++step) {
    c.advance(50ms);
    (*c.self)->receive([&](messages::dot&) { answered = true; },
                       [&](caf::error& err) { FAIL("refused: " << c.sys->render(err)); },
                       caf::after(std::chrono::seconds(0)) >> [] {});
  }
  REQUIRE(answered);
  CHECK(c.status(2).caught_up);
  run_for(c, 2s);
  for (size_t n = 0; n < 3; ++n)
    CHECK(values(c, n, "k") == std::vector<std::string>{"after"});
  INFO(describe(checker->violations()));
  CHECK(checker->violations().empty());
}
