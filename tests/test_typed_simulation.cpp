// Counters, sets and maps (DESIGN.md, "Convergent data types") in the CAF simulation with
// faults: leaders on CAF's deterministic test coordinator, every message through a seeded
// network that drops, duplicates, delays and reorders, partitions that heal, nodes that go
// down and come back by a restart from what their store committed. Random concurrent
// INCR, SADD/SREM and HSET/HDEL at every node; once faults stop every replica must hold
// the same state and the value a sequential specification computes from the causal
// history (every event any node applied, with the versions its context replaced):
// register = its one live value, or the tags resolver's merge (the union of the tags) of
// the live ones; counter = the sum of the increments; set = add-wins (a member is there iff one of
// its adds was replaced by no later event); map = per field, the latest of the hsets no later event
// replaced. MLR_SIM_SEEDS and MLR_SIM_FIRST run other seeds; MLR_SIM_SEED one.

#include "core/typed.hpp"
#include "harness.hpp"
#include "history_checker.hpp"
#include "invariant_checker.hpp"
#include "sim_scenarios.hpp"

#include <caf/event_based_actor.hpp>

#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <sstream>

using namespace mlr;
using namespace mlr::testing;
using namespace std::chrono_literals;
using messages::op_kind;

namespace {

using acked_atom = caf::atom_constant<caf::atom("tacked")>;
using refused_atom = caf::atom_constant<caf::atom("trefused")>;

struct expected {
  std::string labels;  // the register: its one live value, or the union of their tags
  bool merged = false; // several live values: the resolver merged them
  int64_t counter = 0;
  std::vector<std::string> members;
  std::vector<std::pair<std::string, std::string>> fields;
};

// Whether a write `later` replaces the version `earlier` made, once it has seen it: a put
// replaces a register's versions; an add or remove of a member its tags; a field's write or
// delete that field's versions.
bool in_scope(const messages::event& later, const messages::event& earlier) {
  if (later.key != earlier.key)
    return false;
  auto reg = [](op_kind o) { return o == op_kind::put || o == op_kind::del; };
  auto member = [](op_kind o) { return o == op_kind::sadd || o == op_kind::srem; };
  auto field = [](op_kind o) { return o == op_kind::hset || o == op_kind::hdel; };
  if (reg(later.op))
    return earlier.op == op_kind::put;
  if (member(later.op))
    return earlier.op == op_kind::sadd && earlier.field == later.field;
  if (field(later.op))
    return earlier.op == op_kind::hset && earlier.field == later.field;
  return false;
}

// The sequential specification over the causal history: a version is replaced when a
// later write in scope had seen it (by the origins' applied sets, not the events' contexts).
expected specification(const std::map<messages::dot, messages::event>& events,
                       const std::map<messages::dot, std::set<messages::dot>>& pasts) {
  expected out;
  std::set<messages::dot> replaced;
  for (auto& [d, e] : events) {
    auto p = pasts.find(d);
    if (p == pasts.end())
      continue; // (every event is applied at its origin first)
    for (auto& seen : p->second)
      if (auto s = events.find(seen); s != events.end() && in_scope(e, s->second))
        replaced.insert(seen);
  }
  // A counter's share per origin incarnation: the running total of its latest increment.
  std::map<messages::source, std::pair<uint64_t, uint64_t>> totals; // counter, total
  std::set<std::string> members;
  std::map<std::string, const messages::event*> latest;
  std::vector<std::string> labels;
  for (auto& [d, e] : events) {
    if (e.key == "cnt" && e.op == op_kind::incr)
      totals[d.origin] = std::max(totals[d.origin], std::make_pair(d.counter, e.total));
    if (replaced.count(d))
      continue;
    if (e.key == "cart" && e.op == op_kind::sadd)
      members.insert(e.field);
    if (e.key == "labels" && e.op == op_kind::put)
      labels.push_back(e.value);
    if (e.key == "ev" && e.op == op_kind::hset) {
      auto& best = latest[e.field];
      if (!best || best->time < e.time || (best->time == e.time && best->id < e.id))
        best = &e;
    }
  }
  for (auto& [origin, latest] : totals)
    out.counter += static_cast<int64_t>(latest.second);
  out.members.assign(members.begin(), members.end());
  if (labels.empty()) {
    out.labels = "(none)";
  } else if (labels.size() == 1) {
    out.labels = labels.front();
  } else {
    out.merged = labels.size() > 1;
    std::set<std::string> tags;
    for (auto& l : labels)
      for (size_t b = 0, e; b <= l.size(); b = e + 1)
        if ((e = std::min(l.find(',', b), l.size())) > b)
          tags.insert(l.substr(b, e - b));
    for (auto& t : tags)
      out.labels += (out.labels.empty() ? "" : ",") + t;
  }
  for (auto& [f, e] : latest)
    out.fields.emplace_back(f, e->value);
  return out;
}

std::string show(const std::vector<std::string>& xs) {
  std::string out;
  for (auto& x : xs)
    out += (out.empty() ? "" : ",") + x;
  return "{" + out + "}";
}

std::string show(const std::vector<std::pair<std::string, std::string>>& fs) {
  std::string out;
  for (auto& [f, v] : fs)
    out += (out.empty() ? "" : ",") + f + "=" + v;
  return "{" + out + "}";
}

struct typed_run {
  std::string failure;
  int64_t acked_sum = 0; // what the acknowledged increments add up to
  uint64_t writes = 0, acked = 0, refused = 0, restarts = 0, downs = 0;
  bool merged = false;
  std::string first_refusal;
};

typed_run run_typed_seed(const std::string& kind, uint64_t seed) {
  typed_run out;
  std::mt19937_64 rng(seed);
  sim_cluster c;
  auto checker = std::make_shared<history_checker>();
  sim_network net(*c.sys, seed);
  size_t n = 3 + seed % 3;
  auto spec = sim_spec(make_graph(kind, n), net, checker, 150ms);
  spec.seed = seed;
  spec.make_resolver = resolvers::builtin_resolver("tags"); // registers merge their tags
  spec.link.max_batch_events = 8;
  spec.link.window = 2;
  spec.max_buffered = 4;
  if (kind == "star")
    spec.standby_hubs = {1};
  c.keep_stores(spec);
  c.start(spec);
  start_faults(net, seed);
  c.run();

  // Each write is asked by a small actor that reports its outcome with its delta, so that
  // the sum of what was acknowledged is known (a refused write was not applied: a node
  // restarted before it committed anything waits to catch up, and says so).
  auto probe = caf::actor_cast<caf::actor>(*c.self);
  auto send = [&](size_t node, core::write_request w) {
    auto leader = c.h.leaders.at(node);
    c.sys->spawn([leader, w, probe](caf::event_based_actor* a) {
      auto refused = [=](caf::error& e) {
        a->send(probe, refused_atom::value, a->system().render(e));
      };
      if (w.op == op_kind::put)
        a->request(leader, caf::infinite, actors::put_atom::value, w.key, w.value)
          .then([=](messages::dot&) { a->send(probe, acked_atom::value, int64_t{0}); }, refused);
      else
        a->request(leader, caf::infinite, actors::typed_atom::value,
                   std::vector<core::write_request>{w})
          .then([=](std::vector<int64_t>&) { a->send(probe, acked_atom::value, w.delta); },
                refused);
    });
    ++out.writes;
  };
  auto drain = [&] {
    for (bool more = true; more;)
      (*c.self)->receive(
        [&](acked_atom, int64_t delta) {
          ++out.acked;
          out.acked_sum += delta;
        },
        [&](refused_atom, std::string& why) {
          if (out.refused++ == 0)
            out.first_refusal = why;
        },
        caf::after(std::chrono::seconds(0)) >> [&] { more = false; });
  };
  std::set<size_t> down;
  for (int round = 0; round < 40; ++round) {
    if (rng() % 7 == 0 && down.size() + 1 < n) {
      auto x = rng() % n;
      if (down.insert(x).second)
        ++out.downs;
    } else if (!down.empty() && rng() % 5 == 0) {
      auto back = std::next(down.begin(), static_cast<long>(rng() % down.size()));
      auto x = *back;
      down.erase(back);
      if (rng() % 2) { // restarted from what it committed (else only its network was down)
        // Every write answered first: a write the crash interrupts has an unknown outcome,
        // and the sum of the acknowledged increments would not be the specification.
        for (int wait = 0; wait < 120 && out.acked + out.refused < out.writes; ++wait) {
          c.advance(50ms);
          drain();
        }
        c.restart(x, false, checker.get());
        ++out.restarts;
      }
      for (auto& [pair, ch] : net.channels())
        caf::anon_send(ch, heal_atom::value);
    }
    for (auto x : down)
      set_down(net, n, x, true);
    for (auto k = rng() % 3; k > 0; --k) {
      auto node = rng() % n;
      if (down.count(node))
        continue;
      core::write_request w;
      switch (rng() % 6) {
      case 5: // a register: concurrent values merge into the union of their tags
        w.key = "labels", w.op = op_kind::put;
        w.value = "t" + std::to_string(rng() % 5) + ",t" + std::to_string(rng() % 5);
        break;
      case 0:
        w.key = "cnt", w.op = op_kind::incr, w.delta = static_cast<int64_t>(rng() % 9) - 3;
        break;
      case 1:
        w.key = "cart", w.op = op_kind::sadd, w.field = "m" + std::to_string(rng() % 4);
        break;
      case 2:
        w.key = "cart", w.op = op_kind::srem, w.field = "m" + std::to_string(rng() % 4);
        break;
      case 3:
        w.key = "ev", w.op = op_kind::hset, w.field = "f" + std::to_string(rng() % 3);
        w.value =
          "s" + std::to_string(seed) + "r" + std::to_string(round) + "n" + std::to_string(node);
        break;
      default:
        w.key = "ev", w.op = op_kind::hdel, w.field = "f" + std::to_string(rng() % 3);
      }
      send(node, std::move(w));
    }
    if (rng() % 10 == 0)
      set_down(net, n, rng() % n, true); // a partition: one node cut off, both ways
    if (rng() % 8 == 0)
      for (auto& [pair, ch] : net.channels())
        caf::anon_send(ch, heal_atom::value);
    for (auto x : down)
      set_down(net, n, x, true);
    c.advance(std::chrono::milliseconds(1 + rng() % 200));
    drain();
    if (!checker->violations().empty())
      return out.failure = "invariant broken: " + describe(checker->violations()), out;
  }
  for (auto& [pair, ch] : net.channels()) {
    caf::anon_send(ch, heal_atom::value);
    caf::anon_send(ch, faults_atom::value, fault_config{});
  }
  bool settled = false;
  for (int i = 0; i < 400 && !settled; ++i) {
    c.advance(50ms);
    drain();
    settled = out.acked + out.refused == out.writes && topology::converged(c.statuses());
  }
  if (!checker->violations().empty())
    return out.failure = "invariant broken: " + describe(checker->violations()), out;
  if (!settled)
    return out.failure = "did not converge within 20 s of simulated time after faults stopped (" +
                         std::to_string(out.acked) + " of " + std::to_string(out.writes) +
                         " writes answered)",
           out;
  // Typed writes name no context to wait for: only a node waiting to catch up refuses.
  if (out.refused != 0 && out.first_refusal.find("has not caught up") == std::string::npos)
    return out.failure = std::to_string(out.refused) +
                         " typed writes refused, the first with: " + out.first_refusal,
           out;
  auto want = specification(checker->events(), checker->pasts());
  out.merged = want.merged;
  if (want.counter != out.acked_sum)
    return out.failure = "the history's increments sum to " + std::to_string(want.counter) +
                         ", the acknowledged ones to " + std::to_string(out.acked_sum),
           out;
  for (size_t node = 0; node < n; ++node) {
    namespace typed = core::typed;
    auto cnt = c.get(node, "cnt").siblings;
    auto cart = c.get(node, "cart").siblings;
    auto ev = c.get(node, "ev").siblings;
    auto labels = typed::string_value(c.get(node, "labels").siblings).value_or("(none)");
    std::ostringstream why;
    if (labels != want.labels)
      why << "register '" << labels << "', the specification '" << want.labels << "'";
    else if (typed::counter_value(cnt) != want.counter)
      why << "counter " << typed::counter_value(cnt) << ", the specification " << want.counter;
    else if (typed::set_members(cart) != want.members)
      why << "set " << show(typed::set_members(cart)) << ", the specification "
          << show(want.members);
    else if (typed::hash_fields(ev) != want.fields)
      why << "map " << show(typed::hash_fields(ev)) << ", the specification " << show(want.fields);
    if (!why.str().empty())
      return out.failure = "node " + std::to_string(node) + ": " + why.str(), out;
  }
  return out;
}

uint64_t env_or(const char* name, uint64_t fallback) {
  auto* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

void run_typed_seeds(const std::string& kind) {
  uint64_t first = env_or("MLR_SIM_SEED", env_or("MLR_SIM_FIRST", 1));
  uint64_t count = std::getenv("MLR_SIM_SEED") ? 1 : env_or("MLR_SIM_SEEDS", 100);
  uint64_t writes = 0, restarts = 0, downs = 0, merged = 0;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    auto r = run_typed_seed(kind, seed);
    if (!r.failure.empty())
      FAIL(kind << " seed " << seed << " failed: " << r.failure << "\nreplay exactly: MLR_SIM_SEED="
                << seed << " tests/test_typed_simulation '" << kind << "*'");
    writes += r.writes;
    restarts += r.restarts;
    downs += r.downs;
    merged += r.merged ? 1 : 0;
  }
  if (count >= 50) { // the faults must have made the recovery paths work
    CHECK(restarts > count / 4);
    CHECK(downs > count / 2);
    CHECK(merged > count / 10); // seeds that ended with a merged register
  }
  WARN(kind << ": " << count << " seeds passed, " << writes << " typed writes, " << downs
            << " nodes went down, " << restarts << " restarted from their store, " << merged
            << " ended with a merged register");
}

} // namespace

TEST_CASE("ring typed: counters, sets and maps under drop/duplicate/reorder/partition/crash/"
          "restart equal their sequential specification at every node") {
  run_typed_seeds("ring");
}
TEST_CASE("star typed: counters, sets and maps under drop/duplicate/reorder/partition/crash/"
          "restart equal their sequential specification at every node") {
  run_typed_seeds("star");
}
TEST_CASE("mesh typed: counters, sets and maps under drop/duplicate/reorder/partition/crash/"
          "restart equal their sequential specification at every node") {
  run_typed_seeds("mesh");
}
