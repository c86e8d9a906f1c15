#include "node_options.hpp"

#include "cluster_file.hpp"
#include "secret_file.hpp"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

namespace po = boost::program_options;

namespace mlr::apps {

int bad_input(const std::string& msg) {
  std::cerr << "mlr-node: " << msg << "\nRun 'mlr-node --help' for the options.\n";
  return 2;
}

// Who the node is, who its peers are, and how they are wired.
static void add_cluster_options(po::options_description& desc, node_options& o) {
  desc.add_options()("help,h", "print this help and exit")("id", po::value(&o.id),
                                                           "this node's id (required), e.g. n0")(
    "cluster", po::value(&o.cluster)->default_value(o.cluster),
    "the cluster's name; nodes of other clusters are refused")(
    "listen", po::value(&o.listen),
    "HOST:PORT where other nodes connect (required unless "
    "the cluster file gives it)")(
    "peer", po::value(&o.peers)->composing(),
    "ID=HOST:PORT of another node; repeat for each (or use --cluster-file)")(
    "cluster-file", po::value(&o.cluster_file),
    "a file listing the cluster's nodes, addresses and topology, the same for every node "
    "(lines: 'cluster NAME', 'topology T', 'hub ID', 'standby-hubs ID,ID', 'resolver R', "
    "'node ID HOST:PORT [client=HOST:PORT] [resp=HOST:PORT]')")(
    "config", po::value(&o.config_file),
    "read options from FILE ('name = value' lines, e.g. 'id = n0'); flags win")(
    "topology", po::value(&o.topology)->default_value(o.topology),
    "ring, mesh (or all-to-all), star, star:HUB, or an edge-list file ('a -> b' lines); "
    "the same on every node; `mlr topology set` takes the same words")(
    "hub", po::value(&o.hub), "the hub of a star (default: the first node)")(
    "standby-hubs", po::value(&o.standby_hubs),
    "ID,ID: for a star, where a spoke ships while the hub does not answer (the first that "
    "answers relays to every other spoke); it goes back to the hub once the hub answers. "
    "Without it a spoke ships to the other spokes in turn")(
    "hub-return", po::value(&o.hub_return)->default_value(o.hub_return),
    "when a star's hub fails: resume (spokes detour meanwhile; it takes its role back when "
    "it answers again) or spoke (the first standby hub makes itself the hub by a topology "
    "change, a new epoch; the old hub comes back as a spoke)")(
    "resolver", po::value(&o.resolver)->default_value(o.resolver),
    "lww (last writer wins), multi (keep siblings), max (largest number wins) or tags "
    "(merge comma-separated tags into their union)");
}

// Client ports and the secrets that guard them.
static void add_client_options(po::options_description& desc, node_options& o) {
  desc.add_options()("client-listen", po::value(&o.client_listen),
                     "HOST:PORT for the native client protocol (the mlr CLI); port 0: any free "
                     "port, named in the start-up line")(
    "resp-listen", po::value(&o.resp_listen),
    "HOST:PORT for Redis clients (redis-cli, redis-benchmark); port 0 as above")(
    "cluster-secret-file", po::value(&o.secret_file),
    "file whose contents (trailing newline ignored) is the shared secret; nodes prove "
    "they know it with an HMAC challenge. Without it anyone who can reach the port and "
    "knows a node id can join")(
    "client-secret-file", po::value(&o.client_secret_file),
    "file holding the secret clients must give first (RESP: AUTH or HELLO 3 AUTH, as "
    "redis-cli -a does; mlr: --secret-file). Without it clients are not authenticated and "
    "only loopback clients are served (protected mode)")(
    "requirepass", po::value(&o.requirepass),
    "the client secret itself, as in redis.conf (for --config files; --client-secret-file "
    "keeps it out of the process list)")(
    "admin-secret-file", po::value(&o.admin_secret_file),
    "file holding the secret for admin requests (mlr topology set: membership and "
    "topology changes), distinct from the client secret; without it they are refused. "
    "Every accepted or refused change is logged with the client's address")(
    "allow-unauthenticated-clients", po::bool_switch(&o.allow_unauthenticated),
    "serve clients from other hosts without a client secret (protected mode off)");
}

// Storage, timing, limits and test faults.
static void add_tuning_options(po::options_description& desc, node_options& o) {
  desc.add_options()(
    "data-dir", po::value(&o.data_dir),
    "keep the log, the key state and the node's metadata in a RocksDB store in DIR and "
    "resume from it after a restart (default: in memory; a restart then starts empty "
    "under a new incarnation)")(
    "sync", po::value(&o.sync)->default_value(o.sync),
    "with --data-dir, when a write is durable: always (fsync per applied batch), batch "
    "(group commit: one fsync per mailbox drain; clients acknowledged after it) or none "
    "(no fsync: a process crash loses nothing, a power loss can lose the latest writes)")(
    "log-level", po::value(&o.log_level)->default_value(o.log_level),
    "trace, debug, info, warn, error or off")(
    "threads", po::value(&o.threads)->default_value(o.threads), "actor worker threads")(
    "heartbeat-ms", po::value(&o.heartbeat_ms)->default_value(o.heartbeat_ms),
    "interval of heartbeats to each peer")(
    "peer-timeout-ms", po::value(&o.peer_timeout_ms)->default_value(o.peer_timeout_ms),
    "a peer silent this long is marked down (and redialled with backoff)")(
    "ack-timeout-ms", po::value(&o.ack_timeout_ms)->default_value(o.ack_timeout_ms),
    "a batch unacknowledged this long is shipped again")(
    "pull-grace-ms", po::value(&o.pull_grace_ms)->default_value(o.pull_grace_ms),
    "how long a gap in what this node knows exists may last before it pulls")(
    "handshake-timeout-ms",
    po::value(&o.handshake_timeout_ms)->default_value(o.handshake_timeout_ms),
    "a peer connection that has not proved it knows the cluster secret this long after it "
    "opened is closed; at most 64 connections may be unproven at once, each sending frames "
    "of at most 4 KiB")(
    "max-key-bytes", po::value(&o.max_key_bytes)->default_value(o.max_key_bytes),
    "largest key a client may write (64 KiB); a larger one is refused, naming its size")(
    "max-value-bytes", po::value(&o.max_value_bytes)->default_value(o.max_value_bytes),
    "largest value a client may write (16 MiB, at most 32 MiB so that every write fits a "
    "64 MiB frame); a larger one is refused at write time, naming its size and the limit. "
    "A request more than 1 MiB above it is refused as a protocol error before it is "
    "buffered, and the connection closed")(
    "fault", po::value(&o.fault),
    "fault injection for tests: leader-throws-on-key:KEY makes the leader throw when KEY "
    "is written (the process then exits with status 3); leader-stalls-on-key:KEY makes it "
    "sleep 11 s first (the client is told its write timed out and may still be applied)")(
    "log-retention", po::value(&o.log_retention)->default_value(o.log_retention),
    "log entries kept after they became stable (held by every node), so a peer that was "
    "away briefly catches up from the log; one further behind gets a state transfer")(
    "conflict-feed-records",
    po::value(&o.conflict_feed_records)->default_value(o.conflict_feed_records),
    "conflict records kept in the store for `mlr conflicts` (the oldest dropped first; 0 "
    "keeps none)")(
    "conflict-feed-mib", po::value(&o.conflict_feed_mib)->default_value(o.conflict_feed_mib),
    "about this many MiB of conflict records kept (the oldest dropped first); a record "
    "whose input values exceed a sixteenth of it keeps 1 KiB of each");
}

po::options_description make_options(node_options& o) {
  po::options_description desc(
    "mlr-node: one replicated leader per process. It accepts writes from clients and\n"
    "replicates them over TCP (Cap'n Proto framing) to the other nodes of its cluster,\n"
    "along the topology. Stop it with SIGTERM or SIGINT: links are flushed, then closed.\n\n"
    "Options");
  add_cluster_options(desc, o);
  add_client_options(desc, o);
  add_tuning_options(desc, o);
  return desc;
}

} // namespace mlr::apps

namespace mlr::apps {

namespace {

// The cluster file's settings, where no flag overrode them, and its nodes.
result<bool> merge_cluster_file(node_options& o, const po::variables_map& vm,
                                node::node_options& n) {
  auto cf = read_cluster_file(o.cluster_file);
  if (!cf)
    return cf.err();
  if (!o.peers.empty())
    return error{errc::invalid_argument, "use either --cluster-file or --peer, not both"};
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
  bool found = false;
  for (auto& c : cf->nodes) {
    n.members.push_back({c.id, c.peer_address});
    if (c.id != o.id)
      continue;
    found = true;
    if (o.client_listen.empty())
      o.client_listen = c.client_address;
    if (o.resp_listen.empty())
      o.resp_listen = c.resp_address;
  }
  if (!found && !o.id.empty())
    return error{errc::invalid_argument,
                 "node '" + o.id + "' is not in the cluster file " + o.cluster_file};
  return true;
}

// --id and --peer: the members are the sorted ids.
result<bool> members_from_peers(const node_options& o, node::node_options& n) {
  n.members.push_back({o.id, o.listen});
  for (auto& p : o.peers) {
    auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0)
      return error{errc::invalid_argument,
                   "--peer '" + p + "' must look like ID=HOST:PORT, e.g. n1=127.0.0.1:7001"};
    auto id = p.substr(0, eq);
    for (auto& m : n.members)
      if (m.id == id)
        return error{errc::invalid_argument,
                     "--peer names node '" + id + "' twice (or names this node)"};
    n.members.push_back({id, p.substr(eq + 1)});
  }
  std::sort(n.members.begin(), n.members.end(),
            [](const node::member& a, const node::member& b) { return a.id < b.id; });
  return true;
}

// Reads the secret in `file` (if one is named) into `out`.
result<bool> read_into(const std::string& file, std::string& out, const char* what) {
  if (file.empty())
    return true;
  auto s = read_secret(file, what);
  if (!s)
    return s.err();
  out = *s;
  return true;
}

result<bool> read_secrets(const node_options& o, node::node_options& n) {
  if (auto ok = read_into(o.secret_file, n.secret, "cluster secret"); !ok)
    return ok;
  if (!o.client_secret_file.empty() && !o.requirepass.empty())
    return error{errc::invalid_argument,
                 "give either --client-secret-file or requirepass, not both"};
  n.client_secret = o.requirepass;
  if (auto ok = read_into(o.client_secret_file, n.client_secret, "client secret"); !ok)
    return ok;
  return read_into(o.admin_secret_file, n.admin_secret, "admin secret");
}

std::vector<std::string> split_commas(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string id; std::getline(in, id, ',');)
    out.push_back(id);
  return out;
}

} // namespace

result<node::node_options> to_node_options(node_options& o, const po::variables_map& vm) {
  node::node_options n;
  if (o.id.empty())
    return error{errc::invalid_argument, "--id is required: the name of this node, e.g. --id n0"};
  auto members = o.cluster_file.empty() ? members_from_peers(o, n) : merge_cluster_file(o, vm, n);
  if (!members)
    return members.err();
  if (o.listen.empty() && o.cluster_file.empty())
    return error{errc::invalid_argument,
                 "--listen HOST:PORT is required (where the other nodes connect)"};
  if (auto ok = read_secrets(o, n); !ok)
    return ok.err();
  n.cluster = o.cluster;
  n.id = o.id;
  n.listen = o.listen;
  n.client_listen = o.client_listen;
  n.resp_listen = o.resp_listen;
  n.topology = o.topology;
  n.hub = o.hub;
  n.standby_hubs = split_commas(o.standby_hubs);
  n.hub_return = o.hub_return;
  n.resolver = o.resolver;
  n.allow_unauthenticated_clients = o.allow_unauthenticated;
  n.data_dir = o.data_dir;
  n.sync = o.sync;
  n.threads = o.threads;
  n.heartbeat = std::chrono::milliseconds(o.heartbeat_ms);
  n.peer_timeout = std::chrono::milliseconds(o.peer_timeout_ms);
  n.handshake_timeout = std::chrono::milliseconds(o.handshake_timeout_ms);
  n.ack_timeout = std::chrono::milliseconds(o.ack_timeout_ms);
  n.pull_grace = std::chrono::milliseconds(o.pull_grace_ms);
  n.max_key_bytes = o.max_key_bytes;
  n.max_value_bytes = o.max_value_bytes;
  n.log_retention = o.log_retention;
  n.conflict_feed_records = o.conflict_feed_records;
  // (bounded before the shift: node::start refuses what is out of range, naming it)
  n.conflict_feed_bytes = std::min<size_t>(o.conflict_feed_mib, size_t{1} << 40) << 20;
  return n;
}

} // namespace mlr::apps
