// Changing a running cluster's topology, in process on the deterministic scheduler: the
// topology lives in a replicated last-writer-wins key whose dot is the epoch, so a change
// reaches every node like any write, concurrent changes resolve the same way everywhere,
// and a node that was partitioned during a change ends at the same epoch.

#include "sim_scenarios.hpp"
#include "topology/cluster.hpp"

using namespace mlr;
using namespace mlr::testing;
using namespace std::chrono_literals;

namespace {

void queue_topology(sim_cluster& c, size_t node, const std::string& spec) {
  (*c.self)->send(c.h.leaders.at(node), actors::topology_atom::value, spec);
}

std::string phantoms(size_t n) {
  std::string out = "members n0 n1 n2";
  for (size_t i = 3; i < n; ++i)
    out += " x" + std::to_string(i);
  return out + "\nmesh";
}

uint64_t total_sent(sim_cluster& c) {
  uint64_t n = 0;
  for (auto& s : c.statuses())
    n += s.stats.events_sent;
  return n;
}

} // namespace

TEST_CASE("ring N=5 to mesh during writes: nothing lost, one epoch everywhere, then one hop "
          "and N-1 events per write") {
  sim_cluster c;
  sim_network net(*c.sys, 21);
  auto checker = std::make_shared<invariant_checker>();
  c.start(sim_spec(topology::make_ring(topology::default_names(5)), net, checker, 60s));
  std::vector<std::string> keys;
  for (int r = 0; r < 6; ++r) {
    for (size_t n = 0; n < 5; ++n) {
      keys.push_back("r" + std::to_string(r) + "n" + std::to_string(n));
      c.queue_put(n, keys.back(), "v");
    }
    if (r == 3)
      queue_topology(c, 2, "mesh"); // concurrent with that round's writes
    c.run();
    c.drain_write_acks();
    run_for(c, 100ms);
  }
  run_for(c, 1s);
  auto all = c.statuses();
  REQUIRE(topology::converged(all));
  CHECK(checker->violations().empty());
  REQUIRE_FALSE(all[0].epoch.empty());
  for (auto& s : all) {
    CHECK(s.epoch == all[0].epoch);
    CHECK(s.topology.find("n0 -> n2") != std::string::npos); // a mesh edge, not a ring one
  }
  for (auto& k : keys)
    for (size_t n = 0; n < 5; ++n)
      CHECK(c.value(n, k) == "v");

  // One hop now: with n1 -> n2 cut, n0's write still reaches n2 at once (the ring needed
  // n1 to forward it).
  caf::anon_send(net.at(1, 2), cut_atom::value);
  auto sent_before = total_sent(c);
  c.put(0, "after", "x");
  run_for(c, 200ms);
  CHECK(c.value(2, "after") == "x");
  CHECK(c.status(2).stats.pulls_sent == 0);
  CHECK(total_sent(c) - sent_before == 4); // N - 1
  caf::anon_send(net.at(1, 2), heal_atom::value);
  run_for(c, 500ms);
  CHECK(topology::converged(c.statuses()));
}

TEST_CASE("concurrent topology changes at two nodes: one epoch wins everywhere, including "
          "at a node partitioned during the change") {
  sim_cluster c;
  sim_network net(*c.sys, 22);
  auto checker = std::make_shared<invariant_checker>();
  c.start(sim_spec(topology::make_mesh(topology::default_names(4)), net, checker, 60s));
  c.put(0, "k", "before");
  run_for(c, 300ms);
  set_down(net, 4, 3, true); // n3 cut off
  c.run();
  queue_topology(c, 0, "ring");
  queue_topology(c, 1, "star:n2");
  c.run();
  auto a = c.take<messages::dot>();
  auto b = c.take<messages::dot>();
  run_for(c, 1s);
  auto e0 = c.status(0).epoch;
  CHECK((e0 == messages::to_string(a) || e0 == messages::to_string(b)));
  for (size_t n = 0; n < 3; ++n)
    CHECK(c.status(n).epoch == e0);
  CHECK(c.status(3).epoch.empty()); // it has not heard of either
  set_down(net, 4, 3, false);
  run_for(c, 61s); // n3 lacks the changes: it pulls them after the grace period
  auto all = c.statuses();
  CHECK(topology::converged(all));
  for (auto& s : all)
    CHECK(s.epoch == e0);
  // Writes still reach everyone under the winner.
  c.put(3, "k", "after");
  run_for(c, 500ms);
  for (size_t n = 0; n < 4; ++n)
    CHECK(c.value(n, "k") == "after");
  CHECK(checker->violations().empty());
}

TEST_CASE("a topology that is not strongly connected, or names a stranger, is refused") {
  sim_cluster c;
  sim_network net(*c.sys, 23);
  auto checker = std::make_shared<invariant_checker>();
  c.start(sim_spec(topology::make_mesh(topology::default_names(3)), net, checker, 60s));
  for (auto [spec, says] : std::vector<std::pair<std::string, std::string>>{
         {"n0 -> n1\nn1 -> n2\n", "cannot reach"},
         {"n0 -> n1\nn1 -> x9\n", "'x9', which is not a member"},
         {"star:x9", "'x9' is not a member"},
         {"tree", "write ring, mesh, star"},
         // The cases: a duplicate member (every node then spun forever), 2,500
         // phantom members (1 GB per node), a malformed name, an address for a stranger.
         {"members n0 n1 n2 n0\nmesh", "'members' names 'n0' twice"},
         {phantoms(2500), "a cluster has at most 256"},
         {"members n0 n1 n2 bad/name\nmesh", "member name 'bad/name' is not"},
         {"members n0 n1 n2\naddress x9 127.0.0.1:1\nmesh", "'address' names 'x9'"},
         {"members n0 n1 n2 n3\naddress n3 nowhere\nmesh", "write 'address NAME HOST:PORT'"},
         {std::string(70000, '#') + "\nmesh", "at most 65536 are accepted"}}) {
    queue_topology(c, 0, spec);
    c.run();
    bool refused = false;
    (*c.self)->receive([&](messages::dot&) {},
                       [&](caf::error& err) {
                         refused = true;
                         INFO(c.sys->render(err));
                         CHECK(c.sys->render(err).find(says) != std::string::npos);
                       },
                       caf::after(0s) >> [] {});
    CHECK(refused);
  }
  CHECK(c.status(0).epoch.empty());
  // Refused at the origin, nothing written: no node routes by any of them.
  run_for(c, 300ms);
  for (auto& s : c.statuses())
    CHECK(s.topology.empty());
}

TEST_CASE("the router takes every edge list a topology file may hold at start-up (one grammar)") {
  // The start-up grammar: a nodes line, arrows both ways, lists after an arrow, comments.
  std::string file = "nodes: n0 n1 n2\n"
                     "n0 <-> n1, n2   # a star around n0, written by hand\n";
  auto parsed = topology::parse_edge_list(file);
  REQUIRE(parsed);
  auto route = topology::make_router({"n0", "n1", "n2"}, 0);
  auto r = route(file, nullptr);
  INFO((r ? std::string() : r.err().message));
  REQUIRE(r);
  // The same shape: n0 (the hub) forwards its own writes to both, and n1's on to n2.
  CHECK(r->forward_to[0] == std::vector<messages::node_index>{1, 2});
  CHECK(r->forward_to[1] == std::vector<messages::node_index>{2});
  CHECK(r->links.size() == 2);
  auto stranger = route("n0 <-> n1, x9\n", nullptr);
  REQUIRE_FALSE(stranger);
  CHECK(stranger.err().message.find("'x9', which is not a member") != std::string::npos);
  auto broken = route("n0 -> n0\n", nullptr);
  REQUIRE_FALSE(broken);
  CHECK(broken.err().message.find("to itself") != std::string::npos);
}

TEST_CASE("processes' router: a member added without an address line is refused") {
  auto route = topology::make_router({"n0", "n1", "n2"}, 0, {}, /*require_addresses=*/true);
  auto bad = route("members n0 n1 n2 n3\nmesh", nullptr);
  REQUIRE_FALSE(bad);
  CHECK(bad.err().message.find("new member 'n3' has no 'address n3 HOST:PORT' line") !=
        std::string::npos);
  CHECK(route("members n0 n1 n2 n3\naddress n3 127.0.0.1:7003\nmesh", nullptr));
}

TEST_CASE("membership: a 4th node added to a live 3-node mesh during writes converges, and its "
          "writes reach everyone") {
  sim_cluster c;
  sim_network net(*c.sys, 24);
  auto checker = std::make_shared<invariant_checker>();
  auto spec = sim_spec(topology::make_mesh(topology::default_names(3)), net, checker, 60s);
  spec.log_retention = 0; // what the newcomer lacks has left every log: a state transfer
  spec.pull_grace = 300ms;
  c.start(spec);
  std::vector<std::string> keys;
  auto round = [&](int r, size_t nodes) {
    for (size_t n = 0; n < nodes; ++n) {
      keys.push_back("r" + std::to_string(r) + "n" + std::to_string(n));
      c.queue_put(n, keys.back(), "v");
    }
    c.run();
    c.drain_write_acks();
    run_for(c, 100ms);
  };
  for (int r = 0; r < 5; ++r)
    round(r, 3);
  run_for(c, 1s);
  REQUIRE(c.status(0).log_begin > 0); // compacted
  auto added = c.add_node("n3", "mesh", 1);
  REQUIRE(added == 3);
  for (int r = 5; r < 10; ++r)
    round(r, 3);
  run_for(c, 3s);
  for (int r = 10; r < 12; ++r)
    round(r, 4); // the newcomer writes too
  run_for(c, 2s);
  auto all = c.statuses();
  CHECK(topology::converged(all));
  CHECK(all[3].stats.transfers_received >= 1);
  for (auto& s : all) {
    CHECK(s.epoch == all[0].epoch);
    CHECK(s.topology.find("members n0 n1 n2 n3") != std::string::npos);
  }
  for (auto& k : keys)
    CHECK(c.value(3, k) == "v");
  INFO(describe(checker->violations()));
  CHECK(checker->violations().empty());
}

TEST_CASE("membership: a removed node no longer holds anything back, the rest keep "
          "converging") {
  sim_cluster c;
  sim_network net(*c.sys, 25);
  auto checker = std::make_shared<invariant_checker>();
  auto spec = sim_spec(topology::make_mesh(topology::default_names(4)), net, checker, 60s);
  spec.log_retention = 0;
  c.start(spec);
  c.put(0, "k0", "v");
  run_for(c, 500ms);
  // n1 goes away for good: cut off, then removed by a topology change at n2.
  set_down(net, 4, 1, true);
  c.run();
  auto log_before = c.status(0).log_end;
  for (int i = 0; i < 20; ++i)
    c.put(i % 2 ? 0 : 3, "while-down-" + std::to_string(i), "v");
  run_for(c, 1s);
  CHECK(c.status(0).log_begin <= log_before); // n1 is still a member: nothing new is stable
  queue_topology(c, 2, "members n0 n1 n2 n3\nremoved n1\nmesh");
  c.run();
  c.take<messages::dot>();
  for (int i = 0; i < 20; ++i)
    c.put(i % 3 == 0 ? 2 : 3, "after-" + std::to_string(i), "v");
  run_for(c, 2s);
  std::vector<actors::node_status> rest{c.status(0), c.status(2), c.status(3)};
  CHECK(topology::converged(rest));
  for (auto& s : rest) {
    CHECK(s.topology.find("removed n1") != std::string::npos);
    CHECK(s.log_begin > log_before); // stable again without n1, so compacted
  }
  for (int i = 0; i < 20; ++i)
    CHECK(c.value(0, "after-" + std::to_string(i)) == "v");
  CHECK(checker->violations().empty());
}

TEST_CASE("membership: a node added at one node while another is removed at a second, "
          "concurrently, with a third partitioned: both happen, one epoch everywhere, N-1 "
          "events per write after") {
  sim_cluster c;
  sim_network net(*c.sys, 26);
  auto checker = std::make_shared<invariant_checker>();
  auto spec = sim_spec(topology::make_mesh(topology::default_names(4)), net, checker, 60s);
  spec.pull_grace = 300ms;
  c.start(spec);
  c.put(0, "before", "v");
  run_for(c, 300ms);
  auto cut = [&](size_t a, size_t b, bool on) { cut_between(net, a, b, on); };
  // n0 and n1 cannot see each other's change; n2 sees nothing at all.
  cut(0, 1, true);
  for (size_t x : {0, 1, 3})
    cut(2, x, true);
  c.run();
  queue_topology(c, 1, "members n0 n1 n2 n3\nremoved n3\nmesh");
  c.run();
  c.take<messages::dot>();
  auto added = c.add_node("n4", "mesh", 0);
  run_for(c, 1s);
  cut(0, 1, false);
  for (size_t x : {0, 1, 3})
    cut(2, x, false);
  run_for(c, 3s);
  auto all = c.statuses();
  CHECK(topology::converged(all));
  for (auto& s : all) {
    INFO("node " << s.node << " topology:\n" << s.topology);
    CHECK(s.epoch == all[0].epoch);
    if (s.node == 3)
      continue; // removed: members added after its removal are none of its business
    CHECK(s.topology.rfind("members n0 n1 n2 n3 n4\nremoved n3\n", 0) == 0);
    CHECK(s.topology.find("n0 -> n3") == std::string::npos);
    CHECK(s.topology.find("n0 -> n4") != std::string::npos);
  }
  auto before = total_sent(c);
  c.put(added, "from-n4", "x");
  run_for(c, 500ms);
  CHECK(total_sent(c) - before == 3); // four live members
  for (size_t n : {0, 1, 2})
    CHECK(c.value(n, "from-n4") == "x");
  CHECK(checker->violations().empty());
}

TEST_CASE("C++ API: cluster::add_node and remove_node on a running cluster") {
  topology::cluster_options o;
  o.topology = "mesh";
  o.nodes = 3;
  auto c = topology::cluster::start(o);
  REQUIRE(c);
  auto& cl = **c;
  for (size_t n = 0; n < 3; ++n)
    REQUIRE(cl.put(n, "before-" + std::to_string(n), "v"));
  auto added = cl.add_node("n3");
  REQUIRE(added);
  CHECK(*added == 3);
  CHECK(cl.size() == 4);
  REQUIRE(cl.put(3, "from-n3", "v"));
  REQUIRE(cl.wait_converged(std::chrono::seconds(20)));
  for (size_t n = 0; n < 4; ++n) {
    auto g = cl.get(n, "before-0");
    REQUIRE(g);
    CHECK(g->found());
    auto h = cl.get(n, "from-n3");
    REQUIRE(h);
    CHECK(h->found());
  }
  auto removed = cl.remove_node("n1", "mesh", 2);
  REQUIRE(removed);
  CHECK_FALSE(cl.remove_node("n9"));
  REQUIRE(cl.put(0, "after-removal", "v"));
  REQUIRE(cl.wait_converged(std::chrono::seconds(20)));
  for (size_t n : {0, 2, 3}) {
    auto s = cl.status(n);
    REQUIRE(s);
    CHECK(s->topology.find("removed n1") != std::string::npos);
    CHECK(cl.get(n, "after-removal")->found());
  }
  CHECK(cl.members() == std::vector<std::string>{"n0", "n1", "n2", "n3"});
}

TEST_CASE("membership: two members added at the same moment at two nodes end with one "
          "membership everywhere, none routes by its own numbering meanwhile") {
  sim_cluster c;
  sim_network net(*c.sys, 31);
  auto checker = std::make_shared<invariant_checker>();
  c.start(sim_spec(topology::make_mesh(topology::default_names(3)), net, checker, 300ms));
  c.put(0, "before", "v");
  run_for(c, 300ms);
  cut_between(net, 0, 1, true); // n0 is cut off: n0 and n1 cannot learn the other's addition
  cut_between(net, 0, 2, true);
  c.run();
  queue_topology(c, 0, "members n0 n1 n2 a0\nmesh");
  queue_topology(c, 1, "members n0 n1 n2 b0\nmesh");
  c.run();
  c.take<messages::dot>();
  c.take<messages::dot>();
  run_for(c, 500ms);
  // Not stable yet (n0 and n1 cannot hear each other): nobody numbers a new member.
  for (auto& s : c.statuses()) {
    INFO("node " << s.node << " routes by:\n" << s.topology);
    CHECK(s.topology.find("a0") == std::string::npos);
    CHECK(s.topology.find("b0") == std::string::npos);
  }
  CHECK_FALSE(c.status(0).pending_topology.empty());
  cut_between(net, 0, 1, false);
  cut_between(net, 0, 2, false);
  run_for(c, 3s);
  auto all = c.statuses();
  auto members = all[0].topology.substr(0, all[0].topology.find('\n'));
  CHECK((members == "members n0 n1 n2 b0 a0" || members == "members n0 n1 n2 a0 b0"));
  for (auto& s : all) {
    INFO("node " << s.node << " routes by:\n" << s.topology);
    CHECK(s.topology.substr(0, s.topology.find('\n')) == members);
    CHECK(s.epoch == all[0].epoch);
    CHECK(s.pending_topology.empty());
  }
  CHECK(checker->violations().empty());
}

TEST_CASE("membership: a change written while an addition waits keeps the addition") {
  sim_cluster c;
  sim_network net(*c.sys, 32);
  auto checker = std::make_shared<invariant_checker>();
  c.start(sim_spec(topology::make_mesh(topology::default_names(4)), net, checker, 300ms));
  set_down(net, 4, 3, true); // n3 is away: nothing becomes stable, the addition waits
  c.run();
  queue_topology(c, 0, "members n0 n1 n2 n3 a0\nmesh");
  c.run();
  c.take<messages::dot>();
  run_for(c, 200ms);
  REQUIRE_FALSE(c.status(1).pending_topology.empty());
  // n1, which holds the waiting addition, removes n3 (written without a0: as an operator
  // would, from the membership they know).
  queue_topology(c, 1, "members n0 n1 n2 n3\nremoved n3\nmesh");
  c.run();
  c.take<messages::dot>();
  run_for(c, 2s);
  for (size_t n : {0, 1, 2}) {
    auto s = c.status(n);
    INFO("node " << n << " routes by:\n" << s.topology);
    CHECK(s.topology.rfind("members n0 n1 n2 n3 a0\nremoved n3\n", 0) == 0);
  }
  CHECK(checker->violations().empty());
}

TEST_CASE("removal is safe: a node removed under writes stops taking writes and reads with an "
          "error naming the removal, and every write acknowledged anywhere is on every live node") {
  sim_cluster c;
  sim_network net(*c.sys, 33);
  auto checker = std::make_shared<invariant_checker>();
  c.start(sim_spec(topology::make_mesh(topology::default_names(3)), net, checker, 300ms));
  std::vector<std::string> acked;
  std::vector<std::string> refused;
  auto round = [&](int r) {
    std::vector<std::pair<size_t, std::string>> sent;
    for (size_t n = 0; n < 3; ++n) {
      auto key = "w" + std::to_string(r) + "-at-" + std::to_string(n);
      (*c.self)->send(c.h.leaders[n], actors::put_atom::value, key, std::string("v"));
      sent.emplace_back(n, key);
    }
    c.run();
    // One writer per node: each node answers its own writes in order.
    for (auto& [n, key] : sent) {
      (void)n;
      (*c.self)->receive(
        [&, k = key](messages::dot&) { acked.push_back(k); },
        [&, k = key](caf::error& err) { refused.push_back(actors::from_caf(err).message); },
        caf::after(std::chrono::seconds(0)) >> [] {});
    }
    c.advance(20ms);
  };
  for (int r = 0; r < 10; ++r)
    round(r);
  queue_topology(c, 0, "members n0 n1 n2\nremoved n2\nmesh");
  c.run();
  c.take<messages::dot>(); // the removal's epoch; n2 learns it as the writes go on
  for (int r = 10; r < 20; ++r)
    round(r);
  run_for(c, 2s);
  REQUIRE_FALSE(refused.empty()); // n2's writes once it knew
  for (auto& why : refused)
    CHECK(why.find("this node was removed from the cluster") != std::string::npos);
  CHECK(refused.front().find("use a live member (n0, n1)") != std::string::npos);
  (*c.self)->send(c.h.leaders[2], actors::get_atom::value, std::string("w0-at-0"));
  c.run();
  bool read_refused = false;
  (*c.self)->receive([&](actors::get_result&) {}, [&](caf::error&) { read_refused = true; },
                     caf::after(std::chrono::seconds(0)) >> [] {});
  CHECK(read_refused);
  for (size_t n : {0, 1})
    for (auto& k : acked) {
      INFO("node " << n << " key " << k);
      CHECK(c.get(n, k).siblings.size() == 1); // nothing acknowledged is lost
    }
  CHECK(checker->violations().empty());
}
