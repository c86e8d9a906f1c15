// Resolvers that merge (resolvers/resolver.hpp) and the law checker (node/law_checker.hpp):
// the built-in resolvers and the example merging resolver pass it, deliberately wrong ones
// fail it with the law they break; a merged value on the CAF-free replica stands for
// exactly the versions it was computed from; and in a simulated cluster the tags resolver
// merges concurrent writes at every node without a new write.

#include "core/typed.hpp"
#include "harness.hpp"
#include "node/law_checker.hpp"
#include "replica_mesh.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <catch2/catch.hpp>

#include <set>

using namespace mlr;
using namespace mlr::testing;
using messages::op_kind;
using resolvers::resolution;

namespace {
core::write_request del(const std::string& key) {
  core::write_request w;
  w.key = key;
  w.op = op_kind::del;
  return w;
}
} // namespace

namespace {

// Sums the numbers of the inputs: commutative and associative, but not idempotent.
resolvers::resolver_actor::behavior_type sum_resolver() {
  return {
    [](resolvers::resolve_atom, const std::string&, const std::vector<messages::version>& vs) {
      long long sum = 0;
      for (auto& v : vs)
        if (!v.tombstone)
          sum += std::atoll(v.value.c_str());
      return resolution::merged(std::to_string(sum));
    }};
}

// Keeps whichever version it was given first: depends on the order of its input.
resolvers::resolver_actor::behavior_type first_resolver() {
  return {
    [](resolvers::resolve_atom, const std::string&, const std::vector<messages::version>& vs) {
      return resolution::select({vs.front().id});
    }};
}

// Keeps the version with the earliest HLC, but then keeps the latest... of the two
// earliest only: a selection that is not by one total order, so grouping changes it.
resolvers::resolver_actor::behavior_type odd_resolver() {
  return {
    [](resolvers::resolve_atom, const std::string&, const std::vector<messages::version>& vs) {
      auto sorted = vs;
      std::sort(sorted.begin(), sorted.end(), messages::lww_before);
      return resolution::select({sorted[sorted.size() > 2 ? 1 : 0].id});
    }};
}

resolvers::resolver_factory spawn_of(resolvers::resolver_actor::behavior_type (*fn)()) {
  return [fn](caf::actor_system& sys) { return sys.spawn(fn); };
}

} // namespace

TEST_CASE("law checker: the built-in resolvers and the tags merge pass every law") {
  for (auto name : {"lww", "multi", "max", "tags"}) {
    INFO("resolver " << name);
    node::law_options o;
    o.seed = 7;
    o.trials = 150;
    auto rep = node::check_resolver_laws(resolvers::builtin_resolver(name), o);
    INFO(rep.law << ": " << rep.counterexample);
    CHECK(rep.ok);
    CHECK(rep.trials == 150);
  }
}

TEST_CASE("law checker: wrong resolvers fail, naming the law and a counterexample") {
  node::law_options o;
  o.seed = 3;
  o.value = [](std::mt19937_64& rng) { return std::to_string(rng() % 10); };
  auto sum = node::check_resolver_laws(spawn_of(sum_resolver), o);
  CHECK_FALSE(sum.ok);
  CHECK(sum.law == "idempotent");
  CHECK(sum.counterexample.find("again with versions it covers") != std::string::npos);

  auto first = node::check_resolver_laws(spawn_of(first_resolver), o);
  CHECK_FALSE(first.ok);
  CHECK(first.law == "order");

  auto odd = node::check_resolver_laws(spawn_of(odd_resolver), o);
  CHECK_FALSE(odd.ok);
  CHECK(odd.law == "grouping");
  INFO(odd.counterexample);
  CHECK(odd.trials < o.trials);
}

TEST_CASE("merged value: stands for exactly its inputs on the replica, and goes when they "
          "change") {
  mesh m(3);
  m[0].write(put("k", "a,b"), m.now);
  m[1].write(put("k", "b,c"), m.now);
  m.ship(0, 1);
  m.ship(1, 0);
  auto& at1 = m.drain();
  REQUIRE(!at1.empty());
  auto c = at1.back();
  REQUIRE(c.versions.size() == 2);
  CHECK(m[1].merge(c, "a,b,c"));
  CHECK(core::typed::string_value(m[1].versions("k")) == std::optional<std::string>("a,b,c"));
  auto shown = core::typed::shown_registers(m[1].versions("k"));
  REQUIRE(shown.size() == 1);
  CHECK(shown[0].value == "a,b,c");
  // The inputs stay beside it: two register versions and the merged value.
  CHECK(core::typed::registers(m[1].versions("k")).size() == 2);

  // A stale answer (the versions changed since the question) changes nothing.
  m[2].write(put("k", "z"), m.now);
  m.ship(2, 1);
  CHECK_FALSE(m[1].merge(c, "stale"));
  CHECK(core::typed::merged(m[1].versions("k")) == nullptr); // "z" joined: the merge went
  CHECK(core::typed::registers(m[1].versions("k")).size() == 3);

  // A write that saw everything replaces the inputs and the merged value with itself.
  m.conflicts.clear();
  auto again = m.drain();
  REQUIRE(!again.empty());
  CHECK(m[1].merge(again.back(), "a,b,c,z"));
  m[1].write(put("k", "final"), m.now);
  auto vs = m[1].versions("k");
  REQUIRE(vs.size() == 1);
  CHECK(vs[0].value == "final");
  CHECK(vs[0].kind == messages::value_kind::reg);
}

TEST_CASE("merged value: an answer made stale by an earlier selection is asked again, and a "
          "late selection drops a merge it did not see") {
  mesh m(3);
  m[0].write(del("k"), m.now);
  m[1].write(del("k"), m.now);
  m[2].write(put("k", "x,a"), m.now);
  m.ship(1, 0);
  auto first = m[0].take_ready().conflicts; // {d0, d1}
  REQUIRE(first.size() == 1);
  m.ship(2, 0);
  auto second = m[0].take_ready().conflicts; // {d0, d1, p}
  REQUIRE(second.size() == 1);
  REQUIRE(second[0].versions.size() == 3);
  // The answers come in order: a selection of one delete, then a merge of all three,
  // which is stale now.
  m[0].resolve(first[0], {first[0].versions.back().id});
  CHECK_FALSE(m[0].merge(second[0], "a,x"));
  auto again = m[0].take_ready().conflicts; // asked about what the key holds now (by the
  REQUIRE(!again.empty());                  // selection and by the stale merge: twice is
  for (auto& c : again)                     // harmless)
    CHECK(c.versions.size() == 2);
  CHECK(m[0].merge(again[0], "a,x"));
  CHECK(core::typed::string_value(m[0].versions("k")) == std::optional<std::string>("a,x"));

  // A selection about fewer versions than a merge stood for removes one of them: the merge
  // goes and the resolver is asked about the rest.
  mesh n(3);
  n[0].write(put("j", "a"), n.now);
  n[1].write(put("j", "b"), n.now);
  n[2].write(put("j", "c"), n.now);
  n.ship(1, 0);
  auto two = n[0].take_ready().conflicts;
  n.ship(2, 0);
  auto three = n[0].take_ready().conflicts;
  REQUIRE(two.size() == 1);
  REQUIRE(three.size() == 1);
  CHECK(n[0].merge(three[0], "a,b,c"));
  CHECK(n[0].resolve(two[0], {two[0].versions.front().id})); // late, keeps one of two
  CHECK(core::typed::merged(n[0].versions("j")) == nullptr);
  CHECK(core::typed::registers(n[0].versions("j")).size() == 2);
  CHECK(n[0].take_ready().conflicts.size() == 1);
}

TEST_CASE("merged value: a state transfer keeps it while the inputs stay, and never takes "
          "the sender's") {
  mesh m(2, /*retention=*/0);
  m[0].write(put("k", "a"), m.now);
  m[1].write(put("k", "b"), m.now);
  m.ship(0, 1);
  m.ship(1, 0);
  for (auto& c : m.drain())
    for (size_t i = 0; i < 2; ++i)
      if (c.versions.size() == 2)
        m[i].merge(c, "a,b");
  for (size_t i = 0; i < 2; ++i)
    CHECK(core::typed::string_value(m[i].versions("k")) == std::optional<std::string>("a,b"));
  m.settle(4);
  REQUIRE(m[0].store().log_begin() > 0); // the writes left the log: a restart needs a transfer
  m.restart_empty(1);                    // n1 must take n0's state, merged value and all
  m.settle();
  CHECK(m[1].stats().transfer_keys_received > 0);
  CHECK(core::typed::merged(m[1].versions("k")) == nullptr); // its own resolver decides
  CHECK(core::typed::registers(m[1].versions("k")).size() == 2);
  CHECK(core::typed::string_value(m[0].versions("k")) == std::optional<std::string>("a,b"));
}

TEST_CASE("ring N=3 merging resolver (tags): concurrent writes merge at every node, no new "
          "write, and the next write replaces the merge") {
  sim_cluster c;
  c.start(topology::make_ring(topology::default_names(3)), "tags");
  c.queue_put(0, "labels", "red,sale");
  c.queue_put(1, "labels", "blue");
  c.queue_put(2, "labels", "sale,new");
  c.run();
  for (int i = 0; i < 3; ++i)
    c.take<messages::dot>();
  for (size_t node = 0; node < 3; ++node) {
    CHECK(c.value(node, "labels") == "blue,new,red,sale");
    auto g = c.get(node, "labels");
    REQUIRE(g.siblings.size() == 1); // shown alone, in place of the three inputs
    CHECK(g.context.dots.size() >= 3);
  }
  CHECK(topology::converged(c.statuses()));
  std::set<uint64_t> log_ends;
  for (auto& s : c.statuses())
    log_ends.insert(s.log_end);
  CHECK(log_ends == std::set<uint64_t>{3}); // three writes, no write for the merge

  auto g = c.get(1, "labels");
  c.put(1, "labels", "done", g.context);
  c.run();
  for (size_t node = 0; node < 3; ++node) {
    CHECK(c.value(node, "labels") == "done");
    CHECK(c.get(node, "labels").siblings.size() == 1);
  }
  CHECK(topology::converged(c.statuses()));
}

namespace {

using release_atom = caf::atom_constant<caf::atom("release")>;
using gate_actor = resolvers::resolver_actor::extend<caf::reacts_to<release_atom>>;

struct gate_state {
  std::vector<std::pair<caf::typed_response_promise<resolution>, std::vector<messages::version>>>
    held;
};

// Holds every question until released, then answers it by last-writer-wins.
gate_actor::behavior_type gate(gate_actor::stateful_pointer<gate_state> self) {
  return {
    [self](resolvers::resolve_atom, const std::string&, const std::vector<messages::version>& vs) {
      auto rp = self->make_response_promise<resolution>();
      self->state.held.emplace_back(rp, vs);
      return rp;
    },
    [self](release_atom) {
      for (auto& [rp, vs] : self->state.held)
        rp.deliver(
          resolution::select({std::max_element(vs.begin(), vs.end(), messages::lww_before)->id}));
      self->state.held.clear();
    },
  };
}

struct gated_cluster {
  sim_cluster c;
  // Weak handles: only the leader keeps its resolver alive.
  std::shared_ptr<std::vector<caf::actor_addr>> gates =
    std::make_shared<std::vector<caf::actor_addr>>();

  gated_cluster() {
    topology::cluster_spec spec;
    spec.topology = topology::make_ring(topology::default_names(3));
    auto gs = gates;
    spec.make_resolver = [gs](caf::actor_system& sys) -> resolvers::resolver_actor {
      auto g = sys.spawn(gate);
      gs->push_back(g.address());
      return g;
    };
    c.start(std::move(spec));
  }
  void concurrent_puts(const std::string& key, const std::vector<std::string>& values) {
    for (size_t n = 0; n < values.size(); ++n)
      c.queue_put(n, key, values[n]);
    c.run();
    for (size_t n = 0; n < values.size(); ++n)
      c.take<messages::dot>();
  }
  uint32_t swap_all(const std::string& name) {
    uint32_t in_flight = 0;
    for (auto& l : c.h.leaders) {
      (*c.self)->send(l, actors::resolver_atom::value,
                      actors::resolver_swap{resolvers::builtin_resolver(name), name});
      c.run();
      in_flight += c.take<uint32_t>();
    }
    return in_flight;
  }
};

} // namespace

TEST_CASE("hot swap: questions in flight are answered by the previous resolver, new "
          "conflicts go to the new one, nothing is lost") {
  gated_cluster g;
  g.concurrent_puts("k", {"a", "b", "c"});
  CHECK(g.c.get(0, "k").siblings.size() == 3); // held by the gates
  CHECK(g.swap_all("tags") >= 3);
  for (auto& gate : *g.gates) {
    auto alive = caf::actor_cast<caf::actor>(gate);
    REQUIRE(alive); // the leader keeps the swapped-out resolver until it has answered
    caf::anon_send(alive, release_atom::value);
  }
  g.c.run();
  for (size_t n = 0; n < 3; ++n) {
    CHECK(g.c.value(n, "k") == "c"); // the gates' answer (last writer wins), not lost
    auto s = g.c.status(n);
    CHECK(s.stats.unresolved == 0);
  }
  g.concurrent_puts("t", {"x", "y", "z"}); // after the swap: the tags resolver merges
  for (size_t n = 0; n < 3; ++n)
    CHECK(g.c.value(n, "t") == "x,y,z");
  CHECK(topology::converged(g.c.statuses()));
}

TEST_CASE("hot swap: questions the previous resolver never answers time out and are asked "
          "of the new one") {
  gated_cluster g;
  g.concurrent_puts("k", {"a,b", "b", "c"});
  CHECK(g.swap_all("tags") >= 3);
  g.c.advance(std::chrono::seconds(6)); // the gates' questions time out (5 s)
  g.c.advance(std::chrono::seconds(2)); // and are asked again, of the tags resolver
  for (size_t n = 0; n < 3; ++n)
    CHECK(g.c.value(n, "k") == "a,b,c");
  CHECK(topology::converged(g.c.statuses()));
}

TEST_CASE("change reports: a state transfer's keys and a resolver's selection are changes too") {
  mesh m(2, /*retention=*/0);
  m[0].write(put("name", "ada"), m.now);
  m[0].write(core::write_request{"likes", messages::op_kind::incr, {}, false, {}, {}, 3}, m.now);
  m.settle(4);
  REQUIRE(m[0].store().log_begin() > 0); // gone from the log: n1 gets them by state transfer
  m.restart_empty(1);
  m[1].report_changes(true);
  m.settle();
  REQUIRE(m[1].stats().transfer_keys_received > 0);
  std::map<std::string, core::change> seen;
  for (auto& c : m[1].take_ready().changes)
    seen[c.key] = c;
  REQUIRE(seen.count("name"));
  CHECK(seen["name"].event == "transfer");
  CHECK(seen["name"].type == "string");
  CHECK(seen["name"].value == "ada");
  REQUIRE(seen.count("likes"));
  CHECK(seen["likes"].event == "transfer");
  CHECK(seen["likes"].type == "counter");
  CHECK(seen["likes"].value == "3");

  m[0].report_changes(true);
  m[0].take_ready();
  m[0].write(put("k", "a"), m.now);
  m[1].write(put("k", "b"), m.now + 1);
  m.ship(1, 0);
  auto ready = m[0].take_ready();
  REQUIRE(ready.conflicts.size() == 1);
  auto c = ready.conflicts[0];
  auto keep = std::max_element(c.versions.begin(), c.versions.end(), messages::lww_before);
  m[0].resolve(c, {keep->id});
  auto after = m[0].take_ready().changes;
  REQUIRE(after.size() == 1);
  CHECK(after[0].event == "resolved");
  CHECK(after[0].key == "k");
  CHECK(after[0].value == keep->value);
  CHECK(after[0].id == keep->id);
}
