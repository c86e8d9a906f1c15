// Stability and garbage collection on the deterministic scheduler: a tombstone is not
// collected while a concurrent write may still arrive, every node agrees on the outcome,
// and the log stays bounded in a long run.

#include "harness.hpp"
#include "invariant_checker.hpp"
#include "sim_channel.hpp"

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
  c.queue_put(2, "k", "v2");                     // C: a put...
  (*c.self)->send(c.h.leaders[1], actors::del_atom::value, std::string("k")); // B: a delete,
  c.run();                                       // concurrent, with the later HLC: it wins
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
    CHECK(all[n].keys == 0);               // and is forgotten everywhere, once stable
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
  WARN("bounded log: " << writes << " writes; node 0 kept " << before.log_end - before.log_begin
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
