#include "actors/replica.hpp"

#include <algorithm>
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
}

dot replica::write(const write_request& w, uint64_t now_ms, std::vector<conflict>& conflicts) {
  event e;
  e.id = dot{self_, ++counter_};
  e.time = clock_.tick(now_ms);
  // Deps: what this origin applied since its previous write (everything, for the first
  // write of the incarnation). Its own previous write is implied by the counter.
  e.deps = applied_.delta_since(counter_ == 1 ? messages::version_vector{}
                                              : applied_at_last_write_);
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
    if (applied_.covers(e.id) || buffer_.contains(e.id)) {
      ++out.duplicates;
      ++stats_.duplicates;
      continue;
    }
    clock_.observe(e.time, now_ms);
    if (causal_buffer::ready(e, applied_)) {
      ++stats_.applied_remote;
      apply(std::move(e), conflicts);
      while (auto next = buffer_.release_ready(applied_)) {
        ++stats_.applied_remote;
        apply(std::move(*next), conflicts);
      }
    } else if (buffer_.insert(std::move(e)) == causal_buffer::insert_result::full) {
      // Dropped for now; pull fetches it again once there is room.
      ++stats_.buffer_overflows;
    }
  }
  stats_.buffered = buffer_.size();
  stats_.buffered_peak = std::max<uint64_t>(stats_.buffered_peak, stats_.buffered);
  return out;
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
  auto end = std::min<uint64_t>(store_->log_end(), from + max_scan);
  uint64_t pos = from;
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
