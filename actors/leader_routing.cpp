// The leader's routing side: the topology key turned into routing and links, links spawned
// for relays and new out-edges, and the log lines for topology and state-transfer events.

#include "actors/detail/leader_impl.hpp"
#include "actors/replication_link.hpp"

#include <caf/actor_system.hpp>

namespace mlr::actors::detail {

// A link to a node that is not one of this node's out-edges, for entries it forwards
// while relaying for a node that stopped answering (a star's standby hub shipping to the
// other spokes).
void leader_impl::spawn_relay_link(messages::node_index dest) {
  if (dest == cfg_.replica.self || dest >= peers_.size() || !peers_[dest] ||
      link_dests_.count(dest))
    return;
  log("relaying: a link to node " + std::to_string(dest) + " starts");
  spawn_link(dest, {});
}

void leader_impl::spawn_link(messages::node_index dest,
                             const std::vector<messages::node_index>& detours) {
  link_dests_.insert(dest);
  link_config lc;
  lc.from = cfg_.replica.self;
  lc.to = dest;
  lc.ack_timeout = cfg_.relay_ack_timeout;
  std::vector<sink_actor> detour_sinks;
  for (auto d : detours)
    if (d < peers_.size() && peers_[d]) {
      lc.detours.push_back(d);
      detour_sinks.push_back(peers_[d]);
    }
  spawn_replication_link(system(), lc, caf::actor_cast<leader_actor>(this), peers_[dest],
                         std::move(detour_sinks));
}

// `spec` with its 'members' line replaced by `members`, and its 'address' lines for anyone
// else left out.
static std::string with_members(const std::string& spec, const std::vector<std::string>& members) {
  std::string out = "members";
  for (auto& m : members)
    out += " " + m;
  out += "\n";
  size_t start = 0;
  while (start <= spec.size()) {
    auto end = spec.find('\n', start);
    if (end == std::string::npos)
      end = spec.size();
    auto line = spec.substr(start, end - start);
    start = end + 1;
    if (line.rfind("members", 0) == 0)
      continue;
    if (line.rfind("address ", 0) == 0) {
      auto name = line.substr(8, line.find(' ', 8) - 8);
      if (std::find(members.begin(), members.end(), name) == members.end())
        continue;
    }
    out += line + "\n";
  }
  return out;
}

// The topology key changed: route by it, and open links for its new out-edges.
//
// A topology that adds members waits until its epoch is stable (every live member holds
// it, and nothing concurrent with it can still arrive): node indexes are never reused or
// changed, so every node must number the new members alike, and only once every
// concurrent addition has arrived is the merged membership the same everywhere (two
// members added at the same moment at two nodes). Removals and shape changes apply at once.
void leader_impl::apply_topology(const std::string& spec) {
  if (!cfg_.route)
    return;
  auto r = cfg_.route(spec, current_routing_ ? &*current_routing_ : nullptr);
  if (!r) {
    log("topology epoch " + epoch_name() + " ignored: " + r.err().message);
    pending_topology_.reset();
    return;
  }
  auto members_now =
    current_routing_ ? current_routing_->members.size() : cfg_.replica.forward_to.size();
  auto epoch = replica_.epoch();
  if (r->members.size() > members_now && epoch && !replica_.stable().covers(*epoch)) {
    if (pending_topology_ != spec)
      log("topology epoch " + epoch_name() +
          " adds members: routing by it once every live "
          "member holds it");
    pending_topology_ = spec;
    // Meanwhile route by the rest of it (removals above all: stability itself may wait
    // for a member that this very change removes).
    std::vector<std::string> members(r->members.begin(),
                                     r->members.begin() + static_cast<long>(members_now));
    if (auto interim =
          cfg_.route(with_members(spec, members), current_routing_ ? &*current_routing_ : nullptr))
      route_by(*interim);
    return;
  }
  pending_topology_.reset();
  route_by(*r);
}

void leader_impl::route_by(const routing& r) {
  if (current_routing_ && current_routing_->canonical == r.canonical)
    return; // already routing by it (the interim routing of a pending addition)
  replica_.set_routing(r);
  current_routing_ = r;
  if (cfg_.on_routing)
    cfg_.on_routing(r);
  topology_ = r.canonical;
  wanted_links_ = r.links;
  log("topology epoch " + epoch_name() + ": " + std::to_string(r.links.size()) +
      " links out of this node");
  ensure_links();
}

void leader_impl::ensure_links() {
  if (peers_.empty())
    return;
  for (auto& [dest, detours] : wanted_links_)
    if (dest != cfg_.replica.self && dest < peers_.size() && peers_[dest] &&
        !link_dests_.count(dest))
      spawn_link(dest, detours);
}

std::string leader_impl::epoch_name() {
  auto e = replica_.epoch();
  return e ? messages::to_string(*e) : std::string("static");
}

// Writes the topology key (validated first); the dot is the new epoch.
result<dot> leader_impl::write_topology(const std::string& spec) {
  if (!cfg_.route)
    return error{errc::refused, "this node cannot change its topology"};
  if (auto err = removed_error())
    return from_caf(*err);
  // Relative to a pending addition, if any: the new value must keep the members it adds
  // (this write replaces it), or they would be lost.
  std::optional<routing> base = current_routing_;
  if (pending_topology_)
    if (auto p = cfg_.route(*pending_topology_, base ? &*base : nullptr))
      base = *p;
  auto r = cfg_.route(spec, base ? &*base : nullptr);
  if (!r)
    return r.err();
  if (!store_error_.empty())
    return error{errc::storage_full, "write refused: " + store_error_};
  auto d = replica_.write(write_request{topology_key, messages::op_kind::put, r->stored, false, {}},
                          now());
  execute();
  return d;
}

void leader_impl::log(const std::string& line) {
  if (cfg_.log)
    cfg_.log(line);
}

} // namespace mlr::actors::detail
