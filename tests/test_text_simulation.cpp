// Text keys in the CAF simulation with faults: leaders on CAF's deterministic test
// coordinator, every message through a seeded network that drops, duplicates, delays and
// reorders, partitions that heal, nodes that go down and come back by a restart from what
// their store committed (their documents rebuilt from the stored operations). Random
// concurrent TEXT.INSERT and TEXT.DEL at every node, and now and then a DEL of the key. Once
// faults stop, every replica holds the same document, and it equals a sequential replay of
// the history: every text operation any node applied, applied in a causal order (by HLC) to
// a fresh document, where a DEL removes the characters of the inserts its origin had applied
// before it (by the test's record of what each origin had seen, not by the DEL's context).
// MLR_SIM_SEEDS and MLR_SIM_FIRST run other seeds; MLR_SIM_SEED one.

#include "core/text.hpp"
#include "harness.hpp"
#include "history_checker.hpp"
#include "invariant_checker.hpp"
#include "sim_scenarios.hpp"

#include <caf/event_based_actor.hpp>

#include <cstdlib>
#include <map>
#include <random>
#include <set>

using namespace mlr;
using namespace mlr::testing;
using namespace std::chrono_literals;
using messages::op_kind;

namespace {

using acked_atom = caf::atom_constant<caf::atom("xacked")>;
using refused_atom = caf::atom_constant<caf::atom("xrefused")>;

// The sequential replay of the history (see the file's comment).
std::string specification(const history_checker& h) {
  std::vector<const messages::event*> order;
  for (auto& [d, e] : h.events())
    if (e.key == "doc")
      order.push_back(&e);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) {
    return a->time != b->time ? a->time < b->time : a->id < b->id;
  });
  core::text::document doc;
  for (auto* e : order) {
    if (e->op == op_kind::text_insert) {
      core::text::insert_op op{
        e->id.origin, e->id.counter, e->text->first_seq, {}, {}, *core::text::from_utf8(e->value)};
      if (e->text->left)
        op.left = core::text::char_id{e->text->left->origin, e->text->left->seq};
      if (e->text->right)
        op.right = core::text::char_id{e->text->right->origin, e->text->right->seq};
      REQUIRE(doc.apply(op));
    } else if (e->op == op_kind::text_delete) {
      core::text::delete_op op{e->id, {}};
      for (auto& r : e->text->ranges)
        op.ranges.push_back(core::text::id_range{r.origin, r.seq, r.len});
      REQUIRE(doc.apply(op));
    } else {
      core::text::version seen; // what the DEL's origin had applied
      for (auto& d : h.pasts().at(e->id))
        seen[d.origin] = std::max(seen[d.origin], d.counter);
      doc.erase_seen(e->id, seen);
    }
  }
  return core::text::to_utf8(doc.read());
}

struct text_run {
  std::string failure;
  uint64_t writes = 0, acked = 0, refused = 0, restarts = 0, downs = 0, dels = 0;
  size_t length = 0;
  uint64_t snapshots = 0, dropped = 0; // text snapshot records written, records dropped
};

text_run run_text_seed(const std::string& kind, uint64_t seed) {
  text_run out;
  std::mt19937_64 rng(seed);
  sim_cluster c;
  auto checker = std::make_shared<history_checker>();
  sim_network net(*c.sys, seed);
  size_t n = 3 + seed % 3;
  auto spec = sim_spec(make_graph(kind, n), net, checker, 150ms);
  spec.seed = seed;
  spec.link.max_batch_events = 8;
  spec.link.window = 2;
  spec.max_buffered = 4;
  spec.text_compact_after = 4; // snapshot records and collection under the faults too
  if (kind == "star")
    spec.standby_hubs = {1};
  c.keep_stores(spec);
  c.start(spec);
  start_faults(net, seed);
  c.run();

  auto probe = caf::actor_cast<caf::actor>(*c.self);
  auto send = [&](size_t node, core::write_request w) {
    auto leader = c.h.leaders.at(node);
    c.sys->spawn([leader, w, probe](caf::event_based_actor* a) {
      auto refused = [=](caf::error& e) {
        a->send(probe, refused_atom::value, a->system().render(e));
      };
      if (w.op == op_kind::del)
        a->request(leader, caf::infinite, actors::del_atom::value, w.key)
          .then([=](messages::dot&) { a->send(probe, acked_atom::value); }, refused);
      else
        a->request(leader, caf::infinite, actors::typed_atom::value,
                   std::vector<core::write_request>{w})
          .then([=](std::vector<int64_t>&) { a->send(probe, acked_atom::value); }, refused);
    });
    ++out.writes;
  };
  auto drain = [&] {
    for (bool more = true; more;)
      (*c.self)->receive([&](acked_atom) { ++out.acked; },
                         [&](refused_atom, std::string&) { ++out.refused; },
                         caf::after(std::chrono::seconds(0)) >> [&] { more = false; });
  };
  std::set<size_t> down;
  for (int round = 0; round < 40; ++round) {
    if (rng() % 7 == 0 && down.size() + 1 < n) {
      if (down.insert(rng() % n).second)
        ++out.downs;
    } else if (!down.empty() && rng() % 5 == 0) {
      auto back = std::next(down.begin(), static_cast<long>(rng() % down.size()));
      auto x = *back;
      down.erase(back);
      if (rng() % 2) { // restarted from what it committed, once every write was answered
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
    for (auto k = rng() % 4; k > 0; --k) {
      auto node = rng() % n;
      if (down.count(node))
        continue;
      core::write_request w;
      w.key = "doc";
      auto pick = rng() % 30;
      if (pick == 0) {
        w.op = op_kind::del;
        ++out.dels;
      } else if (pick < 10) {
        w.op = op_kind::text_delete, w.index = rng() % 30, w.count = 1 + rng() % 4;
      } else {
        w.op = op_kind::text_insert, w.index = rng() % 30;
        w.value =
          std::string(1 + rng() % 3, static_cast<char>('a' + node)) + (rng() % 2 ? "é" : "");
      }
      send(node, std::move(w));
    }
    if (rng() % 10 == 0)
      set_down(net, n, rng() % n, true);
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
  if (!settled) {
    std::string why = "did not converge within 20 s of simulated time after faults stopped (" +
                      std::to_string(out.acked + out.refused) + " of " +
                      std::to_string(out.writes) + " writes answered); documents:";
    for (size_t node = 0; node < n; ++node)
      why += " '" + c.get(node, "doc").text + "'";
    return out.failure = why, out;
  }
  for (auto& st : c.statuses()) {
    out.snapshots += st.stats.text_snapshots;
    out.dropped += st.stats.text_records_dropped;
  }
  auto want = specification(*checker);
  out.length = want.size();
  for (size_t node = 0; node < n; ++node) {
    auto got = c.get(node, "doc").text;
    if (got != want)
      return out.failure = "node " + std::to_string(node) + " holds '" + got +
                           "', the replay of the history '" + want + "'",
             out;
  }
  return out;
}

uint64_t env_or(const char* name, uint64_t fallback) {
  auto* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

void run_text_seeds(const std::string& kind) {
  uint64_t first = env_or("MLR_SIM_SEED", env_or("MLR_SIM_FIRST", 1));
  uint64_t count = std::getenv("MLR_SIM_SEED") ? 1 : env_or("MLR_SIM_SEEDS", 40);
  uint64_t writes = 0, restarts = 0, downs = 0, dels = 0, nonempty = 0, snapshots = 0, dropped = 0;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    auto r = run_text_seed(kind, seed);
    if (!r.failure.empty())
      FAIL(kind << " seed " << seed << " failed: " << r.failure << "\nreplay exactly: MLR_SIM_SEED="
                << seed << " tests/test_text_simulation '" << kind << "*'");
    writes += r.writes;
    restarts += r.restarts;
    downs += r.downs;
    dels += r.dels;
    nonempty += r.length > 0 ? 1 : 0;
    snapshots += r.snapshots;
    dropped += r.dropped;
  }
  if (count >= 20) { // the faults must have made the recovery paths work
    CHECK(restarts > count / 4);
    CHECK(downs > count / 2);
    CHECK(nonempty > count / 2);
    CHECK(snapshots > count);
    CHECK(dropped > count);
  }
  WARN(kind << ": " << count << " seeds passed, " << writes << " text writes (" << dels
            << " DELs of the key), " << downs << " nodes went down, " << restarts
            << " restarted from their store; " << snapshots << " text snapshot records written, "
            << dropped << " stored operations dropped");
}

} // namespace

TEST_CASE("ring text: random concurrent edits under drop/duplicate/reorder/partition/crash/"
          "restart give one document at every node, the history's sequential replay") {
  run_text_seeds("ring");
}
TEST_CASE("mesh text: random concurrent edits under drop/duplicate/reorder/partition/crash/"
          "restart give one document at every node, the history's sequential replay") {
  run_text_seeds("mesh");
}
