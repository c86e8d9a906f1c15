// Applying events: the per-key rule (a write replaces what its context names, concurrent
// versions stay siblings), forwarding along the spanning trees, resolutions, and the keys
// the cluster keeps for itself (the topology). Part of the replica (replica.hpp).

#include "core/replica.hpp"

#include "core/router.hpp"
#include "core/typed.hpp"
#include "storage/serialize.hpp"

#include <algorithm>
#include <sstream>

namespace mlr::core {

using messages::dot;
using messages::event;
using messages::version;

namespace {

bool contains(const std::vector<dot>& xs, const dot& d) {
  return std::find(xs.begin(), xs.end(), d) != xs.end();
}

// Concurrent topology writes: the last writer's shape wins, but memberships merge, so that
// a node added at one node and a node removed at another, at the same time, both happen:
// members are the winner's list plus, in dot order, the names only a loser lists; removed
// is the union. Deterministic in the set of versions, so every node reaches the same value.
std::string merge_topologies(const version& winner, std::vector<version> losers) {
  std::sort(losers.begin(), losers.end(), messages::lww_before);
  std::vector<std::string> members;
  std::set<std::string> removed;
  std::vector<std::pair<std::string, std::string>> addresses;
  std::string body;
  auto read = [&](const std::string& value, bool keep_body) {
    auto lines = split_topology(value);
    for (auto& listed : lines.members)
      for (auto& m : listed)
        if (std::find(members.begin(), members.end(), m) == members.end())
          members.push_back(m);
    for (auto& r : lines.removed)
      removed.insert(r.begin(), r.end());
    for (auto& w : lines.addresses)
      if (w.size() == 2 && std::none_of(addresses.begin(), addresses.end(),
                                        [&](auto& a) { return a.first == w[0]; }))
        addresses.emplace_back(w[0], w[1]);
    if (!keep_body)
      return;
    std::istringstream shape(lines.shape);
    for (std::string line; std::getline(shape, line);)
      if (!line.empty())
        body += line + "\n";
  };
  read(winner.value, true);
  for (auto& l : losers)
    read(l.value, false);
  if (members.empty())
    return winner.value;
  std::string out = "members";
  for (auto& m : members)
    out += " " + m;
  out += "\n";
  if (!removed.empty()) {
    out += "removed";
    for (auto& m : members)
      if (removed.count(m))
        out += " " + m;
    out += "\n";
  }
  for (auto& [name, where] : addresses)
    out += "address " + name + " " + where + "\n";
  return out + body;
}

} // namespace

void replica::reduce_reserved(const std::string& key, std::vector<version>& live) {
  if (live.size() > 1) {
    auto win = std::max_element(live.begin(), live.end(), messages::lww_before);
    auto winner = *win;
    if (key == topology_key && !winner.tombstone) {
      std::vector<version> losers;
      for (auto& v : live)
        if (v.id != winner.id && !v.tombstone)
          losers.push_back(v);
      winner.value = merge_topologies(winner, std::move(losers));
    }
    live = {winner};
  }
  if (key != topology_key || live.empty() || live[0].tombstone)
    return;
  if (!epoch_ || *epoch_ != live[0].id || topology_value_ != live[0].value) {
    epoch_ = live[0].id;
    epoch_time_ = live[0].time;
    topology_value_ = live[0].value;
    topology_update_ = live[0].value;
  }
}

void replica::release_buffered(std::vector<conflict>& conflicts) {
  while (auto next = buffer_.release_ready(applied_, retired_))
    apply_remote(std::move(*next), conflicts);
}

void replica::apply_remote(event e, std::vector<conflict>& conflicts) {
  ++stats_.applied_remote;
  if (cfg_.observer)
    cfg_.observer->on_apply(cfg_.self, e, false);
  apply(std::move(e), conflicts);
}

void replica::apply(event e, std::vector<conflict>& conflicts) {
  if (applied_.covers(e.id))
    throw std::logic_error("replica: event " + messages::to_string(e.id) + " applied twice");
  // Versions named in the context are replaced; any other live register version is
  // concurrent (typed keys merge by their own rules, typed.hpp).
  static const std::vector<version> none;
  auto* current = store_->find(e.key);
  bool concurrent = false;
  auto live = typed::apply(current ? *current : none, e, concurrent);
  // A typed write whose context named some of a merge's inputs dropped the merge: the
  // rest go to the resolver again, as after a register write.
  concurrent |= current && typed::merged(*current) && typed::needs_resolver(live);
  applied_.advance(e.id);
  if (e.op == messages::op_kind::del)
    tombstoned_.insert(e.key);
  bool reserved = e.key.compare(0, reserved_key_prefix.size(), reserved_key_prefix) == 0;
  if (reserved) {
    reduce_reserved(e.key, live);
    concurrent = false;
  }
  if (concurrent) {
    ++stats_.conflicts;
    conflicts.push_back(conflict{e.key, typed::registers(live)});
  }
  std::vector<text_edit> edits;
  if (!reserved)
    apply_text(e, edits);
  if (report_changes_ && !reserved) {
    ready_.changes.push_back(typed::describe(e, live));
    ready_.changes.back().edits = std::move(edits);
  }
  if (live.empty())
    store_->erase(e.key);
  else
    store_->assign(e.key, std::move(live));
  if (e.op == messages::op_kind::put &&
      e.key.compare(0, reserved_key_prefix.size() + 8, reserved_key_prefix + "retired:") == 0) {
    if (auto table = storage::deserialize_version_vector(e.value)) {
      table->erase(e.id.origin); // never the incarnation that wrote it
      fold(*table);
    }
  }

  // Stamp seen-by with this node and everything it forwards to, and remember whom the
  // links ship this entry to: the origin tree's children that had not seen it yet.
  storage::log_entry entry;
  auto origin = e.id.origin.node;
  if (origin < cfg_.forward_to.size())
    for (auto child : cfg_.forward_to[origin])
      if (!e.seen.contains(child) && child != cfg_.self)
        entry.forward.insert(child);
  // Arrived on a detour around a node that stopped answering: forward it as that node
  // would have, too.
  if (e.relay_for != messages::no_node && origin < cfg_.trees.size() &&
      e.relay_for < cfg_.trees[origin].size())
    for (auto child : cfg_.trees[origin][e.relay_for])
      if (!e.seen.contains(child) && child != cfg_.self && child != e.relay_for) {
        entry.forward.insert(child);
        if (!relay_dests_reported_.count(child))
          relay_dests_.insert(child);
      }
  e.relay_for = messages::no_node;
  e.seen.insert(cfg_.self);
  e.seen.merge(entry.forward);
  index_position(e.id, store_->log_end());
  entry.ev = std::move(e);
  store_->append(std::move(entry));
}

bool replica::resolve(const conflict& c, const std::vector<dot>& keep, const decided_by& by) {
  auto* current = store_->find(c.key);
  bool again = false;
  if (current) {
    std::vector<version> next;
    for (auto& v : *current) {
      bool was_input = v.kind == messages::value_kind::reg &&
                       std::any_of(c.versions.begin(), c.versions.end(),
                                   [&](const version& in) { return in.id == v.id; });
      if (!was_input || contains(keep, v.id))
        next.push_back(v);
    }
    typed::drop_stale_merge(*current, next);
    // Versions that came after the question stay beside what was kept: unless exactly the
    // kept ones remain, the resolver is asked about what the key holds now.
    auto regs = typed::registers(next);
    again = typed::needs_resolver(next) &&
            !(regs.size() == keep.size() &&
              std::all_of(regs.begin(), regs.end(), [&](auto& v) { return contains(keep, v.id); }));
    if (again)
      ready_.conflicts.push_back(conflict{c.key, regs});
    // A selection that dropped versions changes what reads show (siblings, or a merge).
    if (report_changes_ && next.size() != current->size() &&
        c.key.compare(0, reserved_key_prefix.size(), reserved_key_prefix) != 0)
      ready_.changes.push_back(typed::describe_state(c.key, "resolved", next));
    store_->assign(c.key, std::move(next));
  }
  auto r = resolved_record(c);
  r.kept = keep;
  record(std::move(r), by);
  return again;
}

// What resolve() and merge() both record and count.
conflict_record replica::resolved_record(const conflict& c) {
  ++stats_.resolved;
  dirty_ = true;
  conflict_record r;
  r.key = c.key;
  r.versions = c.versions;
  r.resolved = true;
  return r;
}

bool replica::merge(const conflict& c, std::string value, const decided_by& by) {
  auto* current = store_->find(c.key);
  if (!current)
    return false;
  auto next = typed::with_merge(*current, c.versions, value);
  if (!next) {
    // Stale: the versions changed since the question. Ask about what the key holds now
    // (a newer question may be on its way too; answering twice is harmless).
    if (typed::needs_resolver(*current))
      ready_.conflicts.push_back(conflict{c.key, typed::registers(*current)});
    return false;
  }
  store_->assign(c.key, std::move(*next));
  auto r = resolved_record(c);
  r.kept = r.inputs();
  r.merged = true;
  r.value = value;
  record(std::move(r), by);
  if (report_changes_) {
    dot latest;
    for (auto& v : c.versions)
      latest = std::max(latest, v.id);
    ready_.changes.push_back(change{c.key, "merged", "string", {}, std::move(value), latest});
  }
  return true;
}

void replica::unresolved(const conflict& c, std::string reason, const decided_by& by) {
  ++stats_.unresolved;
  conflict_record r;
  r.key = c.key;
  r.versions = c.versions;
  r.kept = r.inputs();
  r.reason = std::move(reason);
  record(std::move(r), by);
}

std::vector<version> replica::versions(const std::string& key) const {
  auto* current = store_->find(key);
  return current ? *current : std::vector<version>{};
}

} // namespace mlr::core
