// mlr-node: one leader per process, replicating over TCP to the other nodes of its cluster.
// See `mlr-node --help`. Exit status: 0 after a clean stop (SIGTERM or SIGINT), 2 on bad
// flags or files, 1 when the node cannot start (a port in use, ...), 3 when its leader
// stopped while running (the log says why).

#include "actors/replication_link.hpp"
#include "client/native_client.hpp"
#include "cluster_file.hpp"
#include "core/graph.hpp"
#include "gateways/gateways.hpp"
#include "node_options.hpp"
#include "secret_file.hpp"
#include "storage/store.hpp"
#include "topology/wiring.hpp"

#include <boost/program_options.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <signal.h>
#include <sstream>
#include <thread>
#include <unistd.h>

namespace po = boost::program_options;
using namespace mlr;
using apps::bad_input;
using apps::make_options;
using apps::node_options;
using apps::read_secret;

namespace {

// Why an essential actor stopped (the leader or a resolver); set before SIGUSR1 is raised.
std::mutex fatal_mutex;
std::string fatal_reason;

// What --fault installs, so tests can see what the process does when its leader dies
// (it throws when a write to `key` is applied) or stalls (it sleeps 11 s first, longer
// than the gateways wait).
class fault_on_key : public actors::replica_observer {
public:
  fault_on_key(std::string key, bool stall) : key_(std::move(key)), stall_(stall) {}
  void on_apply(messages::node_index, const messages::event& e, bool) override {
    if (e.key != key_)
      return;
    if (stall_)
      std::this_thread::sleep_for(std::chrono::seconds(11));
    else
      throw std::runtime_error("fault injected by --fault: a write to '" + key_ + "'");
  }
  void on_handled(const actors::replica&) override {}

private:
  std::string key_;
  bool stall_;
};

} // namespace

int main(int argc, char** argv) {
  node_options o;
  auto desc = make_options(o);
  po::variables_map vm;
  std::vector<std::string> caf_args;
  try {
    auto parsed = po::command_line_parser(argc, argv).options(desc).allow_unregistered().run();
    po::store(parsed, vm);
    // Only CAF's own options pass through (e.g. --scheduler.max-throughput=...); any other
    // unknown flag is a typo the user should hear about.
    for (auto& u : po::collect_unrecognized(parsed.options, po::exclude_positional)) {
      if (u.rfind("--scheduler.", 0) == 0 || u.rfind("--middleman.", 0) == 0 ||
          u.rfind("--stream.", 0) == 0)
        caf_args.push_back(u);
      else
        return bad_input("unrecognised option '" + u + "'");
    }
    if (vm.count("config")) {
      std::ifstream cf(vm["config"].as<std::string>());
      if (!cf)
        return bad_input("cannot read config file '" + vm["config"].as<std::string>() + "'");
      po::store(po::parse_config_file(cf, desc), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    return bad_input(e.what());
  }
  if (vm.count("help")) {
    std::cout << desc
              << "\nExample (three nodes on one machine):\n"
                 "  mlr-node --id n0 --listen 127.0.0.1:7000 --peer n1=127.0.0.1:7001 "
                 "--peer n2=127.0.0.1:7002 --client-listen 127.0.0.1:7100\n";
    return 0;
  }
  auto level = spdlog::level::from_str(o.log_level);
  if (level == spdlog::level::off && o.log_level != "off")
    return bad_input("--log-level must be trace, debug, info, warn, error or off");
  spdlog::set_default_logger(spdlog::stderr_color_mt("mlr"));
  spdlog::set_level(level);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [" + (o.id.empty() ? "?" : o.id) + "] %v");

  // Membership: the cluster file's order, or the sorted ids from --id and --peer.
  std::vector<std::string> members;
  std::map<std::string, std::string> addresses;
  if (!o.cluster_file.empty()) {
    auto cf = apps::read_cluster_file(o.cluster_file);
    if (!cf)
      return bad_input(cf.err().message);
    if (!cf->cluster.empty() && vm["cluster"].defaulted())
      o.cluster = cf->cluster;
    if (!cf->topology.empty() && vm["topology"].defaulted())
      o.topology = cf->topology;
    if (!cf->hub.empty() && !vm.count("hub"))
      o.hub = cf->hub;
    if (!cf->standby_hubs.empty() && !vm.count("standby-hubs"))
      o.standby_hubs = cf->standby_hubs;
    if (!cf->hub_return.empty() && vm["hub-return"].defaulted())
      o.hub_return = cf->hub_return;
    if (!cf->resolver.empty() && vm["resolver"].defaulted())
      o.resolver = cf->resolver;
    for (auto& n : cf->nodes) {
      members.push_back(n.id);
      addresses[n.id] = n.peer_address;
      if (n.id == o.id) {
        if (o.listen.empty())
          o.listen = n.peer_address;
        if (o.client_listen.empty())
          o.client_listen = n.client_address;
        if (o.resp_listen.empty())
          o.resp_listen = n.resp_address;
      }
    }
    if (!o.peers.empty())
      return bad_input("use either --cluster-file or --peer, not both");
  } else {
    members.push_back(o.id);
    for (auto& p : o.peers) {
      auto eq = p.find('=');
      if (eq == std::string::npos || eq == 0)
        return bad_input("--peer '" + p + "' must look like ID=HOST:PORT, e.g. n1=127.0.0.1:7001");
      auto id = p.substr(0, eq);
      if (addresses.count(id) || id == o.id)
        return bad_input("--peer names node '" + id + "' twice (or names this node)");
      addresses[id] = p.substr(eq + 1);
      members.push_back(id);
    }
    std::sort(members.begin(), members.end());
  }
  if (o.id.empty())
    return bad_input("--id is required: the name of this node, e.g. --id n0");
  auto self_it = std::find(members.begin(), members.end(), o.id);
  if (self_it == members.end())
    return bad_input("node '" + o.id + "' is not in the cluster file " + o.cluster_file);
  auto self_index = static_cast<messages::node_index>(self_it - members.begin());
  if (o.listen.empty())
    return bad_input("--listen HOST:PORT is required (where the other nodes connect)");
  auto listen = client::parse_address(o.listen);
  if (!listen)
    return bad_input("--listen: " + listen.err().message);
  std::vector<actors::peer_address> peer_addresses(members.size());
  for (size_t i = 0; i < members.size(); ++i) {
    if (i == self_index)
      continue;
    auto a = client::parse_address(addresses[members[i]]);
    if (!a)
      return bad_input("address of node '" + members[i] + "': " + a.err().message);
    peer_addresses[i] = actors::peer_address{a->first, a->second};
  }
  if (o.max_value_bytes > (32u << 20) || o.max_key_bytes > (1u << 20))
    return bad_input("--max-value-bytes may be at most 33554432 (32 MiB) and --max-key-bytes "
                     "at most 1048576 (1 MiB): a write must fit the 64 MiB frames that "
                     "replicate it");
  if (!resolvers::builtin_resolver(o.resolver))
    return bad_input("--resolver must be lww, multi or max, got '" + o.resolver + "'");
  auto graph = topology::make_topology(o.topology, members, o.hub);
  if (!graph)
    return bad_input(graph.err().message);
  if (graph->names() != members)
    return bad_input("the topology file's nodes (" + std::to_string(graph->size()) +
                     ") are not the cluster's members; list the same ids");
  std::vector<messages::node_index> standby;
  for (size_t at = 0; !o.standby_hubs.empty() && at <= o.standby_hubs.size();) {
    auto comma = o.standby_hubs.find(',', at);
    auto id =
      o.standby_hubs.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    at = comma == std::string::npos ? o.standby_hubs.size() + 1 : comma + 1;
    auto i = graph->find(id);
    if (i < 0)
      return bad_input("--standby-hubs names '" + id + "', which is not a member");
    if (o.topology != "star")
      return bad_input("--standby-hubs is for a star topology; this one is " + o.topology);
    standby.push_back(static_cast<messages::node_index>(i));
  }
  if (o.hub_return != "resume" && o.hub_return != "spoke")
    return bad_input("--hub-return must be resume or spoke, got '" + o.hub_return + "'");
  if (o.hub_return == "spoke" && standby.empty())
    return bad_input("--hub-return spoke needs --standby-hubs: a standby takes the hub's role");
  if (auto ok = topology::validate(*graph); !ok)
    return bad_input(ok.err().message);
  std::string secret;
  if (!o.secret_file.empty()) {
    auto s = read_secret(o.secret_file);
    if (!s)
      return bad_input(s.err().message);
    secret = *s;
  } else {
    spdlog::warn("no --cluster-secret-file: any process that can reach {} and knows a node id "
                 "can join the cluster",
                 o.listen);
  }
  // Clients: a secret (Redis's requirepass), or loopback only (Redis's protected mode).
  actors::client_access access;
  if (!o.client_secret_file.empty() && !o.requirepass.empty())
    return bad_input("give either --client-secret-file or requirepass, not both");
  if (!o.client_secret_file.empty()) {
    auto s = read_secret(o.client_secret_file, "client secret");
    if (!s)
      return bad_input(s.err().message);
    access.client_secret = *s;
  } else {
    access.client_secret = o.requirepass;
  }
  if (!o.admin_secret_file.empty()) {
    auto s = read_secret(o.admin_secret_file, "admin secret");
    if (!s)
      return bad_input(s.err().message);
    access.admin_secret = *s;
  }
  if (!access.admin_secret.empty() && access.admin_secret == access.client_secret)
    return bad_input("the admin secret must differ from the client secret: whoever may write "
                     "data should not be able to change the cluster");
  access.allow_remote = o.allow_unauthenticated;
  auto loopback = [](const std::string& address) {
    auto host = address.substr(0, address.rfind(':'));
    return host.rfind("127.", 0) == 0 || host == "localhost" || host == "[::1]" || host == "::1";
  };
  for (auto* a : {&o.client_listen, &o.resp_listen})
    if (!a->empty() && !loopback(*a) && access.client_secret.empty() && !access.allow_remote)
      return bad_input("clients would reach " + *a +
                       " without a secret: give "
                       "--client-secret-file FILE (clients then authenticate, e.g. redis-cli "
                       "-a), or --allow-unauthenticated-clients to open it deliberately");
  actors::sync_policy sync;
  if (o.sync == "always")
    sync = actors::sync_policy::always;
  else if (o.sync == "batch")
    sync = actors::sync_policy::batch;
  else if (o.sync == "none")
    sync = actors::sync_policy::none;
  else
    return bad_input("--sync must be always, batch or none, got '" + o.sync + "'");
  std::optional<std::pair<std::string, uint16_t>> client_addr, resp_addr;
  if (!o.client_listen.empty()) {
    auto a = client::parse_address(o.client_listen);
    if (!a)
      return bad_input("--client-listen: " + a.err().message);
    client_addr = *a;
  }
  if (!o.resp_listen.empty()) {
    auto a = client::parse_address(o.resp_listen);
    if (!a)
      return bad_input("--resp-listen: " + a.err().message);
    resp_addr = *a;
  }

  // Block the stop signals before CAF starts threads, so only sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGUSR1); // an essential actor stopped (see the watcher below)
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  cfg.set("scheduler.max-threads", static_cast<int64_t>(o.threads));
  std::istringstream no_ini; // never read caf-application.ini implicitly
  caf_args.insert(caf_args.begin(), argv[0]);
  if (auto err = cfg.parse(caf_args, no_ini))
    return bad_input("CAF option: " + cfg.render(err));
  caf::actor_system sys{cfg};

  // The store, and the incarnation: a node keeps its incarnation only when it can prove it
  // holds every dot it ever issued (DESIGN.md): a durable store whose links ship only
  // synced entries (batch, always), or a clean shutdown under none.
  std::unique_ptr<storage::store> store = storage::make_memory_store();
  uint64_t incarnation = 0;
  if (!o.data_dir.empty()) {
    auto opened = storage::open_rocksdb_store(o.data_dir);
    if (!opened) {
      std::cerr << "mlr-node: " << opened.err().message
                << "\nIf the directory is damaged, move it away and start this node empty: "
                   "it takes a new incarnation and catches up from its peers.\n";
      return 1;
    }
    store = std::move(*opened);
    auto owner_cluster = store->get_meta("cluster");
    auto owner_node = store->get_meta("node_id");
    if (owner_cluster && owner_node && (*owner_cluster != o.cluster || *owner_node != o.id))
      return bad_input("data directory '" + o.data_dir + "' belongs to node '" + *owner_node +
                       "' of cluster '" + *owner_cluster + "', not to node '" + o.id +
                       "' of cluster '" + o.cluster +
                       "'; point --data-dir at this node's own directory");
    // Node indexes in version vectors come from the sorted membership: a directory written
    // under another membership would read them as other nodes.
    std::string joined;
    for (auto& m : members)
      joined += (joined.empty() ? "" : ",") + m;
    if (auto was = store->get_meta("members"); was && joined.compare(0, was->size(), *was) != 0)
      return bad_input("data directory '" + o.data_dir + "' was written by a cluster of members " +
                       *was + "; this start names " + joined +
                       ": node indexes would change. Start with the same members (new ones "
                       "may only sort after the old), or start this node with an empty directory");
    store->put_meta("members", joined);
    auto stored = store->get_meta("incarnation");
    bool clean = store->get_meta("clean") == std::optional<std::string>("1");
    if (stored && (sync != actors::sync_policy::none || clean))
      incarnation = std::strtoull(stored->c_str(), nullptr, 10);
    if (incarnation == 0)
      incarnation = actors::random_incarnation();
    else
      spdlog::info("resuming from {} under incarnation {:016x}", o.data_dir, incarnation);
    store->put_meta("cluster", o.cluster);
    store->put_meta("node_id", o.id);
    store->put_meta("incarnation", std::to_string(incarnation));
    store->put_meta("clean", "0");
    if (auto ok = store->commit(true); !ok) {
      std::cerr << "mlr-node: " << ok.err().message << "\n";
      return 1;
    }
  } else {
    incarnation = actors::random_incarnation(); // no durable state: a new one
  }
  auto trees = topology::spanning_trees(*graph);
  actors::leader_config lc;
  lc.replica.self = self_index;
  lc.replica.incarnation = incarnation;
  lc.replica.forward_to = topology::forwarding_table(trees, self_index);
  lc.replica.trees = trees;
  lc.out_edges = graph->successors(self_index);
  lc.route = topology::make_router(members, self_index, standby, /*require_addresses=*/true);
  // Members added at runtime: the topology key names where they listen; connect to them
  // and hand the leader their sinks. Runs on the leader's thread.
  struct runtime_members {
    std::mutex m;
    caf::actor_system* sys = nullptr;
    actors::transport* net = nullptr;
    actors::leader_actor leader;
  };
  auto rt = std::make_shared<runtime_members>();
  lc.on_routing = [rt](const actors::routing& r) {
    std::lock_guard<std::mutex> guard(rt->m);
    if (!rt->net)
      return; // not started yet, or stopping; the leader calls again with its peers
    bool added = false;
    for (size_t i = rt->net->sinks.size(); i < r.members.size(); ++i) {
      auto where = std::find_if(r.addresses.begin(), r.addresses.end(),
                                [&](auto& a) { return a.first == r.members[i]; });
      auto addr = where == r.addresses.end() ? result<std::pair<std::string, uint16_t>>(
                                                 error{errc::invalid_argument, "no 'address' line"})
                                             : client::parse_address(where->second);
      if (!addr) {
        spdlog::error("member {} added by the topology but cannot be reached: {}", r.members[i],
                      addr.err().message);
        break; // indexes must stay in order
      }
      actors::add_peer(*rt->sys, *rt->net, rt->leader, r.members[i],
                       actors::peer_address{addr->first, addr->second});
      added = true;
    }
    if (added)
      caf::anon_send(rt->leader, actors::peers_atom::value, rt->net->sinks);
  };
  if (o.hub_return == "spoke" && standby.front() == self_index) {
    auto hub = graph->find(o.hub.empty() ? members.front() : o.hub);
    lc.take_over_from = static_cast<messages::node_index>(hub);
    lc.take_over_spec = "star:" + o.id;
  }
  lc.relay_ack_timeout = std::chrono::milliseconds(o.ack_timeout_ms);
  lc.replica.pull_grace_ms = static_cast<uint64_t>(o.pull_grace_ms);
  lc.replica.new_incarnation = actors::random_incarnation;
  lc.sync = sync;
  lc.replica.log_retention = o.log_retention;
  lc.log = [](const std::string& line) { spdlog::info("{}", line); };
  if (!o.fault.empty()) {
    const std::string throws = "leader-throws-on-key:", stalls = "leader-stalls-on-key:";
    bool stall = o.fault.rfind(stalls, 0) == 0;
    if (!stall && o.fault.rfind(throws, 0) != 0)
      return bad_input("--fault must be leader-throws-on-key:KEY or leader-stalls-on-key:KEY, "
                       "got '" +
                       o.fault + "'");
    auto key = o.fault.substr((stall ? stalls : throws).size());
    lc.replica.observer = std::make_shared<fault_on_key>(key, stall);
    spdlog::warn("fault injection on: the leader {} when '{}' is written",
                 stall ? "stalls for 11 s" : "throws", key);
  }
  lc.max_key_bytes = o.max_key_bytes;
  lc.max_value_bytes = o.max_value_bytes;
  // A node whose leader stopped must not go on listening while every request fails: the
  // process exits non-zero with the reason, so a supervisor (systemd, Kubernetes) restarts
  // it, from its data directory when it has one.
  lc.on_failure = [](const std::string& what) {
    {
      std::lock_guard<std::mutex> guard(fatal_mutex);
      fatal_reason = what;
    }
    ::kill(::getpid(), SIGUSR1);
  };
  lc.make_resolver = resolvers::builtin_resolver(o.resolver);
  auto resolver = lc.make_resolver(sys);
  auto leader = actors::spawn_leader(sys, lc, std::move(store), resolver);
  actors::transport_config tc;
  tc.self = actors::node_identity{o.cluster, o.id, incarnation, secret, 2, 2, members};
  tc.self_index = self_index;
  tc.addresses = peer_addresses;
  tc.listen_host = listen->first;
  tc.listen_port = listen->second;
  tc.heartbeat_interval = std::chrono::milliseconds(o.heartbeat_ms);
  tc.peer_timeout = std::chrono::milliseconds(o.peer_timeout_ms);
  tc.handshake_timeout = std::chrono::milliseconds(o.handshake_timeout_ms);
  auto net = actors::start_transport(sys, tc, leader);
  std::vector<caf::actor> brokers;
  auto shutdown = [&](int code) {
    {
      std::lock_guard<std::mutex> guard(rt->m);
      rt->net = nullptr;
    }
    for (auto& b : brokers)
      caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(leader, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(resolver, caf::exit_reason::user_shutdown);
    return code;
  };
  if (!net) {
    spdlog::error("{}", net.err().message);
    return shutdown(1);
  }
  brokers.push_back(net->acceptor);
  for (auto& d : net->dialers)
    if (d)
      brokers.push_back(d);

  std::vector<actors::link_actor> links;
  for (auto to : graph->successors(self_index)) {
    actors::link_config link;
    link.from = self_index;
    link.to = to;
    link.ack_timeout = std::chrono::milliseconds(o.ack_timeout_ms);
    link.probe_interval = std::chrono::milliseconds(o.peer_timeout_ms / 2);
    link.detours = topology::detour_candidates(*graph, trees, self_index, to, standby);
    std::vector<actors::sink_actor> detour_sinks;
    for (auto d : link.detours)
      detour_sinks.push_back(net->sinks[d]);
    links.push_back(
      actors::spawn_replication_link(sys, link, leader, net->sinks[to], std::move(detour_sinks)));
  }
  {
    std::lock_guard<std::mutex> guard(rt->m);
    rt->sys = &sys;
    rt->net = &*net;
    rt->leader = leader;
  }
  caf::anon_send(leader, actors::peers_atom::value, net->sinks);

  actors::node_context ctx;
  ctx.cluster = o.cluster;
  ctx.node_id = o.id;
  ctx.members = members;
  ctx.incarnation = incarnation;
  ctx.topology = o.topology;
  ctx.resolver = o.resolver;
  ctx.leader = leader;
  ctx.acceptor = net->acceptor;
  ctx.dialers = net->dialers;
  ctx.max_key_bytes = o.max_key_bytes;
  ctx.max_value_bytes = o.max_value_bytes;
  ctx.access = access;
  std::string where = "peers on " + o.listen;
  if (client_addr) {
    auto g = actors::start_client_gateway(sys, ctx, client_addr->first, client_addr->second);
    if (!g) {
      spdlog::error("{}", g.err().message);
      return shutdown(1);
    }
    brokers.push_back(g->broker);
    where += ", clients on " + o.client_listen;
  }
  if (resp_addr) {
    auto g = actors::start_resp_gateway(sys, ctx, resp_addr->first, resp_addr->second);
    if (!g) {
      spdlog::error("{}", g.err().message);
      return shutdown(1);
    }
    brokers.push_back(g->broker);
    where += ", Redis clients on " + o.resp_listen;
  }
  spdlog::info("node {} of cluster '{}' ({} nodes, topology {}, resolver {}) listening: {}", o.id,
               o.cluster, members.size(), o.topology, o.resolver, where);
  if (access.client_secret.empty())
    spdlog::warn(access.allow_remote
                   ? "clients are not authenticated, and clients from any host are served "
                     "(--allow-unauthenticated-clients)"
                   : "clients are not authenticated (no --client-secret-file): serving "
                     "loopback clients only (protected mode)");
  if (access.admin_secret.empty())
    spdlog::info("no --admin-secret-file: topology and membership changes through the client "
                 "port are refused");

  int sig = 0;
  sigwait(&stop_signals, &sig);
  if (sig == SIGUSR1) {
    std::lock_guard<std::mutex> guard(fatal_mutex);
    spdlog::critical("{}; exiting (status 3) instead of serving requests that would all fail; "
                     "restart the node (from its data directory, if it has one)",
                     fatal_reason);
    return shutdown(3);
  }
  spdlog::info("stopping on {}: flushing links", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  // Flush: wait (up to 2 s) until every link has nothing in flight and has caught up.
  {
    caf::scoped_actor self{sys};
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (;;) {
      bool idle = true;
      uint64_t log_end = 0;
      self->request(leader, std::chrono::seconds(1), actors::status_atom::value)
        .receive([&](actors::node_status& s) { log_end = s.log_end; }, [](caf::error&) {});
      for (auto& l : links)
        self->request(l, std::chrono::seconds(1), actors::status_atom::value)
          .receive(
            [&](actors::link_status& s) { idle &= s.in_flight == 0 && s.acked_cursor >= log_end; },
            [&](caf::error&) {});
      if (idle || std::chrono::steady_clock::now() > deadline) {
        spdlog::info(idle ? "links flushed" : "links not flushed within 2 s; closing anyway");
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    self->request(leader, std::chrono::seconds(5), actors::shutdown_atom::value)
      .receive(
        [](bool ok) {
          if (!ok)
            spdlog::error("could not mark the store as cleanly shut down");
        },
        [](caf::error&) {});
  }
  return shutdown(0);
}
