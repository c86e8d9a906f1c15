// Targeted fault scenarios on the deterministic scheduler: pull routing around cut links,
// staying bounded under a writer ten times faster than replication, and resolvers that
// fail or never answer.

#include "sim_scenarios.hpp"

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

using namespace mlr;
using namespace mlr::testing;
using namespace std::chrono_literals;

namespace {

struct silent_state {
  std::vector<caf::typed_response_promise<resolvers::resolution>> kept;
};

// A resolver that takes every request and never answers.
resolvers::resolver_actor::behavior_type
silent_resolver(resolvers::resolver_actor::stateful_pointer<silent_state> self) {
  return {
    [self](resolvers::resolve_atom, const std::string&, const std::vector<messages::version>&) {
      auto rp = self->make_response_promise<resolvers::resolution>();
      self->state.kept.push_back(rp);
      return rp;
    },
  };
}

// A resolver that answers every request with an error.
resolvers::resolver_actor::behavior_type failing_resolver() {
  return {
    [](resolvers::resolve_atom, const std::string&,
       const std::vector<messages::version>&) -> caf::result<resolvers::resolution> {
      return actors::make_error(errc::resolver_failed, "this resolver always fails");
    },
  };
}

} // namespace

TEST_CASE("mesh N=4 pull: a write that reached only D reaches B and C by pull") {
  sim_cluster c;
  sim_network net(*c.sys, 1);
  auto checker = std::make_shared<invariant_checker>();
  auto spec = sim_spec(topology::make_mesh({"a", "b", "c", "d"}), net, checker, 150ms);
  c.start(spec);
  // A -> B and A -> C are cut: A's write reaches only D, which forwards nothing in a mesh.
  caf::anon_send(net.at(0, 1), cut_atom::value);
  caf::anon_send(net.at(0, 2), cut_atom::value);
  c.run();
  c.put(0, "from-a", "1");
  CHECK(c.value(3, "from-a") == "1");
  c.put(3, "from-d", "2"); // D's write depends on A's
  for (size_t x : {1, 2}) {
    CHECK(c.get(x, "from-a").siblings.empty());
    CHECK(c.get(x, "from-d").siblings.empty()); // held: its dependency is missing
    CHECK(c.status(x).stats.buffered == 1);
  }
  // A few grace periods: gossip tells B and C that D holds A's write; they pull it from D.
  for (int i = 0; i < 12; ++i) // 12 x 50 ms = 4 grace periods
    c.advance(50ms);
  for (size_t x : {1, 2}) {
    INFO("node " << x);
    CHECK(c.value(x, "from-a") == "1");
    CHECK(c.value(x, "from-d") == "2"); // the later event from D was applied, not held
    auto s = c.status(x);
    CHECK(s.stats.buffered == 0);
    CHECK(s.stats.pulls_sent >= 1);
    CHECK(s.stats.pulled_events == 1); // only A's write: D's was already buffered
    CHECK(s.stats.duplicates <= 1);    // at most one duplicate per missing event
  }
  CHECK(checker->violations().empty());
  CHECK(topology::converged(c.statuses()));
}

TEST_CASE("mesh N=5 pull: a holder that does not answer is replaced by the next one") {
  sim_cluster c;
  sim_network net(*c.sys, 2);
  auto checker = std::make_shared<invariant_checker>();
  auto spec = sim_spec(topology::make_mesh({"a", "b", "c", "d", "e"}), net, checker, 150ms);
  c.start(spec);
  // A's write reaches only D and E. B's requests to D are lost, so B's first pull (to D,
  // the first holder in index order) times out and the next one goes to E.
  caf::anon_send(net.at(0, 1), cut_atom::value);
  caf::anon_send(net.at(0, 2), cut_atom::value);
  caf::anon_send(net.at(1, 3), cut_atom::value);
  c.run();
  c.put(0, "from-a", "1");
  for (int i = 0; i < 20; ++i) // 1 s: grace, a timed-out pull, then a pull that works
    c.advance(50ms);
  auto b = c.status(1);
  CHECK(c.value(1, "from-a") == "1");
  CHECK(b.stats.pull_failures >= 1);
  CHECK(b.stats.pulls_sent >= 2);
  CHECK(b.stats.pulled_events == 1);
  CHECK(c.value(2, "from-a") == "1"); // C was never cut from D
  CHECK(checker->violations().empty());
  CHECK(topology::converged(c.statuses()));
}

TEST_CASE("mesh N=3 bounded: a writer ten times faster than replication stays bounded") {
  sim_cluster c;
  sim_network net(*c.sys, 7);
  auto checker = std::make_shared<invariant_checker>();
  auto spec = sim_spec(topology::make_mesh(topology::default_names(3)), net, checker, 150ms);
  // Links carry one event per batch and one batch at a time, over channels that delay
  // every message by 1-20 ms (10 ms on average, reordered): about 100 events/s per link.
  spec.link.max_batch_events = 1;
  spec.link.window = 1;
  spec.link.ack_timeout = 500ms;
  spec.max_buffered = 4;
  c.start(spec);
  fault_config slow;
  slow.delay = 1.0;
  slow.max_delay_ms = 20;
  for (auto& [pair, ch] : net.channels())
    caf::anon_send(ch, faults_atom::value, slow);
  c.run();

  const int writes = 300; // one per millisecond: 1000/s, ten times what a link carries
  uint32_t worst_in_flight = 0;
  for (int i = 0; i < writes; ++i) {
    c.queue_put(0, "k" + std::to_string(i % 7), std::to_string(i));
    c.advance(1ms);
    if (i % 10 == 0) {
      for (auto& link : c.h.links) {
        (*c.self)->send(link, actors::status_atom::value);
        c.run();
        worst_in_flight = std::max(worst_in_flight, c.take<actors::link_status>().in_flight);
      }
    }
  }
  CHECK(c.drain_write_acks() == writes);
  auto mid = c.statuses();
  CHECK(mid[1].applied.total() < writes / 2); // replication really is the slower side
  bool settled = false;
  for (int i = 0; i < 400 && !settled; ++i) {
    c.advance(50ms);
    auto all = c.statuses();
    settled = topology::converged(all) && all[0].applied.total() == writes;
  }
  CHECK(settled);
  CHECK(worst_in_flight <= 1);
  uint64_t worst_mailbox = 0;
  uint64_t worst_buffer = 0;
  for (auto& s : c.statuses()) {
    worst_mailbox = std::max(worst_mailbox, s.mailbox_peak);
    worst_buffer = std::max(worst_buffer, s.stats.buffered_peak);
  }
  WARN("bounded: at most " << worst_in_flight << " batch in flight per link, " << worst_mailbox
                           << " messages in a leader's mailbox, " << worst_buffer
                           << " events buffered; node 1 had " << mid[1].applied.total() << " of "
                           << writes << " when the writer stopped");
  for (auto& s : c.statuses()) {
    INFO("node " << s.node);
    CHECK(s.applied.total() == writes);
    CHECK(s.stats.buffered_peak <= 4);
    CHECK(s.mailbox_peak <= 16);
  }
  CHECK(checker->violations().empty());
}

TEST_CASE("mesh N=3 resolver timeout: siblings stay and exactly one unresolved record") {
  sim_cluster c;
  sim_network net(*c.sys, 3);
  auto checker = std::make_shared<invariant_checker>();
  auto spec = sim_spec(topology::make_mesh(topology::default_names(3)), net, checker, 150ms);
  spec.make_resolver = [](caf::actor_system& sys) -> resolvers::resolver_actor {
    return sys.spawn(silent_resolver);
  };
  spec.resolver_timeout = 1000ms;
  c.start(spec);
  c.queue_put(0, "k", "left");
  c.queue_put(1, "k", "right");
  c.run();
  CHECK(c.drain_write_acks() == 2);
  for (size_t node = 0; node < 3; ++node)
    CHECK(c.status(node).pending_resolutions == 1);
  for (int i = 0; i < 22; ++i) // 1.1 s
    c.advance(50ms);
  for (size_t node = 0; node < 3; ++node) {
    INFO("node " << node);
    auto s = c.status(node);
    CHECK(s.pending_resolutions == 0);
    CHECK(s.stats.unresolved == 1);
    CHECK(c.get(node, "k").siblings.size() == 2); // nothing dropped
    (*c.self)->send(c.h.leaders[node], actors::conflicts_atom::value, uint64_t{0}, uint32_t{10});
    c.run();
    auto records = c.take<std::vector<core::conflict_record>>();
    REQUIRE(records.size() == 1);
    CHECK_FALSE(records[0].resolved);
    CHECK(records[0].kept.size() == 2);
    CHECK(records[0].reason.find("resolver failed") != std::string::npos);
  }
  CHECK(topology::converged(c.statuses()));
}

TEST_CASE("mesh N=3 resolver error: siblings stay and the conflict is recorded unresolved") {
  sim_cluster c;
  sim_network net(*c.sys, 3);
  auto checker = std::make_shared<invariant_checker>();
  auto spec = sim_spec(topology::make_mesh(topology::default_names(3)), net, checker, 150ms);
  spec.make_resolver = [](caf::actor_system& sys) -> resolvers::resolver_actor {
    return sys.spawn(failing_resolver);
  };
  c.start(spec);
  c.queue_put(0, "k", "left");
  c.queue_put(2, "k", "right");
  c.run();
  CHECK(c.drain_write_acks() == 2);
  for (size_t node = 0; node < 3; ++node) {
    auto s = c.status(node);
    CHECK(s.stats.unresolved == 1);
    CHECK(s.stats.resolved == 0);
    CHECK(c.get(node, "k").siblings.size() == 2);
  }
}
