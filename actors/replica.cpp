#include "actors/replica.hpp"

#include "storage/serialize.hpp"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

namespace mlr::actors {

using messages::dot;
using messages::event;
using messages::version;

namespace {

bool contains(const std::vector<dot>& xs, const dot& d) {
  return std::find(xs.begin(), xs.end(), d) != xs.end();
}

bool by_dot(const version& a, const version& b) {
  return a.id < b.id;
}

} // namespace

replica::replica(replica_config cfg, std::unique_ptr<storage::store> store)
  : cfg_(std::move(cfg)),
    self_{cfg_.self, cfg_.incarnation},
    store_(std::move(store)),
    clock_(cfg_.max_clock_offset_ms),
    buffer_(cfg_.max_buffered) {
  recover();
}

// Restores what a durable store remembers: the version vector, the HLC, the counter (when
// the incarnation is the same) and the position index of the log.
void replica::recover() {
  if (auto raw = store_->get_meta("applied")) {
    if (auto vv = storage::deserialize_version_vector(*raw))
      applied_ = std::move(*vv);
  }
  if (auto raw = store_->get_meta("hlc"))
    clock_.restore(messages::hlc{std::strtoull(raw->c_str(), nullptr, 10)});
  counter_ = applied_.get(self_);
  full_deps_next_ = counter_ > 0;
  // Compacted entries are gone; their index slots hold their old positions, which read()
  // answers with nullptr and pull answers skip.
  for (uint64_t pos = store_->log_begin(); pos < store_->log_end(); ++pos)
    if (auto* e = store_->read(pos)) {
      auto& idx = positions_[e->ev.id.origin];
      if (idx.size() + 1 < e->ev.id.counter)
        idx.resize(e->ev.id.counter - 1, 0);
      idx.push_back(pos);
    }
  durable_end_ = store_->log_end();
}

void replica::persist() {
  store_->put_meta("applied", storage::serialize(applied_));
  store_->put_meta("hlc", std::to_string(clock_.last().value));
  store_->put_meta("incarnation", std::to_string(self_.incarnation));
}

void replica::check_own_dot(const dot& d) {
  if (d.origin != self_ || d.counter <= counter_ || !cfg_.new_incarnation)
    return;
  // Everything this incarnation issued up to d.counter exists elsewhere: stop using it.
  self_.incarnation = cfg_.new_incarnation();
  counter_ = 0;
  ++stats_.incarnations_taken;
}

dot replica::write(const write_request& w, uint64_t now_ms, std::vector<conflict>& conflicts) {
  event e;
  e.id = dot{self_, ++counter_};
  e.time = clock_.tick(now_ms);
  // Deps: what this origin applied since its previous write (everything, for the first
  // write of the incarnation). Its own previous write is implied by the counter.
  e.deps = applied_.delta_since(counter_ == 1 || full_deps_next_ ? messages::version_vector{}
                                                                 : applied_at_last_write_);
  full_deps_next_ = false;
  e.deps.erase(std::remove_if(e.deps.begin(), e.deps.end(),
                              [&](const dot& d) { return d.origin == self_; }),
               e.deps.end());
  if (w.has_context) {
    e.context = w.context;
  } else if (auto* current = store_->find(w.key)) {
    for (auto& v : *current)
      e.context.push_back(v.id);
  }
  e.key = w.key;
  e.op = w.op;
  if (w.op == messages::op_kind::put)
    e.value = w.value;
  ++stats_.local_writes;
  if (cfg_.observer)
    cfg_.observer->on_apply(cfg_.self, e, true);
  apply(std::move(e), conflicts);
  applied_at_last_write_ = applied_;
  return dot{self_, counter_};
}

replica::receive_result replica::receive(messages::event_batch batch, uint64_t now_ms,
                                         std::vector<conflict>& conflicts) {
  receive_result out;
  for (auto& e : batch.events) {
    ++out.received;
    ++stats_.events_received;
    check_own_dot(e.id);
    if (applied_.covers(e.id) || buffer_.contains(e.id)) {
      ++out.duplicates;
      ++stats_.duplicates;
      continue;
    }
    clock_.observe(e.time, now_ms);
    if (causal_buffer::ready(e, applied_)) {
      apply_remote(std::move(e), conflicts);
      while (auto next = buffer_.release_ready(applied_))
        apply_remote(std::move(*next), conflicts);
    } else if (buffer_.insert(std::move(e)) == causal_buffer::insert_result::full) {
      // Dropped for now; pull fetches it again once there is room.
      ++stats_.buffer_overflows;
    }
  }
  stats_.buffered = buffer_.size();
  stats_.buffered_peak = std::max<uint64_t>(stats_.buffered_peak, stats_.buffered);
  return out;
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
  // Versions named in the context are replaced; any other live version is concurrent.
  std::vector<version> live;
  bool concurrent = false;
  if (auto* current = store_->find(e.key)) {
    for (auto& v : *current) {
      if (!contains(e.context, v.id)) {
        live.push_back(v);
        concurrent = true;
      }
    }
  }
  version mine{e.id, e.time, e.op == messages::op_kind::del, e.value};
  live.insert(std::upper_bound(live.begin(), live.end(), mine, by_dot), mine);
  applied_.advance(e.id);
  if (e.op == messages::op_kind::del)
    tombstoned_.insert(e.key);
  if (concurrent) {
    ++stats_.conflicts;
    conflicts.push_back(conflict{e.key, live});
  }
  store_->assign(e.key, std::move(live));

  // Stamp seen-by with this node and everything it forwards to, and remember whom the
  // links ship this entry to: the origin tree's children that had not seen it yet.
  storage::log_entry entry;
  auto origin = e.id.origin.node;
  if (origin < cfg_.forward_to.size())
    for (auto child : cfg_.forward_to[origin])
      if (!e.seen.contains(child) && child != cfg_.self)
        entry.forward.insert(child);
  e.seen.insert(cfg_.self);
  e.seen.merge(entry.forward);
  positions_[e.id.origin].push_back(store_->log_end());
  entry.ev = std::move(e);
  store_->append(std::move(entry));
}

void replica::resolve(const conflict& c, const std::vector<dot>& keep) {
  auto* current = store_->find(c.key);
  if (current) {
    std::vector<version> next;
    for (auto& v : *current) {
      bool was_input = std::any_of(c.versions.begin(), c.versions.end(),
                                   [&](const version& in) { return in.id == v.id; });
      if (!was_input || contains(keep, v.id))
        next.push_back(v);
    }
    store_->assign(c.key, std::move(next));
  }
  ++stats_.resolved;
  conflict_record r;
  r.key = c.key;
  for (auto& v : c.versions)
    r.inputs.push_back(v.id);
  r.kept = keep;
  r.resolved = true;
  record(std::move(r));
}

void replica::unresolved(const conflict& c, std::string reason) {
  ++stats_.unresolved;
  conflict_record r;
  r.key = c.key;
  for (auto& v : c.versions) {
    r.inputs.push_back(v.id);
    r.kept.push_back(v.id);
  }
  r.reason = std::move(reason);
  record(std::move(r));
}

void replica::record(conflict_record r) {
  if (cfg_.conflict_log_capacity == 0)
    return;
  if (conflicts_.size() >= cfg_.conflict_log_capacity)
    conflicts_.pop_front();
  conflicts_.push_back(std::move(r));
}

std::vector<version> replica::versions(const std::string& key) const {
  auto* current = store_->find(key);
  return current ? *current : std::vector<version>{};
}

replica::fetch_result replica::fetch(messages::node_index dest, uint64_t from,
                                     size_t max_events, size_t max_scan) {
  fetch_result out;
  out.batch.sender = cfg_.self;
  auto end = std::min<uint64_t>(shippable_end(), from + max_scan);
  uint64_t pos = std::max(from, store_->log_begin());
  for (; pos < end && out.batch.events.size() < max_events; ++pos) {
    auto* entry = store_->read(pos);
    if (entry->forward.contains(dest))
      out.batch.events.push_back(entry->ev);
  }
  out.next = pos;
  stats_.events_sent += out.batch.events.size();
  return out;
}

} // namespace mlr::actors

namespace mlr::actors {

void replica::observe_report(messages::node_index node, const messages::version_vector& vv) {
  if (node == cfg_.self)
    return;
  check_own_dot(dot{self_, vv.get(self_)});
  reported_[node].merge(vv);
}

messages::version_vector replica::known() const {
  auto out = applied_;
  for (auto& [node, vv] : reported_)
    out.merge(vv);
  return out;
}

std::optional<replica::pull_plan> replica::plan_pull(uint64_t now_ms, bool eager) {
  // What this node knows exists: gossiped vectors, plus what buffered events wait for.
  auto wanted = known();
  buffer_.for_each([&](const event& e) {
    wanted.advance(dot{e.id.origin, e.id.counter - 1});
    for (auto& d : e.deps)
      wanted.advance(d);
  });
  // A gap is due when it made no progress for the grace period.
  std::vector<messages::source> due;
  for (auto i = gaps_.begin(); i != gaps_.end();)
    i = wanted.get(i->first) > applied_.get(i->first) ? std::next(i) : gaps_.erase(i);
  for (auto& [s, target] : wanted.entries()) {
    auto have = applied_.get(s);
    if (target <= have)
      continue;
    auto [it, fresh] = gaps_.try_emplace(s, gap{now_ms, have});
    auto& g = it->second;
    if (eager) {
      due.push_back(s);
      continue;
    }
    if (fresh || have > g.applied_then) {
      g = gap{now_ms, have};
      continue;
    }
    if (now_ms - g.since_ms >= cfg_.pull_grace_ms)
      due.push_back(s);
  }
  if (due.empty())
    return std::nullopt;
  // Holders of the first due source's next event, in index order; rotate on failures.
  std::vector<messages::node_index> holders;
  for (auto& [node, vv] : reported_)
    if (vv.get(due.front()) > applied_.get(due.front()))
      holders.push_back(node);
  if (holders.empty())
    return std::nullopt; // only buffered deps name it; gossip will tell who holds it
  pull_plan plan;
  plan.holder = holders[pull_rotation_ % holders.size()];
  plan.request.requester = cfg_.self;
  auto& holder_vv = reported_[plan.holder];
  for (auto& s : due) {
    auto first = applied_.get(s) + 1;
    auto last = std::min(wanted.get(s), holder_vv.get(s));
    // Leave out what already waits in the buffer: it needs no second copy.
    for (auto c = first; c <= last; ++c) {
      if (buffer_.contains(dot{s, c})) {
        if (c > first)
          plan.request.ranges.push_back(messages::counter_range{s, first, c - 1});
        first = c + 1;
      }
    }
    if (first <= last)
      plan.request.ranges.push_back(messages::counter_range{s, first, last});
    gaps_[s] = gap{now_ms, applied_.get(s)}; // the next pull waits another grace period
  }
  if (plan.request.ranges.empty())
    return std::nullopt;
  ++stats_.pulls_sent;
  return plan;
}

void replica::pull_failed() {
  ++stats_.pull_failures;
  ++pull_rotation_;
}

messages::event_batch replica::serve_pull(const messages::pull_request& req) {
  ++stats_.pulls_served;
  std::vector<uint64_t> wanted;
  for (auto& r : req.ranges) {
    auto i = positions_.find(r.origin);
    if (i == positions_.end())
      continue;
    auto& pos = i->second;
    for (auto c = r.first; c <= r.last && c <= pos.size(); ++c) {
      if (pos[c - 1] < store_->log_begin())
        continue; // compacted: stable, so held by every node already
      wanted.push_back(pos[c - 1]);
      if (wanted.size() >= cfg_.max_pull_events)
        break;
    }
    if (wanted.size() >= cfg_.max_pull_events)
      break;
  }
  std::sort(wanted.begin(), wanted.end());
  while (!wanted.empty() && wanted.back() >= shippable_end())
    wanted.pop_back(); // not durable yet: a power cut could still take it from us
  messages::event_batch out;
  out.sender = cfg_.self;
  for (auto p : wanted)
    out.events.push_back(store_->read(p)->ev);
  stats_.events_sent += out.events.size();
  stats_.pull_events_served += out.events.size();
  return out;
}

replica::receive_result replica::receive_pulled(messages::event_batch batch, uint64_t now_ms,
                                                std::vector<conflict>& conflicts) {
  stats_.pulled_events += batch.events.size();
  return receive(std::move(batch), now_ms, conflicts);
}

} // namespace mlr::actors

namespace mlr::actors {

void replica::collect_garbage() {
  auto members = cfg_.forward_to.size();
  if (members == 0 || reported_.size() + 1 < members)
    return; // not every node has been heard from: nothing can be stable yet
  if (candidate_ && applied_.covers(candidate_->join))
    stable_.merge(candidate_->meet);
  stability_candidate next{applied_, applied_};
  for (auto& [node, vv] : reported_) {
    next.meet.intersect(vv);
    next.join.merge(vv);
  }
  candidate_ = std::move(next);

  // Deletes that are stable and alone: forget the key.
  for (auto i = tombstoned_.begin(); i != tombstoned_.end();) {
    auto* versions = store_->find(*i);
    bool only_stable_tombstones =
      versions && std::all_of(versions->begin(), versions->end(), [&](const version& v) {
        return v.tombstone && stable_.covers(v.id);
      });
    bool any_live = versions && std::any_of(versions->begin(), versions->end(),
                                            [](const version& v) { return !v.tombstone; });
    if (only_stable_tombstones) {
      store_->erase(*i);
      ++stats_.tombstones_collected;
      i = tombstoned_.erase(i);
    } else if (!versions || any_live) {
      i = tombstoned_.erase(i); // a later put revived it; a later delete re-adds it
    } else {
      ++i;
    }
  }

  // Stable log prefix, beyond the retention window: drop it.
  auto begin = store_->log_begin();
  auto end = shippable_end();
  if (end <= begin + cfg_.log_retention)
    return;
  end -= cfg_.log_retention;
  auto pos = begin;
  for (; pos < end; ++pos) {
    auto* e = store_->read(pos);
    if (!e || !stable_.covers(e->ev.id))
      break;
  }
  if (pos > begin) {
    store_->truncate_log(pos);
    stats_.log_compacted += store_->log_begin() - begin;
  }
}

} // namespace mlr::actors
