// The replication core on CAF's deterministic test_coordinator: every topology converges,
// applies each event exactly once and costs N-1 transmissions per write; causal delivery
// holds back what must wait and nothing else; resolvers agree everywhere; bad frames get
// error values while the leader keeps serving.

#include "harness.hpp"

#include "sim_channel.hpp"
#include <caf/typed_event_based_actor.hpp>

#include "messages/codec.hpp"

#include <map>
#include <random>
#include <set>
#include <sstream>

using namespace mlr;
using namespace mlr::testing;
using topology::graph;

namespace {

// Every node writes `rounds` times, to keys shared by all nodes and to keys of its own.
// Rounds are interleaved with partial runs of the scheduler (a seeded number of steps), so
// some writes see earlier ones and others are concurrent with them.
void check_topology(const std::string& kind, size_t n) {
  sim_cluster c;
  auto g = make_graph(kind, n);
  INFO(kind << " with " << n << " nodes, " << g.edge_count() << " edges");
  c.start(g, "lww");
  const size_t rounds = 6;
  std::mt19937 rng(static_cast<unsigned>(n * 31 + kind.size()));
  for (size_t r = 0; r < rounds; ++r) {
    for (size_t node = 0; node < n; ++node) {
      auto key = r % 2 == 0 ? "shared-" + std::to_string(r % 3)
                            : "own-" + std::to_string(node) + "-" + std::to_string(r);
      c.queue_put(node, key, "v" + std::to_string(r) + "@" + std::to_string(node));
    }
    c.sched->run(std::uniform_int_distribution<size_t>(0, 40)(rng));
  }
  c.run();
  for (size_t i = 0; i < rounds * n; ++i)
    c.take<messages::dot>();

  const uint64_t writes = rounds * n;
  auto all = c.statuses();
  CHECK(topology::converged(all));
  uint64_t sent = 0;
  uint64_t received = 0;
  for (auto& s : all) {
    INFO("node " << s.node);
    // Each event is applied, and so logged, exactly once per node.
    CHECK(s.applied.total() == writes);
    CHECK(s.log_end == writes);
    CHECK(s.stats.duplicates == 0);
    CHECK(s.stats.buffered == 0);
    CHECK(s.stats.local_writes == rounds);
    CHECK(s.stats.applied_remote == writes - rounds);
    sent += s.stats.events_sent;
    received += s.stats.events_received;
  }
  // N-1 transmissions per write, on every strongly connected graph.
  CHECK(sent == writes * (n - 1));
  // Caught-up links are handed their batches by the leader (ready::batches), and without
  // faults none arrives at a link that has moved on.
  uint64_t shipments = 0;
  for (auto& link : c.h.links) {
    (*c.self)->send(link, actors::status_atom::value);
    c.run();
    auto ls = c.take<actors::link_status>();
    shipments += ls.shipments;
    CHECK(ls.shipments_refused == 0);
  }
  CHECK(shipments > 0);
  CHECK(received == writes * (n - 1));
  for (size_t k = 0; k < 3; ++k) {
    auto key = "shared-" + std::to_string(k);
    auto expected = c.value(0, key);
    for (size_t node = 1; node < n; ++node)
      CHECK(c.value(node, key) == expected);
  }
}

topology::cluster_spec spec_for(graph g, const std::string& resolver) {
  topology::cluster_spec spec;
  spec.topology = std::move(g);
  spec.make_resolver = resolvers::builtin_resolver(resolver);
  return spec;
}

} // namespace

TEST_CASE("ring N=3: concurrent writes converge, applied once each, N-1 sends per write") {
  check_topology("ring", 3);
}
TEST_CASE("ring N=7: concurrent writes converge, applied once each, N-1 sends per write") {
  check_topology("ring", 7);
}
TEST_CASE("star N=3: concurrent writes converge, applied once each, N-1 sends per write") {
  check_topology("star", 3);
}
TEST_CASE("star N=7: concurrent writes converge, applied once each, N-1 sends per write") {
  check_topology("star", 7);
}
TEST_CASE("mesh N=3: concurrent writes converge, applied once each, N-1 sends per write") {
  check_topology("mesh", 3);
}
TEST_CASE("mesh N=7: concurrent writes converge, applied once each, N-1 sends per write") {
  check_topology("mesh", 7);
}
TEST_CASE("custom two-path N=3: concurrent writes converge, applied once, N-1 sends per write") {
  check_topology("custom", 3);
}
TEST_CASE("custom two-path N=7: concurrent writes converge, applied once, N-1 sends per write") {
  check_topology("custom", 7);
}

TEST_CASE("mesh N=3 causal delivery: an update that overtakes its insert waits for it") {
  sim_cluster c;
  channel_actor a_to_c;
  auto spec = spec_for(topology::make_mesh({"a", "b", "c"}), "lww");
  spec.make_sink = [&](topology::node_index from, topology::node_index to,
                       actors::leader_actor dest) -> actors::sink_actor {
    if (from == 0 && to == 2) {
      a_to_c = spawn_channel(*c.sys, dest);
      return a_to_c;
    }
    return dest;
  };
  c.start(spec);
  caf::anon_send(a_to_c, hold_atom::value);
  c.run();

  c.put(0, "row", "insert"); // A inserts; B gets it, C's copy is held on A -> C
  CHECK(c.value(1, "row") == "insert");
  CHECK(c.get(2, "row").siblings.empty());

  c.put(1, "row", "update"); // B updates what it saw; B -> C delivers it first
  CHECK(c.value(0, "row") == "update");
  CHECK(c.get(2, "row").siblings.empty()); // C must not show the update before the insert
  CHECK(c.status(2).stats.buffered == 1);

  caf::anon_send(a_to_c, release_atom::value);
  c.run();
  CHECK(c.value(2, "row") == "update");
  auto s = c.status(2);
  CHECK(s.stats.buffered == 0);
  CHECK(s.stats.conflicts == 0); // the insert came first: the update replaced it
  CHECK(s.applied.total() == 2);
  CHECK(topology::converged(c.statuses()));
}

TEST_CASE("custom graph causal delivery: concurrent events on different paths do not wait") {
  // a -> p -> d and b -> q -> d: a's write reaches d through p, b's through q.
  auto g = topology::parse_edge_list("a -> p\np -> d\nb -> q\nq -> d\nd -> a, b\n");
  REQUIRE(g);
  sim_cluster c;
  channel_actor p_to_d;
  auto spec = spec_for(*g, "lww");
  auto p = static_cast<topology::node_index>(g->find("p"));
  auto d = static_cast<topology::node_index>(g->find("d"));
  spec.make_sink = [&](topology::node_index from, topology::node_index to,
                       actors::leader_actor dest) -> actors::sink_actor {
    if (from == p && to == d) {
      p_to_d = spawn_channel(*c.sys, dest);
      return p_to_d;
    }
    return dest;
  };
  c.start(spec);
  caf::anon_send(p_to_d, hold_atom::value);
  c.run();
  auto a = static_cast<size_t>(g->find("a"));
  auto b = static_cast<size_t>(g->find("b"));
  c.queue_put(a, "from-a", "1");
  c.queue_put(b, "from-b", "2");
  c.run();
  c.take<messages::dot>();
  c.take<messages::dot>();
  CHECK(c.value(d, "from-b") == "2"); // b's event did not wait for a's
  CHECK(c.get(d, "from-a").siblings.empty());
  CHECK(c.status(d).stats.buffered == 0);
  caf::anon_send(p_to_d, release_atom::value);
  c.run();
  CHECK(c.value(d, "from-a") == "1");
  CHECK(topology::converged(c.statuses()));
}

TEST_CASE("mesh N=3 LWW: equal HLCs pick the same winner everywhere, by the full dot") {
  sim_cluster c;
  *c.clock_ticks = false; // every node reads the same millisecond
  c.start(topology::make_mesh(topology::default_names(3)), "lww");
  for (size_t node = 0; node < 3; ++node)
    c.queue_put(node, "x", "from" + std::to_string(node));
  c.run();
  for (int i = 0; i < 3; ++i)
    c.take<messages::dot>();
  CHECK(topology::converged(c.statuses()));
  // All three versions carry the same HLC, so the dot decides: the highest node index.
  for (size_t node = 0; node < 3; ++node) {
    auto g = c.get(node, "x");
    REQUIRE(g.siblings.size() == 1);
    CHECK(g.siblings[0].value == "from2");
    CHECK(g.siblings[0].time == messages::hlc::make(*c.wall_ms, 0));
    CHECK(c.status(node).stats.conflicts >= 1);
  }
}

TEST_CASE("mesh N=3 LWW: the latest HLC wins everywhere, whatever the arrival order") {
  sim_cluster c;
  c.start(topology::make_mesh(topology::default_names(3)), "lww");
  // Queued in this order, node 0 stamps last, so its HLC is the highest.
  for (size_t node : {2, 1, 0})
    c.queue_put(node, "x", "from" + std::to_string(node));
  c.run();
  for (int i = 0; i < 3; ++i)
    c.take<messages::dot>();
  CHECK(topology::converged(c.statuses()));
  for (size_t node = 0; node < 3; ++node)
    CHECK(c.value(node, "x") == "from0");
}

TEST_CASE("mesh N=3 multi-value: siblings everywhere, a write with their context replaces them") {
  sim_cluster c;
  c.start(topology::make_mesh(topology::default_names(3)), "multi");
  c.queue_put(0, "cart", "apples");
  c.queue_put(1, "cart", "pears");
  c.run();
  c.take<messages::dot>();
  c.take<messages::dot>();
  for (size_t node = 0; node < 3; ++node) {
    auto g = c.get(node, "cart");
    REQUIRE(g.siblings.size() == 2);
    CHECK(g.siblings[0].value != g.siblings[1].value);
    CHECK(g.context.dots.size() == 2);
  }
  auto seen = c.get(2, "cart");
  c.put(2, "cart", "apples+pears", seen.context);
  for (size_t node = 0; node < 3; ++node)
    CHECK(c.value(node, "cart") == "apples+pears");
  CHECK(topology::converged(c.statuses()));
}

TEST_CASE("star N=3 multi-value: a stale context keeps the unseen version as a sibling") {
  sim_cluster c;
  c.start(topology::make_star(topology::default_names(3), 0), "multi");
  c.put(1, "k", "first");
  auto stale = c.get(2, "k");            // sees "first"
  c.put(1, "k", "second");               // replaces "first"
  c.put(2, "k", "third", stale.context); // replaces only "first": "second" stays
  for (size_t node = 0; node < 3; ++node) {
    auto g = c.get(node, "k");
    REQUIRE(g.siblings.size() == 2);
    CHECK(((g.siblings[0].value == "second" && g.siblings[1].value == "third") ||
           (g.siblings[0].value == "third" && g.siblings[1].value == "second")));
  }
}

TEST_CASE("ring N=3 custom resolver (max): the largest number wins everywhere, not the latest") {
  sim_cluster c;
  c.start(topology::make_ring(topology::default_names(3)), "max");
  c.queue_put(1, "score", "42");
  c.queue_put(0, "score", "5");
  c.queue_put(2, "score", "7"); // the latest HLC: last-writer-wins would keep "7"
  c.run();
  for (int i = 0; i < 3; ++i)
    c.take<messages::dot>();
  for (size_t node = 0; node < 3; ++node)
    CHECK(c.value(node, "score") == "42");
  CHECK(topology::converged(c.statuses()));
}

TEST_CASE("max resolver: a total order, NaN and infinities ranked, every order of the inputs "
          "keeps the same version") {
  sim_cluster c;
  auto r = resolvers::builtin_resolver("max")(*c.sys);
  std::vector<std::string> values{"nan", "NaN", "-inf", "3",   "1e99999", "abc",
                                  "-0",  "0",   "",     "inf", "-nan",    "2.5"};
  std::vector<messages::version> versions;
  for (size_t i = 0; i < values.size(); ++i)
    versions.push_back(messages::version{messages::dot{messages::source{uint32_t(i), 1}, 1},
                                         messages::hlc{1000 + (i * 7919) % 13}, false, values[i]});
  std::set<messages::dot> winners;
  std::mt19937 rng(5);
  for (int round = 0; round < 50; ++round) {
    std::shuffle(versions.begin(), versions.end(), rng);
    (*c.self)->send(r, resolvers::resolve_atom::value, std::string("k"), versions);
    c.run();
    auto keep = c.take<resolvers::resolution>().keep;
    REQUIRE(keep.size() == 1);
    winners.insert(keep[0]);
  }
  REQUIRE(winners.size() == 1);
  auto w = std::find_if(versions.begin(), versions.end(),
                        [&](const messages::version& v) { return v.id == *winners.begin(); });
  CHECK(w->value == "inf");
  caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
}

TEST_CASE("mesh N=3 bad input: bad frames get error values and the leader keeps serving") {
  sim_cluster c;
  auto spec = spec_for(topology::make_mesh(topology::default_names(3)), "lww");
  spec.limits.max_frame_bytes = 4096;
  c.start(spec);
  auto send_frame = [&](messages::frame f) -> caf::error {
    (*c.self)->send(c.h.leaders[1], actors::batch_atom::value, std::move(f));
    c.run();
    caf::error out;
    (*c.self)->receive([&](messages::frame&) { out = caf::error{}; },
                       [&](caf::error& err) { out = std::move(err); },
                       caf::after(std::chrono::seconds(0)) >> [&] { FAIL("no reply"); });
    return out;
  };
  messages::frame garbage;
  garbage.bytes.assign(256, 0x5A);
  auto err = send_frame(garbage);
  CHECK(actors::is(err, errc::malformed_frame));

  messages::event_batch b;
  messages::event e;
  e.id = messages::dot{{0, c.h.incarnations[0]}, 1};
  e.key = "k";
  e.value = "v";
  b.events.push_back(e);
  auto truncated = messages::encode(b);
  truncated.bytes.resize(truncated.bytes.size() / 2 / 8 * 8);
  err = send_frame(truncated);
  CHECK(actors::is(err, errc::malformed_frame));

  messages::frame oversized;
  oversized.bytes.assign(8192, 0);
  err = send_frame(oversized);
  CHECK(actors::is(err, errc::oversized_frame));
  CHECK(c.sys->render(err).find("exceeds the limit") != std::string::npos);

  // Still serving: local writes, reads and replication all work.
  c.put(1, "after", "ok");
  c.put(0, "other", "fine");
  for (size_t node = 0; node < 3; ++node) {
    CHECK(c.value(node, "after") == "ok");
    CHECK(c.value(node, "other") == "fine");
  }
  CHECK(topology::converged(c.statuses()));
}

namespace {

// Node 1's first resolver fails its first request ("throw": it throws, and dies; "silent":
// it never answers, so the request times out); every other resolver is last-writer-wins.
resolvers::resolver_factory one_flaky_resolver(std::string mode) {
  auto spawned = std::make_shared<int>(0);
  return [spawned, mode](caf::actor_system& sys) -> resolvers::resolver_actor {
    if ((*spawned)++ != 1)
      return resolvers::builtin_resolver("lww")(sys);
    auto calls = std::make_shared<int>(0);
    return sys.spawn([calls, mode](resolvers::resolver_actor::pointer self)
                       -> resolvers::resolver_actor::behavior_type {
      return {[=](resolvers::resolve_atom, const std::string&,
                  const std::vector<messages::version>& vs) -> caf::result<resolvers::resolution> {
        if ((*calls)++ == 0) {
          if (mode == "throw")
            throw std::runtime_error("this resolver fails once");
          return self->make_response_promise<resolvers::resolution>(); // never delivered
        }
        auto best = std::max_element(vs.begin(), vs.end(), messages::lww_before);
        return resolvers::resolution::select({best->id});
      }};
    });
  };
}

void flaky_resolver_converges(const std::string& mode) {
  sim_cluster c;
  topology::cluster_spec spec;
  spec.topology = topology::make_mesh(topology::default_names(3));
  spec.make_resolver = one_flaky_resolver(mode);
  spec.resolver_timeout = std::chrono::milliseconds(2000);
  spec.tick_interval = std::chrono::milliseconds(100);
  c.start(std::move(spec));
  c.queue_put(0, "k", "from-0");
  c.queue_put(2, "k", "from-2");
  c.run();
  c.drain_write_acks();
  for (int i = 0; i < 50; ++i)
    c.advance(std::chrono::milliseconds(100));
  auto all = c.statuses();
  for (auto& s : all)
    INFO("node " << s.node << " digest " << s.digest << " unresolved " << s.stats.unresolved);
  CHECK(all[1].stats.unresolved >= 1); // it did fail at node 1
  CHECK(topology::converged(all));     // and was asked again: node 1 agrees with the others
  for (size_t n = 0; n < 3; ++n)
    CHECK(c.get(n, "k").siblings.size() == 1);
}

} // namespace

TEST_CASE("resolver supervision: a resolver that throws at one node is replaced, its conflict "
          "asked again, and that node converges with the others") {
  flaky_resolver_converges("throw");
}

TEST_CASE("resolver supervision: a resolution that times out at one node is asked again, and "
          "that node converges with the others") {
  flaky_resolver_converges("silent");
}
