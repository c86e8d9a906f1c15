// The replication core under a seeded simulated network: drop, duplicate, delay/reorder,
// and partitions that heal, on CAF's deterministic test_coordinator. For every topology,
// at least 200 seeds; an invariant checker runs after every handled message; once faults
// stop, every node converges with an empty causal buffer. A failing seed is printed with
// the command that replays it exactly (MLR_SIM_SEED=<seed>). MLR_SIM_SEEDS and
// MLR_SIM_FIRST run other seeds (scripts/simulate.sh runs 10,000); MLR_SIM_KEEP_GOING=1
// prints every failing seed instead of stopping at the first, and MLR_SIM_TRACE=1 prints
// the restarts.

#include "harness.hpp"

#include "invariant_checker.hpp"
#include "sim_channel.hpp"
#include "sim_scenarios.hpp"
#include <caf/typed_event_based_actor.hpp>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <set>
#include <sstream>

using namespace mlr;
using namespace mlr::testing;
using namespace std::chrono_literals;
using topology::graph;

namespace {

// The spec the fault tests share: short timeouts so that simulated runs stay short, small
// batches, windows and buffers so that the bounds are exercised.
topology::cluster_spec fault_spec(graph g, const std::string& resolver,
                                  std::shared_ptr<invariant_checker> checker) {
  topology::cluster_spec spec;
  spec.topology = std::move(g);
  spec.make_resolver = resolvers::builtin_resolver(resolver);
  spec.observer = std::move(checker);
  spec.link.ack_timeout = 200ms;
  spec.link.max_batch_events = 8;
  spec.link.window = 2;
  spec.tick_interval = 50ms;
  spec.pull_grace = 150ms;
  spec.pull_timeout = 200ms;
  spec.max_buffered = 4;
  return spec;
}

struct run_result {
  std::string failure; // empty: passed
  size_t refused = 0;  // writes refused (a context whose dots never came in time)
  uint64_t trace = 0;
  size_t writes = 0;
  uint64_t pulls = 0;
  uint64_t overflows = 0;
  uint64_t relayed = 0;
  uint64_t crashes = 0;
  uint64_t restarts = 0;           ///< nodes restarted from what their store committed
  uint64_t empty_restarts = 0;     ///< nodes restarted with nothing (their disk lost)
  std::set<messages::dot> acked;   ///< writes acknowledged to the client
  std::set<messages::source> lost; ///< incarnations whose disk was lost
};

// Takes every answer waiting for the test (write acknowledgements, refusals); returns how
// many writes were refused.
size_t drain_answers(sim_cluster& c, std::set<messages::dot>& acked) {
  size_t refused = 0;
  for (bool more = true; more;)
    (*c.self)->receive([&](messages::dot& d) { acked.insert(d); }, [&](caf::error&) { ++refused; },
                       caf::after(std::chrono::seconds(0)) >> [&] { more = false; });
  return refused;
}

// Node 1's resolver fails its first few requests, alternately by throwing (it dies and is
// replaced) and by never answering (the request times out); the others are `name`.
resolvers::resolver_factory failing_at_node_1(const std::string& name) {
  auto spawned = std::make_shared<int>(0);
  return [spawned, name](caf::actor_system& sys) -> resolvers::resolver_actor {
    if ((*spawned)++ != 1)
      return resolvers::builtin_resolver(name)(sys);
    auto calls = std::make_shared<int>(0);
    auto inner = resolvers::builtin_resolver(name)(sys);
    return sys.spawn([calls, inner](resolvers::resolver_actor::pointer self)
                       -> resolvers::resolver_actor::behavior_type {
      return {[=](resolvers::resolve_atom a, const std::string& k,
                  const std::vector<messages::version>& vs) -> caf::result<resolvers::resolution> {
        auto n = (*calls)++;
        if (n < 4 && n % 2 == 0)
          throw std::runtime_error("a resolver that fails at one node");
        if (n < 4)
          return self->make_response_promise<resolvers::resolution>(); // never answered
        return self->delegate(inner, a, k, vs);
      }};
    });
  };
}

// The acknowledged writes some node lacks, leaving out those of incarnations whose disk
// was lost (what they had not shipped yet is gone with it).
std::vector<messages::dot> missing_acked(const std::vector<actors::node_status>& all,
                                         const run_result& r) {
  std::vector<messages::dot> out;
  for (auto& d : r.acked) {
    if (r.lost.count(d.origin))
      continue;
    for (auto& s : all)
      if (!s.applied.covers(d) && !s.retired.covers(d)) {
        out.push_back(d);
        break;
      }
  }
  return out;
}

// `crashes`: nodes also go down (cut off both ways and taking no writes) for a while and
// come back, so links take detours around them, mixed with the message faults.
// `mixed`: every node's clock is skewed (up to 5 s either way), writes include deletes and
// writes with a causal context read at another node, and node 1's resolver fails; nodes
// run on stores that survive them (--sync always), and a crashed node comes back by a
// restart from what it committed, by an empty restart (its disk lost: a new incarnation),
// or as it was (only its network was down). Then every write acknowledged by an
// incarnation that kept its disk must be everywhere.
run_result run_seed(const std::string& kind, uint64_t seed, bool crashes = false,
                    bool mixed = false) {
  run_result out;
  std::mt19937_64 rng(seed);
  sim_cluster c;
  auto checker = std::make_shared<invariant_checker>();
  sim_network net(*c.sys, seed);
  size_t n = 3 + seed % 3;
  auto spec = fault_spec(make_graph(kind, n), seed % 2 ? "multi" : "lww", checker);
  spec.seed = seed;
  if (crashes && kind == "star")
    spec.standby_hubs = {1};
  if (mixed) {
    for (size_t i = 0; i < n; ++i)
      spec.clock_skew_ms.push_back(static_cast<int64_t>(rng() % 10001) - 5000);
    spec.make_resolver = failing_at_node_1(seed % 2 ? "multi" : "lww");
    spec.resolver_timeout = std::chrono::milliseconds(300);
  }
  spec.make_sink = [&](topology::node_index from, topology::node_index to,
                       actors::leader_actor dest) { return net.sink(from, to, dest); };
  if (mixed)
    c.keep_stores(spec);
  c.start(spec);

  start_faults(net, seed);
  c.run();

  auto check = [&](const char* phase) {
    if (!checker->violations().empty() && out.failure.empty())
      out.failure =
        std::string("invariant broken ") + phase + ":" + describe(checker->violations());
    return out.failure.empty();
  };

  std::set<topology::node_index> down;
  auto cut_node = [&](topology::node_index x) {
    for (auto& [pair, ch] : net.channels())
      if (pair.first == x || pair.second == x)
        caf::anon_send(ch, cut_atom::value);
  };
  for (int round = 0; round < 40; ++round) {
    if (crashes && rng() % 6 == 0 && down.size() + 1 < n) {
      auto x = static_cast<topology::node_index>(rng() % n);
      if (down.insert(x).second)
        ++out.crashes;
    } else if (crashes && !down.empty() && rng() % 5 == 0) {
      auto back = std::next(down.begin(), static_cast<long>(rng() % down.size()));
      auto x = *back;
      down.erase(back);
      if (auto how = mixed ? rng() % 3 : 0; how != 0) {
        bool empty = how == 2;
        if (empty)
          out.lost.insert(messages::source{x, c.h.incarnations[x]});
        ++(empty ? out.empty_restarts : out.restarts);
        if (std::getenv("MLR_SIM_TRACE"))
          std::fprintf(stderr, "round %d: node %u restarts%s (was %016llx)\n", round, x,
                       empty ? " empty" : "", (unsigned long long)c.h.incarnations[x]);
        c.restart(x, empty, checker.get());
      }
      for (auto& [pair, ch] : net.channels())
        caf::anon_send(ch, heal_atom::value);
    }
    for (auto x : down)
      cut_node(x);
    for (auto k = rng() % 3; k > 0; --k) {
      auto node = rng() % n;
      if (down.count(static_cast<topology::node_index>(node)))
        continue; // a crashed node takes no writes
      auto key = "k" + std::to_string(rng() % 5);
      auto value = "s" + std::to_string(seed) + "r" + std::to_string(round);
      auto what = mixed ? rng() % 4 : 0;
      if (what == 1) {
        (*c.self)->send(c.h.leaders.at(node), actors::del_atom::value, key);
      } else if (what == 2) {
        // A context read at another node: the write waits for what it names.
        auto other = (node + 1 + rng() % (n - 1)) % n;
        (*c.self)->send(c.h.leaders.at(other), actors::get_atom::value, key);
        c.run();
        actors::get_result g;
        (*c.self)->receive([&](actors::get_result& r) { g = std::move(r); },
                           caf::after(std::chrono::seconds(0)) >> [] {});
        (*c.self)->send(c.h.leaders.at(node), actors::put_atom::value, key, value, g.context);
      } else {
        c.queue_put(node, key, value);
      }
      ++out.writes;
    }
    if (rng() % 10 == 0) { // cut one node off, both directions
      auto x = static_cast<topology::node_index>(rng() % n);
      for (auto& [pair, ch] : net.channels())
        if (pair.first == x || pair.second == x)
          caf::anon_send(ch, cut_atom::value);
    }
    if (rng() % 8 == 0)
      for (auto& [pair, ch] : net.channels())
        caf::anon_send(ch, heal_atom::value);
    for (auto x : down)
      cut_node(x); // stays down through a heal of the partitions
    c.advance(std::chrono::milliseconds(1 + rng() % (crashes ? 200 : 60)));
    if (!check("while faults were on"))
      return out;
    out.refused += drain_answers(c, out.acked);
  }

  // Faults stop: heal everything and let the cluster settle.
  for (auto& [pair, ch] : net.channels()) {
    caf::anon_send(ch, heal_atom::value);
    caf::anon_send(ch, faults_atom::value, fault_config{});
  }
  bool settled = false;
  std::vector<actors::node_status> all;
  for (int i = 0; i < 400 && !settled; ++i) {
    c.advance(50ms);
    if (!check("after faults stopped"))
      return out;
    out.refused += drain_answers(c, out.acked);
    all = c.statuses();
    settled =
      topology::converged(all) && (mixed ? missing_acked(all, out).empty()
                                         : all[0].applied.total() + out.refused == out.writes);
  }
  if (!settled) {
    std::ostringstream msg;
    msg << "did not converge within 20 s of simulated time after faults stopped;";
    for (auto& s : all) {
      msg << "\n  node " << s.node << ": applied " << s.applied.total() << " of " << out.writes
          << ", buffered " << s.stats.buffered << ", digest " << s.digest << ", vv "
          << messages::to_string(s.applied) << ", retired " << messages::to_string(s.retired)
          << ", pulls " << s.stats.pulls_sent << " (" << s.stats.pull_failures
          << " failed, in flight " << s.pull_in_flight << "), transfers in "
          << s.stats.transfers_received << (s.transfer.active ? " (one active)" : "") << ", log "
          << s.log_begin << ".." << s.log_end;
      for (int k = 0; k < 5; ++k) {
        msg << "\n    k" << k << ":";
        auto g = c.get(s.node, "k" + std::to_string(k));
        for (auto& v : g.siblings)
          msg << " " << v.value << "@" << messages::to_string(v.id);
        if (g.context.dots.size() > g.siblings.size()) // deletes held too
          for (auto& d : g.context.dots)
            msg << " [" << messages::to_string(d) << "]";
      }
    }
    for (auto& d : missing_acked(all, out))
      msg << "\n  acknowledged and missing: " << messages::to_string(d);
    out.failure = msg.str();
    return out;
  }
  for (auto& s : all) {
    out.relayed += s.stats.relayed;
    out.pulls += s.stats.pulls_sent;
    out.overflows += s.stats.buffer_overflows;
    if (s.stats.buffered != 0 || s.stats.buffered_peak > 4)
      out.failure = "causal buffer not empty or over its limit at node " + std::to_string(s.node);
  }
  out.trace = checker->trace();
  return out;
}

uint64_t env_or(const char* name, uint64_t fallback) {
  auto* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

void run_seeds(const std::string& kind, bool crashes = false, bool mixed = false) {
  uint64_t first = env_or("MLR_SIM_SEED", env_or("MLR_SIM_FIRST", 1));
  uint64_t count = std::getenv("MLR_SIM_SEED") ? 1 : env_or("MLR_SIM_SEEDS", 200);
  uint64_t pulls = 0;
  uint64_t overflows = 0;
  uint64_t relayed = 0;
  uint64_t down = 0;
  uint64_t restarts = 0;
  uint64_t empty_restarts = 0;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    auto r = run_seed(kind, seed, crashes, mixed);
    if (!r.failure.empty() && std::getenv("MLR_SIM_KEEP_GOING")) {
      std::fprintf(stderr, "seed %llu: %s\n", (unsigned long long)seed, r.failure.c_str());
      continue;
    }
    if (!r.failure.empty())
      FAIL(kind << " seed " << seed << " failed: " << r.failure
                << "\nreplay exactly: MLR_SIM_SEED=" << seed << " tests/test_simulation '" << kind
                << (mixed     ? " mixed"
                    : crashes ? " with crashes"
                              : "")
                << "*'");
    pulls += r.pulls;
    overflows += r.overflows;
    relayed += r.relayed;
    down += r.crashes;
    restarts += r.restarts;
    empty_restarts += r.empty_restarts;
  }
  // The faults must have made the recovery paths work, or the test proves little.
  if (count >= 50) {
    CHECK(pulls > 0);
    CHECK(overflows > 0);
    if (crashes) {
      CHECK(down > count);
      if (kind == "ring" || kind == "star")
        CHECK(relayed > 0); // links took detours around the crashed nodes
    }
    if (mixed) {
      CHECK(restarts > count / 4);
      CHECK(empty_restarts > count / 4);
    }
  }
  WARN(kind << (crashes ? " with crashes" : "") << ": " << count << " seeds passed; " << down
            << " nodes went down (" << restarts << " restarted from their store, " << empty_restarts
            << " empty), pulls " << pulls << ", buffer overflows " << overflows
            << ", events relayed on detours " << relayed);
}

} // namespace

TEST_CASE("ring under drop/duplicate/reorder/partition: invariants hold and all converge") {
  run_seeds("ring");
}
TEST_CASE("star under drop/duplicate/reorder/partition: invariants hold and all converge") {
  run_seeds("star");
}
TEST_CASE("mesh under drop/duplicate/reorder/partition: invariants hold and all converge") {
  run_seeds("mesh");
}
TEST_CASE("custom two-path graph under drop/duplicate/reorder/partition: invariants hold, "
          "all converge") {
  run_seeds("custom");
}

TEST_CASE("ring with crashes, drop/duplicate/reorder/partition: nothing lost, nothing applied "
          "twice, all converge") {
  run_seeds("ring", true);
}
TEST_CASE("star with crashes (standby hub n1), drop/duplicate/reorder/partition: nothing lost, "
          "nothing applied twice, all converge") {
  run_seeds("star", true);
}
TEST_CASE("mesh with crashes, drop/duplicate/reorder/partition: nothing lost, nothing applied "
          "twice, all converge") {
  run_seeds("mesh", true);
}
TEST_CASE("custom two-path graph with crashes, drop/duplicate/reorder/partition: nothing lost, "
          "nothing applied twice, all converge") {
  run_seeds("custom", true);
}

TEST_CASE("ring mixed: skewed clocks, deletes, contexts read at other nodes, a resolver failing "
          "at one node, with crashes and message faults: invariants hold, all converge") {
  run_seeds("ring", true, true);
}
TEST_CASE("star mixed: skewed clocks, deletes, contexts read at other nodes, a resolver failing "
          "at one node, with crashes and message faults: invariants hold, all converge") {
  run_seeds("star", true, true);
}
TEST_CASE("mesh mixed: skewed clocks, deletes, contexts read at other nodes, a resolver failing "
          "at one node, with crashes and message faults: invariants hold, all converge") {
  run_seeds("mesh", true, true);
}
TEST_CASE("custom mixed: skewed clocks, deletes, contexts read at other nodes, a resolver "
          "failing at one node, with crashes and message faults: invariants hold, all converge") {
  run_seeds("custom", true, true);
}

TEST_CASE("simulated network: a seed replays exactly") {
  for (uint64_t seed : {3, 17}) {
    auto a = run_seed("mesh", seed);
    auto b = run_seed("mesh", seed);
    REQUIRE(a.failure.empty());
    CHECK(a.trace == b.trace);
    CHECK(a.writes == b.writes);
    CHECK(a.pulls == b.pulls);
  }
  CHECK(run_seed("mesh", 3).trace != run_seed("mesh", 4).trace);
}
