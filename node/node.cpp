// The node assembly: one options value in, a running node out (store, leader and
// resolver, links, peer transport, client ports), and its orderly stop.

#include "node/detail/node_impl.hpp"

#include "storage/store.hpp"

#include <caf/io/middleman.hpp>

#include <algorithm>
#include <sstream>
#include <thread>

namespace mlr::node {

void runtime_members::on_routing(const core::routing& r) {
  std::lock_guard<std::mutex> guard(m);
  if (!net)
    return; // not started yet, or stopping; the leader calls again with its peers
  bool added = false;
  for (size_t i = net->sinks.size(); i < r.members.size(); ++i) {
    auto where = std::find_if(r.addresses.begin(), r.addresses.end(),
                              [&](auto& a) { return a.first == r.members[i]; });
    auto addr = where == r.addresses.end()
                  ? result<address>(error{errc::invalid_argument, "no 'address' line"})
                  : client::parse_address(where->second);
    if (!addr) {
      log.error("member {} added by the topology but cannot be reached: {}", r.members[i],
                addr.err().message);
      break; // indexes must stay in order
    }
    actors::add_peer(*sys, *net, leader, r.members[i],
                     actors::peer_address{addr->first, addr->second});
    added = true;
  }
  if (added)
    caf::anon_send(leader, actors::peers_atom::value, net->sinks);
}

actors::leader_config node::impl::leader_config(topology::out_links& links) const {
  actors::leader_config lc;
  lc.replica.self = p.self;
  lc.replica.incarnation = incarnation;
  auto trees = core::spanning_trees(p.graph);
  links = topology::set_static_routing(lc, p.graph, trees, p.self, p.standby, opts.hub_return,
                                       /*require_addresses=*/true);
  lc.on_routing = [rt = rt](const core::routing& r) { rt->on_routing(r); };
  lc.relay_ack_timeout = opts.ack_timeout;
  lc.replica.pull_grace_ms = static_cast<uint64_t>(opts.pull_grace.count());
  lc.replica.new_incarnation = actors::random_incarnation;
  lc.replica.log_retention = opts.log_retention;
  lc.replica.observer = opts.observer;
  lc.replica.sync = p.sync;
  lc.log = [log = log](const std::string& line) { log.info("{}", line); };
  lc.max_key_bytes = opts.max_key_bytes;
  lc.max_value_bytes = opts.max_value_bytes;
  lc.max_watch_backlog = opts.max_watch_backlog;
  // A leader that failed (it threw, or its store broke) must not be asked to mark the
  // store as cleanly shut down: stop() then only stops the actors.
  lc.on_failure = [failed = failed, user = opts.on_failure](const std::string& why) {
    failed->store(true);
    if (user)
      user(why);
  };
  lc.make_resolver = resolvers::builtin_resolver(opts.resolver);
  lc.resolver_name = opts.resolver;
  lc.replica.conflict_feed_records = opts.conflict_feed_records;
  lc.replica.conflict_feed_bytes = opts.conflict_feed_bytes;
  return lc;
}

result<bool> node::impl::start_system() {
  cfg = std::make_unique<caf::actor_system_config>();
  cfg->load<caf::io::middleman>();
  cfg->set("scheduler.max-threads", static_cast<int64_t>(opts.threads));
  std::istringstream no_ini; // never read caf-application.ini implicitly
  auto args = opts.caf_args;
  args.insert(args.begin(), "mlr-node");
  if (auto err = cfg->parse(args, no_ini))
    return error{errc::invalid_argument, "CAF option: " + cfg->render(err)};
  sys = std::make_unique<caf::actor_system>(*cfg);
  return true;
}

result<bool> node::impl::start_transport() {
  actors::transport_config tc;
  tc.self = actors::node_identity{opts.cluster, opts.id, incarnation, opts.secret, 2, 2, p.members};
  tc.self_index = p.self;
  tc.addresses = p.peers;
  tc.listen_host = p.listen.first;
  tc.listen_port = p.listen.second;
  tc.heartbeat_interval = opts.heartbeat;
  tc.log = log;
  tc.peer_timeout = opts.peer_timeout;
  tc.handshake_timeout = opts.handshake_timeout;
  auto started = actors::start_transport(*sys, tc, leader);
  if (!started)
    return started.err();
  net = std::move(*started);
  brokers.push_back(caf::actor_cast<caf::actor>(net->acceptor));
  for (auto& d : net->dialers)
    if (d)
      brokers.push_back(caf::actor_cast<caf::actor>(d));
  dialers_at_start = net->dialers.size();
  actors::link_config base;
  base.ack_timeout = opts.ack_timeout;
  base.probe_interval = opts.peer_timeout / 2;
  links = topology::spawn_links(*sys, base, p.self, out_links, leader,
                                [&](node_index d) { return net->sinks[d]; });
  {
    std::lock_guard<std::mutex> guard(rt->m);
    rt->sys = sys.get();
    rt->net = &*net;
    rt->leader = leader;
  }
  caf::anon_send(leader, actors::peers_atom::value, net->sinks);
  return true;
}

result<bool> node::impl::start_gateways() {
  actors::node_context ctx;
  ctx.cluster = opts.cluster;
  ctx.node_id = opts.id;
  ctx.members = p.members;
  ctx.incarnation = incarnation;
  ctx.topology = opts.topology;
  ctx.resolver = opts.resolver;
  ctx.leader = leader;
  ctx.acceptor = net->acceptor;
  ctx.dialers = net->dialers;
  ctx.max_key_bytes = opts.max_key_bytes;
  ctx.max_value_bytes = opts.max_value_bytes;
  ctx.log = log;
  ctx.access = actors::client_access{opts.client_secret, opts.admin_secret,
                                     opts.allow_unauthenticated_clients};
  where = "peers on " + p.listen.first + ":" + std::to_string(net->port);
  if (p.client) {
    auto g = actors::start_client_gateway(*sys, ctx, p.client->first, p.client->second);
    if (!g)
      return g.err();
    brokers.push_back(caf::actor_cast<caf::actor>(g->broker));
    client_port = g->port;
    where += ", clients on " + p.client->first + ":" + std::to_string(g->port);
  }
  if (p.resp) {
    auto g = actors::start_resp_gateway(*sys, ctx, p.resp->first, p.resp->second);
    if (!g)
      return g.err();
    brokers.push_back(caf::actor_cast<caf::actor>(g->broker));
    resp_port = g->port;
    where += ", Redis clients on " + p.resp->first + ":" + std::to_string(g->port);
  }
  return true;
}

void node::impl::flush_links(caf::scoped_actor& self, std::chrono::milliseconds flush) {
  auto deadline = std::chrono::steady_clock::now() + flush;
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
      log.info(idle ? "links flushed" : "links not flushed within {} ms; closing anyway",
               flush.count());
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void node::impl::stop(std::chrono::milliseconds flush) {
  if (stopped || !sys)
    return;
  stopped = true;
  if (leader && !failed->load()) {
    caf::scoped_actor self{*sys};
    if (flush.count() > 0)
      flush_links(self, flush);
    self->request(leader, std::chrono::seconds(5), actors::shutdown_atom::value)
      .receive(
        [this](bool ok) {
          if (!ok)
            log.error("could not mark the store as cleanly shut down");
        },
        [](caf::error&) {});
  }
  kill();
}

void node::impl::kill() {
  {
    // The transport's brokers, with the dialers of members added at runtime (the actor
    // system waits for every actor when it is destroyed).
    std::lock_guard<std::mutex> guard(rt->m);
    rt->net = nullptr;
    // The leader's on_routing holds rt: rt must not hold the leader, or neither is freed.
    rt->leader = nullptr;
    rt->sys = nullptr;
    // Dialers of members added at runtime are in net only (brokers has the acceptor and
    // the dialers of the members at start); each broker gets one exit message.
    if (net)
      for (auto i = dialers_at_start; i < net->dialers.size(); ++i)
        if (net->dialers[i])
          brokers.push_back(caf::actor_cast<caf::actor>(net->dialers[i]));
  }
  for (auto& b : brokers)
    caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
  for (auto& l : links)
    caf::anon_send_exit(l, caf::exit_reason::user_shutdown);
  if (leader)
    caf::anon_send_exit(leader, caf::exit_reason::user_shutdown);
  if (resolver)
    caf::anon_send_exit(resolver, caf::exit_reason::user_shutdown);
  for (auto& [id, w] : watchers)
    caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
  watchers.clear();
  if (sys) {
    caf::scoped_actor self{*sys};
    for (auto& b : brokers)
      self->wait_for(b);
  }
  stopped = true;
}

node::node(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

node::~node() {
  if (impl_)
    impl_->stop(std::chrono::milliseconds(0));
}

result<std::unique_ptr<node>> node::start(node_options o) {
  auto p = detail::check(o);
  if (!p)
    return p.err();
  auto s = std::make_unique<impl>();
  if (o.log)
    s->log.sink = [f = o.log](actors::log_level level, const std::string& line) {
      f(level == actors::log_level::info   ? "info"
        : level == actors::log_level::warn ? "warn"
                                           : "error",
        line);
    };
  s->rt->log = s->log;
  s->opts = std::move(o);
  s->p = std::move(*p);
  if (s->opts.secret.empty())
    s->log.warn("no cluster secret: any process that can reach {}:{} and knows a node id can "
                "join the cluster",
                s->p.listen.first, s->p.listen.second);
  if (auto ok = s->start_system(); !ok)
    return ok.err();
  auto store = detail::open_store(s->opts, s->p, s->log);
  if (!store)
    return store.err();
  s->incarnation = store->incarnation;
  auto member =
    topology::spawn_member(*s->sys, s->leader_config(s->out_links), std::move(store->store));
  if (!member)
    return member.err();
  s->leader = member->leader;
  s->resolver = member->resolver;
  // A port that cannot be opened (in use, not this host's) is a failure to start, not bad
  // options: the same options may work once the port is free.
  if (auto ok = s->start_transport(); !ok) {
    s->kill();
    return error{errc::refused, ok.err().message};
  }
  if (auto ok = s->start_gateways(); !ok) {
    s->kill();
    return error{errc::refused, ok.err().message};
  }
  auto& opts = s->opts;
  if (opts.client_secret.empty())
    s->log.warn(opts.allow_unauthenticated_clients
                  ? "clients are not authenticated, and clients from any host are served "
                    "(allow unauthenticated clients)"
                  : "clients are not authenticated (no client secret): serving loopback "
                    "clients only (protected mode)");
  if (opts.admin_secret.empty())
    s->log.info("no admin secret: topology and membership changes through the client port "
                "are refused");
  return std::unique_ptr<node>(new node(std::move(s)));
}

void node::stop(std::chrono::milliseconds flush) {
  impl_->stop(flush);
}

} // namespace mlr::node
