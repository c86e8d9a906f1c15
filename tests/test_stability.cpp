// Stability and garbage collection on the deterministic scheduler: a tombstone is not
// collected while a concurrent write may still arrive, every node agrees on the outcome,
// and the log stays bounded in a long run.

#include "harness.hpp"
#include "invariant_checker.hpp"
#include "sim_channel.hpp"
#include "sim_scenarios.hpp"
#include "storage/store.hpp"

#include <filesystem>

using namespace mlr;
using namespace mlr::testing;
using namespace std::chrono_literals;

namespace {

topology::cluster_spec stability_spec(sim_network& net, std::shared_ptr<invariant_checker> ck) {
  topology::cluster_spec spec;
  spec.topology = topology::make_mesh(topology::default_names(3));
  spec.make_resolver = resolvers::builtin_resolver("lww");
  spec.observer = std::move(ck);
  spec.link.ack_timeout = 200ms;
  spec.tick_interval = 50ms;
  spec.pull_grace = 10s; // keep pull out of the way: this test is about eager delivery
  spec.pull_timeout = 200ms;
  spec.make_sink = [&net](topology::node_index from, topology::node_index to,
                          actors::leader_actor dest) { return net.sink(from, to, dest); };
  return spec;
}

} // namespace

TEST_CASE("mesh N=3 tombstones: a delete is not collected before a concurrent put arrives "
          "everywhere, all nodes agree") {
  sim_cluster c;
  sim_network net(*c.sys, 5);
  auto checker = std::make_shared<invariant_checker>();
  c.start(stability_spec(net, checker));
  c.put(0, "k", "v0");
  for (int i = 0; i < 10; ++i)
    c.advance(50ms);
  // C's eager batches to A are held (gossip still flows): A hears that C wrote, but not what.
  caf::anon_send(net.at(2, 0), hold_batches_atom::value);
  c.run();
  c.queue_put(2, "k", "v2");                                                  // C: a put...
  (*c.self)->send(c.h.leaders[1], actors::del_atom::value, std::string("k")); // B: a delete,
  c.run(); // concurrent, with the later HLC: it wins
  auto c_put = c.take<messages::dot>();
  c.take<messages::dot>();
  for (int i = 0; i < 40; ++i) { // 2 s of gossip and collection rounds
    c.advance(50ms);
    auto a = c.status(0);
    if (!a.applied.covers(c_put))
      REQUIRE(a.stats.tombstones_collected == 0); // the put may still come: keep the delete
  }
  CHECK_FALSE(c.status(0).applied.covers(c_put)); // it really was held all along
  caf::anon_send(net.at(2, 0), release_atom::value);
  for (int i = 0; i < 40; ++i)
    c.advance(50ms);
  auto all = c.statuses();
  CHECK(topology::converged(all));
  for (size_t n = 0; n < 3; ++n) {
    INFO("node " << n);
    CHECK(c.get(n, "k").siblings.empty()); // the delete won everywhere
    CHECK(all[n].stats.tombstones_collected == 1);
    CHECK(all[n].keys == 0); // and is forgotten everywhere, once stable
  }
  CHECK(checker->violations().empty());
}

TEST_CASE("mesh N=3 bounded log: stable entries are compacted in a long run") {
  sim_cluster c;
  sim_network net(*c.sys, 6);
  auto checker = std::make_shared<invariant_checker>();
  auto spec = stability_spec(net, checker);
  spec.log_retention = 50;
  c.start(spec);
  const int writes = 3000;
  uint64_t largest = 0;
  for (int i = 0; i < writes; ++i) {
    c.queue_put(static_cast<size_t>(i % 3), "k" + std::to_string(i % 97), std::to_string(i));
    if (i % 10 == 9) {
      c.advance(10ms);
      for (size_t n = 0; n < 3; ++n) {
        auto s = c.status(n);
        largest = std::max(largest, s.log_end - s.log_begin);
      }
    }
  }
  c.drain_write_acks();
  auto before = c.status(0);
  for (int i = 0; i < 20; ++i)
    c.advance(50ms);
  auto all = c.statuses();
  CHECK(topology::converged(all));
  WARN(
    "bounded log: " << writes << " writes; node 0 kept " << before.log_end - before.log_begin
                    << " entries when the writes stopped and " << all[0].log_end - all[0].log_begin
                    << " after compaction (retention 50); at most " << largest << " at any sample");
  for (auto& s : all) {
    CHECK(s.applied.total() == writes);
    CHECK(s.log_end - s.log_begin <= 50);
    CHECK(s.stats.log_compacted >= writes - 50);
  }
  CHECK(largest < writes / 4); // bounded while running, not only at the end
  CHECK(checker->violations().empty());
}

TEST_CASE("tombstones versus clock skew: a put written after its node forgot a delete is not "
          "lost at a node that still holds the delete, with a clock 5 s ahead") {
  sim_cluster c;
  sim_network net(*c.sys, 41);
  auto checker = std::make_shared<invariant_checker>();
  auto spec = sim_spec(topology::make_mesh(topology::default_names(3)), net, checker, 300ms);
  spec.log_retention = 0;
  spec.clock_skew_ms = {0, 5000, 0}; // node 1's clock runs 5 s ahead
  c.start(std::move(spec));
  c.put(0, "k", "v0");
  run_for(c, 300ms);
  (*c.self)->send(c.h.leaders[1], actors::del_atom::value, std::string("k"));
  c.run(); // the delete reaches every node (no time passes: no gossip yet)
  c.take<messages::dot>();
  REQUIRE(c.get(2, "k").context.dots.size() == 1);
  // Node 2 hears nobody for a while (it still reports to them): the others see the delete
  // stable long before node 2 can know it.
  caf::anon_send(net.at(0, 2), cut_atom::value);
  caf::anon_send(net.at(1, 2), cut_atom::value);
  c.run();
  run_for(c, 2s);
  REQUIRE(c.get(2, "k").context.dots.size() == 1); // node 2 still holds the delete
  auto d = c.put(0, "k", "v1");                    // after node 0 may have forgotten the delete
  run_for(c, 300ms);
  caf::anon_send(net.at(0, 2), heal_atom::value);
  caf::anon_send(net.at(1, 2), heal_atom::value);
  run_for(c, 3s);
  for (size_t n = 0; n < 3; ++n) {
    INFO("node " << n);
    CHECK(c.value(n, "k") == "v1"); // acknowledged: never lost to the delete
  }
  CHECK(topology::converged(c.statuses()));
  CHECK(checker->violations().empty());
  (void)d;
}

TEST_CASE("tombstones held at a restart are still collected") {
  // A cluster of one on RocksDB: a delete, a restart from the directory, then collection.
  auto dir = std::string("test_stability_restart.db");
  std::filesystem::remove_all(dir);
  core::replica_config cfg;
  cfg.self = 0;
  cfg.incarnation = 1;
  cfg.forward_to.resize(1); // alone: everything it holds is stable at once
  cfg.log_retention = 1000; // the log stays: only the tombstone is collected
  {
    auto s = storage::open_rocksdb_store(dir);
    REQUIRE(s);
    core::replica r(cfg, std::move(*s));
    r.write(core::write_request{"gone", messages::op_kind::put, "v", false, {}}, 1);
    r.write(core::write_request{"gone", messages::op_kind::del, "", false, {}}, 2);
    CHECK(r.take_ready().commit);
    REQUIRE(r.mutable_store().commit(true));
  }
  auto s = storage::open_rocksdb_store(dir);
  REQUIRE(s);
  core::replica r(cfg, std::move(*s));
  REQUIRE(r.versions("gone").size() == 1);
  for (uint64_t t = 3; t < 6; ++t)
    r.collect_garbage(t);
  CHECK(r.versions("gone").empty()); // before the fix: kept for good after a restart
  CHECK(r.stats().tombstones_collected == 1);
  std::filesystem::remove_all(dir);
}
