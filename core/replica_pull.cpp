// The replica's pull side (DESIGN.md, "Causal metadata"): gossiped version vectors, gaps
// that made no progress for the grace period, one holder asked at a time, and the answers
// to pulls (the state transfer that answers a pull for what left the log: replica_transfer.cpp).

#include "core/replica.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <set>

namespace mlr::core {

using messages::dot;
using messages::event;
using messages::version;

void replica::observe_report(messages::node_index node, const messages::version_vector& vv,
                             const messages::version_vector& stable, uint64_t now_ms,
                             bool carries_stable) {
  if (node == cfg_.self || !is_member(node)) {
    if (node != cfg_.self)
      ++stats_.reports_refused; // only members' vectors count (holders, stability)
    return;
  }
  check_own_dot(dot{self_, vv.get(self_)});
  if (now_ms > 0)
    reported_at_[node] = now_ms;
  // The latest report replaces the one before: a node restarted empty holds less than
  // its old incarnation did, and its peers must not go on believing the old report (links
  // would skip what it lacks, pulls would ask it for what it lost, stability would count
  // it). A report overtaken by an older one only makes this node more cautious for a tick.
  auto& r = reported_[node];
  r = vv;
  // Heartbeats and the welcome carry no stable vector: the last one gossiped stands. An
  // empty one that was gossiped replaces it (a node restarted empty has nothing stable).
  auto& st = reported_stable_[node];
  if (carries_stable)
    st = stable;
  for (auto& [s, c] : retired_.entries()) {
    // A node that has not folded it yet still reports it; one that holds events beyond
    // the final counter reports those, and they are pulled from it.
    if (r.get(s) <= c)
      r.erase(s);
    if (st.get(s) <= c)
      st.erase(s);
  }
}

messages::version_vector replica::known() const {
  auto out = applied_;
  for (auto& [node, vv] : reported_)
    out.merge(vv);
  return out;
}

std::optional<replica::pull_plan> replica::plan_pull(uint64_t now_ms, bool eager) {
  if (routing_changed_) {
    routing_changed_ = false;
    fast_pulls_until_ = now_ms + cfg_.topology_change_window_ms;
  }
  if (!is_live(cfg_.self))
    return std::nullopt; // removed from the cluster: it asks nobody for anything
  auto grace = now_ms < fast_pulls_until_ ? std::min(cfg_.pull_grace_ms, cfg_.pull_grace_ms_changed)
                                          : cfg_.pull_grace_ms;
  if (transfer_) {
    // A state transfer goes first: chunk after chunk, from one holder.
    pull_plan plan;
    plan.holder = transfer_->from;
    plan.request.requester = cfg_.self;
    plan.request.start_transfer = transfer_->id == 0;
    plan.request.transfer = transfer_->id;
    plan.request.after_key = transfer_->after;
    return plan;
  }
  auto wanted = wanted_now();
  auto due = due_sources(wanted, now_ms, eager, grace);
  if (due.empty())
    return std::nullopt;
  return pull_for(due, wanted, now_ms);
}

uint64_t replica::have_of(const messages::source& s) const {
  return std::max(applied_.get(s), retired_.get(s));
}

// What this node knows exists: gossiped vectors, plus what buffered events and waiting
// writes' contexts wait for.
messages::version_vector replica::wanted_now() {
  auto wanted = known();
  std::vector<dot> waited_for; // gathered, then merged at once (advance per dot is O(n))
  for (auto& [s, c] : wanted_.entries())
    if (have_of(s) < c)
      waited_for.push_back(dot{s, c}); // named by the context of a write waiting here
  std::vector<messages::source> done;
  for (auto& [s, c] : overflow_wanted_.entries())
    if (have_of(s) < c)
      waited_for.push_back(dot{s, c});
    else
      done.push_back(s);
  for (auto& s : done)
    overflow_wanted_.erase(s);
  buffer_.for_each([&](const event& e) {
    waited_for.push_back(dot{e.id.origin, e.id.counter - 1});
    waited_for.insert(waited_for.end(), e.deps.begin(), e.deps.end());
  });
  wanted.merge(messages::version_vector::from_dots(std::move(waited_for)));
  return wanted;
}

// The sources with a gap that made no progress for the grace period (all of them if eager).
std::vector<messages::source> replica::due_sources(const messages::version_vector& wanted,
                                                   uint64_t now_ms, bool eager, uint64_t grace) {
  std::vector<messages::source> due;
  for (auto i = gaps_.begin(); i != gaps_.end();)
    i = wanted.get(i->first) > have_of(i->first) ? std::next(i) : gaps_.erase(i);
  for (auto& [s, target] : wanted.entries()) {
    auto have = have_of(s); // after a retired incarnation's final counter, what follows it
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
    if (now_ms - g.since_ms >= grace)
      due.push_back(s);
  }
  return due;
}

// One pull for the due sources, from a holder of the first one's next event.
std::optional<replica::pull_plan> replica::pull_for(const std::vector<messages::source>& due,
                                                    const messages::version_vector& wanted,
                                                    uint64_t now_ms) {
  // Sources that only buffered events name and no gossiped vector shows: a node retired
  // them (so it no longer reports them), or their holders were not heard from yet. They go
  // first, asked of every peer in turn: one that retired them answers "compacted", and the
  // state transfer that follows brings their state and the retired table.
  auto reported = [&](const messages::source& s) {
    return std::any_of(reported_.begin(), reported_.end(),
                       [&](auto& r) { return r.second.get(s) > have_of(s); });
  };
  auto unknown = std::find_if(due.begin(), due.end(), [&](auto& s) { return !reported(s); });
  auto target = unknown != due.end() ? *unknown : due.front();
  // Holders of the target's next event, in index order; rotate on failures.
  std::vector<messages::node_index> holders;
  for (auto& [node, vv] : reported_)
    if (!reported(target) || vv.get(target) > have_of(target))
      holders.push_back(node);
  if (holders.empty())
    return std::nullopt; // nobody heard from yet
  pull_plan plan;
  plan.holder = holders[pull_rotation_ % holders.size()];
  plan.request.requester = cfg_.self;
  for (auto& s : due) {
    auto first = have_of(s) + 1;
    // All of it, even beyond what the holder reported: it answers with what it holds, or
    // "compacted" for a source it retired (a report from before it did can still be here,
    // so a source that only a stale report shows is asked for too).
    auto last = wanted.get(s);
    // Leave out what already waits in the buffer: it needs no second copy.
    for (auto c : buffer_.counters(s, first, last)) {
      if (c > first)
        plan.request.ranges.push_back(messages::counter_range{s, first, c - 1});
      first = c + 1;
    }
    if (first <= last)
      plan.request.ranges.push_back(messages::counter_range{s, first, last});
    gaps_[s] = gap{now_ms, have_of(s)}; // the next pull waits another grace period
  }
  if (plan.request.ranges.empty())
    return std::nullopt;
  return plan;
}

void replica::pull_sent() {
  ++stats_.pulls_sent;
}

void replica::pull_failed() {
  ++stats_.pull_failures;
  ++pull_rotation_;
  // A transfer survives a lost chunk or two; then another holder is asked from scratch
  // (merging is idempotent, so chunks already merged do no harm).
  if (transfer_ && ++transfer_->failures >= 3)
    transfer_.reset();
}

messages::event_batch replica::serve_pull(const messages::pull_request& req, uint64_t now_ms) {
  if (!is_member(req.requester) || req.requester == cfg_.self) {
    // Nobody to serve: no snapshot, no hold on compaction for a made-up requester.
    ++stats_.pulls_refused;
    messages::event_batch none;
    none.sender = cfg_.self;
    return none;
  }
  ++stats_.pulls_served;
  if (req.start_transfer || req.transfer != 0)
    return serve_transfer(req, now_ms);
  std::vector<uint64_t> wanted;
  messages::event_batch out;
  out.sender = cfg_.self;
  for (auto& r : req.ranges) {
    if (retired_.get(r.origin) >= r.first) {
      out.compacted = true; // retired here: its state comes with a state transfer
      return out;
    }
    auto held_up_to = std::min(r.last, applied_.get(r.origin));
    for (auto c = r.first; c <= held_up_to; ++c) {
      auto pos = positions_.find(dot{r.origin, c});
      if (pos == not_in_log || pos < store_->log_begin()) {
        // Held, but no longer in the log: only a state transfer can bring it.
        out.compacted = true;
        return out;
      }
      wanted.push_back(pos);
      if (wanted.size() >= cfg_.max_pull_events)
        break;
    }
    if (wanted.size() >= cfg_.max_pull_events)
      break;
  }
  std::sort(wanted.begin(), wanted.end());
  while (!wanted.empty() && wanted.back() >= shippable_end())
    wanted.pop_back(); // not durable yet: a power cut could still take it from us
  batch_budget budget(cfg_.max_batch_bytes);
  for (auto p : wanted) {
    auto* entry = store_->read(p);
    if (!entry)
      break; // the store could not read it (damaged): answer with what came before
    auto& e = entry->ev;
    if (!budget.take(e))
      break; // the rest comes with the next pull (a prefix in log order stays causal)
    out.events.push_back(e);
  }
  stats_.events_sent += out.events.size();
  stats_.pull_events_served += out.events.size();
  return out;
}

replica::receive_result replica::receive_pulled(messages::event_batch batch, uint64_t now_ms) {
  events_in_ = true;
  auto& conflicts = ready_.conflicts;
  if (!is_member(batch.sender) || batch.sender == cfg_.self) {
    ++stats_.pull_answers_refused; // a holder that is not a live member: ask another
    pull_failed();
    return {};
  }
  if (batch.chunk) {
    merge_chunk(batch.sender, *batch.chunk, conflicts);
    return {};
  }
  if (batch.compacted) {
    // What we asked for left the holder's log. Ask it for its state; a transfer that was
    // running (and that the holder no longer knows) starts again.
    transfer_.reset();
    transfer_.emplace();
    transfer_->from = batch.sender;
    return {};
  }
  stats_.pulled_events += batch.events.size();
  if (batch.events.empty())
    ++pull_rotation_; // this holder had none of it: ask another next time
  return receive(std::move(batch), now_ms);
}

} // namespace mlr::core
