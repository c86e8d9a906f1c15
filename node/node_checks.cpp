#include "node/detail/plan.hpp"

#include "client/native_client.hpp"
#include "resolvers/resolver.hpp"
#include "topology/text_file.hpp"

#include <algorithm>

namespace mlr::node::detail {

namespace {

error bad(std::string msg) {
  return error{errc::invalid_argument, std::move(msg)};
}

bool is_loopback(const std::string& address) {
  auto host = address.substr(0, address.rfind(':'));
  return host.rfind("127.", 0) == 0 || host == "localhost" || host == "[::1]" || host == "::1";
}

result<std::optional<address>> optional_address(const std::string& text, const char* what) {
  if (text.empty())
    return std::optional<address>{};
  // Port 0: any free port, chosen when the port opens (node::client_port() and
  // resp_port() say which).
  if (auto colon = text.rfind(':');
      colon != std::string::npos && colon > 0 && text.substr(colon + 1) == "0")
    return std::optional<address>{address{text.substr(0, colon), 0}};
  auto a = client::parse_address(text);
  if (!a)
    return bad(std::string(what) + ": " + a.err().message);
  return std::optional<address>{*a};
}

result<bool> check_members(const node_options& o, plan& p) {
  if (o.id.empty())
    return bad("id (--id) is required: the name of this node, e.g. n0");
  for (auto& m : o.members) {
    if (std::count(p.members.begin(), p.members.end(), m.id))
      return bad("member '" + m.id + "' is named twice");
    p.members.push_back(m.id);
  }
  auto self = std::find(p.members.begin(), p.members.end(), o.id);
  if (self == p.members.end())
    return bad("node '" + o.id + "' is not one of the members");
  p.self = static_cast<node_index>(self - p.members.begin());
  auto listen = o.listen.empty() ? o.members[p.self].peer_address : o.listen;
  if (listen.empty())
    return bad("listen (--listen HOST:PORT) is required: where the other nodes connect");
  auto l = client::parse_address(listen);
  if (!l)
    return bad("listen (--listen): " + l.err().message);
  p.listen = *l;
  p.peers.resize(p.members.size());
  for (size_t i = 0; i < o.members.size(); ++i) {
    if (i == p.self)
      continue;
    auto a = client::parse_address(o.members[i].peer_address);
    if (!a)
      return bad("address of node '" + o.members[i].id + "': " + a.err().message);
    p.peers[i] = actors::peer_address{a->first, a->second};
  }
  return true;
}

result<bool> check_topology(const node_options& o, plan& p) {
  auto g = core::make_topology(o.topology, p.members, o.hub, topology::read_text_file);
  if (!g)
    return bad(g.err().message);
  if (g->names() != p.members)
    return bad("the topology file's nodes (" + std::to_string(g->size()) +
               ") are not the cluster's members; list the same ids");
  auto hub = o.hub.empty() ? p.members.front() : o.hub;
  for (auto& id : o.standby_hubs) {
    if (id == hub)
      return bad("standby_hubs (--standby-hubs) names the hub '" + id +
                 "' itself; name the nodes that take over when it is lost");
    auto i = g->find(id);
    if (i < 0)
      return bad("standby_hubs (--standby-hubs) names '" + id + "', which is not a member");
    if (o.topology != "star")
      return bad("standby_hubs (--standby-hubs) are for a star topology; this one is " +
                 o.topology);
    p.standby.push_back(static_cast<node_index>(i));
  }
  if (o.hub_return != "resume" && o.hub_return != "spoke")
    return bad("hub_return (--hub-return) must be resume or spoke, got '" + o.hub_return + "'");
  if (o.hub_return == "spoke" && p.standby.empty())
    return bad(
      "hub_return spoke (--hub-return spoke) needs standby_hubs (--standby-hubs): a standby "
      "takes the hub's role");
  if (auto ok = core::validate(*g); !ok)
    return bad(ok.err().message);
  p.graph = std::move(*g);
  return true;
}

result<bool> check_clients(const node_options& o, plan& p) {
  if (!o.admin_secret.empty() && o.admin_secret == o.client_secret)
    return bad("the admin secret must differ from the client secret: whoever may write "
               "data should not be able to change the cluster");
  for (auto* a : {&o.client_listen, &o.resp_listen})
    if (!a->empty() && !is_loopback(*a) && o.client_secret.empty() &&
        !o.allow_unauthenticated_clients)
      return bad("clients would reach " + *a +
                 " without a secret: give client_secret (--client-secret-file FILE; clients "
                 "then authenticate, e.g. redis-cli -a), or set allow_unauthenticated_clients "
                 "(--allow-unauthenticated-clients) to open it deliberately");
  auto c = optional_address(o.client_listen, "client_listen (--client-listen)");
  if (!c)
    return c.err();
  p.client = *c;
  auto r = optional_address(o.resp_listen, "resp_listen (--resp-listen)");
  if (!r)
    return r.err();
  p.resp = *r;
  return true;
}

} // namespace

result<plan> check(const node_options& o) {
  plan p;
  if (auto ok = check_members(o, p); !ok)
    return ok.err();
  if (o.max_value_bytes > (32u << 20) || o.max_key_bytes > (1u << 20))
    return bad(
      "max_value_bytes (--max-value-bytes) may be at most 33554432 (32 MiB) and max_key_bytes "
      "(--max-key-bytes) at most "
      "1048576 (1 MiB): a write must fit the 64 MiB frames that replicate it");
  if (o.conflict_feed_bytes < (1u << 20) || o.conflict_feed_bytes > (uint64_t{1} << 40))
    return bad("conflict_feed_bytes (--conflict-feed-mib) must be from 1 MiB to 1 TiB, got " +
               std::to_string(o.conflict_feed_bytes) + " bytes");
  if (!resolvers::builtin_resolver(o.resolver))
    return bad("resolver (--resolver) must be lww, multi, max or tags, got '" + o.resolver + "'");
  if (auto ok = check_topology(o, p); !ok)
    return ok.err();
  if (auto ok = check_clients(o, p); !ok)
    return ok.err();
  if (o.sync == "always")
    p.sync = actors::sync_policy::always;
  else if (o.sync == "batch")
    p.sync = actors::sync_policy::batch;
  else if (o.sync == "none")
    p.sync = actors::sync_policy::none;
  else
    return bad("sync (--sync) must be always, batch or none, got '" + o.sync + "'");
  return p;
}

// The store, and the incarnation: a node keeps its incarnation only when it can prove it
// holds every dot it ever issued (DESIGN.md): a durable store whose links ship only synced
// entries (batch, always), or a clean shutdown under none.
result<opened_store> open_store(const node_options& o, const plan& p, const actors::logger& log) {
  if (o.data_dir.empty())
    return opened_store{storage::make_memory_store(), actors::random_incarnation()};
  auto opened = storage::open_rocksdb_store(o.data_dir);
  if (!opened)
    return error{errc::refused, opened.err().message +
                                  "\nIf the directory is damaged, move it away and start this "
                                  "node empty: it takes a new incarnation and catches up from "
                                  "its peers."};
  auto& store = *opened;
  auto owner_cluster = store->get_meta("cluster");
  auto owner_node = store->get_meta("node_id");
  if (owner_cluster && owner_node && (*owner_cluster != o.cluster || *owner_node != o.id))
    return bad("data directory '" + o.data_dir + "' belongs to node '" + *owner_node +
               "' of cluster '" + *owner_cluster + "', not to node '" + o.id + "' of cluster '" +
               o.cluster + "'; point data_dir (--data-dir) at this node's own directory");
  // Node indexes in version vectors come from the membership's order: a directory written
  // under another membership would read them as other nodes.
  std::string joined;
  for (auto& m : p.members)
    joined += (joined.empty() ? "" : ",") + m;
  if (auto was = store->get_meta("members"); was && joined.compare(0, was->size(), *was) != 0)
    return bad("data directory '" + o.data_dir + "' was written by a cluster of members " + *was +
               "; this start names " + joined +
               ": node indexes would change. Start with the same members (new ones may only "
               "sort after the old), or start this node with an empty directory");
  store->put_meta("members", joined);
  uint64_t incarnation = 0;
  auto stored = store->get_meta("incarnation");
  bool clean = store->get_meta("clean") == std::optional<std::string>("1");
  if (stored && (p.sync != actors::sync_policy::none || clean))
    incarnation = std::strtoull(stored->c_str(), nullptr, 10);
  if (incarnation == 0)
    incarnation = actors::random_incarnation();
  else
    log.info("resuming from {} under incarnation {:016x}", o.data_dir, incarnation);
  store->put_meta("cluster", o.cluster);
  store->put_meta("node_id", o.id);
  store->put_meta("incarnation", std::to_string(incarnation));
  store->put_meta("clean", "0");
  if (auto ok = store->commit(true); !ok)
    return error{errc::storage_full, ok.err().message};
  return opened_store{std::move(store), incarnation};
}

} // namespace mlr::node::detail
