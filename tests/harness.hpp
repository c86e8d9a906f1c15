#pragma once
// A cluster on CAF's deterministic test_coordinator: one job at a time, timers only when
// told, so every run of a test is the same run. Catch2 assertions stay on the test's own
// thread: the harness sends, runs the scheduler, then collects replies with a zero timeout.

#include "kept_store.hpp"
#include "storage/serialize.hpp"
#include "topology/cluster.hpp"
#include "topology/wiring.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <memory>
#include <optional>
#include <random>

namespace mlr::testing {

/// "ring", "star" (hub n0), "mesh", or "custom": a ring with chords i -> i+2 from every
/// even node, so that some nodes are joined by several paths. The custom graph goes
/// through the edge-list parser, as a user's file would.
inline topology::graph make_graph(const std::string& kind, size_t n) {
  auto names = topology::default_names(n);
  if (kind == "ring")
    return topology::make_ring(names);
  if (kind == "star")
    return topology::make_star(names, 0);
  if (kind == "mesh")
    return topology::make_mesh(names);
  std::string text = "nodes:";
  for (size_t i = 0; i < n; ++i)
    text += " n" + std::to_string(i);
  text += "\n";
  for (size_t i = 0; i < n; ++i) {
    text += "n" + std::to_string(i) + " -> n" + std::to_string((i + 1) % n) + "\n";
    if (i % 2 == 0 && (i + 2) % n != i)
      text += "n" + std::to_string(i) + " -> n" + std::to_string((i + 2) % n) + "\n";
  }
  auto g = topology::parse_edge_list(text);
  if (!g)
    FAIL("the custom test graph does not parse: " << g.err().message);
  return *g;
}

struct sim_cluster {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::unique_ptr<caf::scoped_actor> self;
  topology::cluster_handles h;
  topology::cluster_spec spec_; ///< as started (for add_node)
  /// The wall clock every leader reads; tests move it or freeze it.
  std::shared_ptr<uint64_t> wall_ms = std::make_shared<uint64_t>(1'700'000'000'000ull);
  /// When true, every read of the wall clock advances it by 1 ms.
  std::shared_ptr<bool> clock_ticks = std::make_shared<bool>(true);

  sim_cluster() {
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    self = std::make_unique<caf::scoped_actor>(*sys);
  }

  ~sim_cluster() {
    for (auto& l : h.leaders)
      caf::anon_send_exit(l, caf::exit_reason::user_shutdown);
    for (auto& r : h.resolvers)
      caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    sched->run();
  }

  /// Each node's disk when the cluster runs on kept stores (keep_stores): what a restart
  /// recovers.
  std::vector<std::shared_ptr<kept_store::disk>> disks;
  uint64_t restarts = 0;

  /// Runs every node on a store that survives its leader (kept_store) under --sync always,
  /// so that restart() can bring a node back with what it committed.
  void keep_stores(topology::cluster_spec& spec) {
    disks.clear();
    for (size_t i = 0; i < spec.topology.size(); ++i)
      disks.push_back(std::make_shared<kept_store::disk>());
    spec.sync = actors::sync_policy::always;
    spec.make_store = [d = disks](topology::node_index n) -> std::unique_ptr<storage::store> {
      return kept_store::open(d.at(n));
    };
  }

  /// Crashes node `n` (its leader and resolver are killed, whatever they were doing) and
  /// starts it again: from what its store committed, under the incarnation it recorded, or
  /// (`empty`) from nothing under a new incarnation, as a node whose disk was lost. Needs
  /// keep_stores. `observer` (the invariant checker) is told what the node kept.
  template <class Checker> void restart(size_t n, bool empty, Checker* observer) {
    if (n >= disks.size())
      FAIL("restart needs keep_stores");
    caf::anon_send_exit(h.leaders[n], caf::exit_reason::kill);
    caf::anon_send_exit(h.resolvers[n], caf::exit_reason::kill);
    run();
    if (empty)
      disks[n]->committed.clear(); // the generation goes on: older stores stay inert
    auto store = kept_store::open(disks[n]);
    messages::version_vector applied;
    messages::version_vector retired;
    if (auto raw = store->get_meta("applied"))
      if (auto vv = storage::deserialize_version_vector(*raw))
        applied = *vv;
    if (auto raw = store->get_meta("retired"))
      if (auto vv = storage::deserialize_version_vector(*raw))
        retired = *vv;
    uint64_t incarnation = 0;
    if (auto raw = store->get_meta("incarnation"))
      incarnation = std::strtoull(raw->c_str(), nullptr, 10);
    std::mt19937_64 rng(spec_.seed * 7919 + n * 104729 + ++restarts);
    while (incarnation == 0)
      incarnation = rng();
    if (observer)
      observer->on_restart(static_cast<topology::node_index>(n), applied, retired);
    auto ok = topology::restart_node(*sys, spec_, h, static_cast<topology::node_index>(n),
                                     std::move(store), incarnation);
    if (!ok)
      FAIL("restart_node failed: " << ok.err().message);
    run();
  }

  /// Wires the cluster. `spec.wall_clock_ms` is replaced by the harness clock.
  void start(topology::cluster_spec spec) {
    auto now = wall_ms;
    auto ticks = clock_ticks;
    spec.wall_clock_ms = [now, ticks] { return *ticks ? (*now)++ : *now; };
    auto wired = topology::wire_cluster(*sys, spec);
    if (!wired)
      FAIL("wire_cluster failed: " << wired.err().message);
    h = std::move(*wired);
    spec_ = std::move(spec);
    run();
  }

  /// Adds a node to the running cluster (topology::add_node); returns its index.
  size_t add_node(const std::string& name, const std::string& topology, size_t via = 0) {
    auto n =
      topology::add_node(*sys, spec_, h, name, topology, static_cast<topology::node_index>(via));
    if (!n)
      FAIL("add_node failed: " << n.err().message);
    run();
    return *n;
  }

  void start(topology::graph g, const std::string& resolver = "lww") {
    topology::cluster_spec spec;
    spec.topology = std::move(g);
    spec.make_resolver = resolvers::builtin_resolver(resolver);
    start(std::move(spec));
  }

  size_t size() const { return h.leaders.size(); }

  /// Runs every job until the system is idle.
  size_t run() { return sched->run(); }

  /// Moves simulated time (CAF's clock and the wall clock) forward, fires every timer that
  /// became due, and runs until idle.
  void advance(std::chrono::milliseconds d) {
    *wall_ms += static_cast<uint64_t>(d.count());
    sched->advance_time(d);
    run();
  }

  /// Takes the one reply waiting for the test's scoped actor.
  template <class T> T take() {
    std::optional<T> out;
    (*self)->receive([&](T& x) { out = std::move(x); },
                     [&](caf::error& err) { FAIL("request failed: " << sys->render(err)); },
                     caf::after(std::chrono::seconds(0)) >> [&] { FAIL("no reply arrived"); });
    return std::move(*out);
  }

  /// Queues a put at a node without running anything: writes queued together are
  /// concurrent. Collect the dots later with take<messages::dot>().
  void queue_put(size_t node, const std::string& key, const std::string& value) {
    (*self)->send(h.leaders.at(node), actors::put_atom::value, key, value);
  }

  messages::dot put(size_t node, const std::string& key, const std::string& value) {
    queue_put(node, key, value);
    run();
    return take<messages::dot>();
  }

  messages::dot put(size_t node, const std::string& key, const std::string& value,
                    const actors::causal_context& ctx) {
    (*self)->send(h.leaders.at(node), actors::put_atom::value, key, value, ctx);
    run();
    return take<messages::dot>();
  }

  actors::get_result get(size_t node, const std::string& key) {
    (*self)->send(h.leaders.at(node), actors::get_atom::value, key);
    run();
    return take<actors::get_result>();
  }

  actors::node_status status(size_t node) {
    (*self)->send(h.leaders.at(node), actors::status_atom::value);
    run();
    return take<actors::node_status>();
  }

  std::vector<actors::node_status> statuses() {
    std::vector<actors::node_status> out;
    for (size_t n = 0; n < size(); ++n)
      out.push_back(status(n));
    return out;
  }

  /// Takes every write acknowledgement waiting for the test's scoped actor; returns how many.
  size_t drain_write_acks() {
    size_t n = 0;
    bool more = true;
    while (more)
      (*self)->receive([&](messages::dot&) { ++n; },
                       [&](caf::error& err) { FAIL("a write failed: " << sys->render(err)); },
                       caf::after(std::chrono::seconds(0)) >> [&] { more = false; });
    return n;
  }

  /// The single value of a key at a node ("" when absent; fails on siblings).
  std::string value(size_t node, const std::string& key) {
    auto g = get(node, key);
    if (g.siblings.size() > 1)
      FAIL("key " << key << " has " << g.siblings.size() << " siblings at node " << node);
    return g.siblings.empty() ? std::string{} : g.siblings.front().value;
  }
};

} // namespace mlr::testing
