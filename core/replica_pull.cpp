// The replica's pull side (DESIGN.md, "Causal metadata"): gossiped version vectors, gaps
// that made no progress for the grace period, one holder asked at a time; and the state
// transfer that answers a pull for what left the holder's log.

#include "core/replica.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <set>

namespace mlr::actors {

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

std::pair<size_t, size_t> replica::outgoing_transfers() const {
  std::set<const storage::state_snapshot*> snaps;
  for (auto& [id, t] : transfers_out_)
    snaps.insert(t.snap.get());
  return {transfers_out_.size(), snaps.size()};
}

transfer_progress replica::transfer() const {
  transfer_progress out;
  if (transfer_) {
    out.active = true;
    out.from = transfer_->from;
    out.keys_done = transfer_->keys_done;
    out.keys_total = transfer_->keys_total;
  }
  return out;
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

messages::event_batch replica::serve_transfer(const messages::pull_request& req, uint64_t now_ms) {
  messages::event_batch out;
  out.sender = cfg_.self;
  uint64_t id = req.transfer;
  if (req.start_transfer) {
    for (auto i = transfers_out_.begin(); i != transfers_out_.end();)
      i = i->second.to == req.requester ? transfers_out_.erase(i) : std::next(i);
    // Ids differ across restarts of this node, so a stale id is never mistaken for a new one.
    id = (self_.incarnation << 16) ^ ++transfer_seq_;
    transfer_out t;
    t.to = req.requester;
    t.snapshot_vv = applied_;
    t.hold = shippable_end();
    // At most one transfer per member (the requester's earlier one was dropped above), and
    // one snapshot for all that start while nothing changed.
    for (auto& [other_id, other] : transfers_out_)
      if (other.hold == t.hold && other.snapshot_vv == t.snapshot_vv)
        t.snap = other.snap;
    if (!t.snap)
      t.snap = store_->snapshot();
    transfers_out_.emplace(id, std::move(t));
  }
  auto i = transfers_out_.find(id);
  if (i == transfers_out_.end()) {
    out.compacted = true; // unknown (expired, or this node restarted): start again
    return out;
  }
  auto& t = i->second;
  t.last_ms = now_ms;
  auto got = t.snap->read(req.after_key, req.start_transfer, cfg_.transfer_chunk_keys,
                          cfg_.transfer_chunk_bytes);
  messages::state_chunk chunk;
  chunk.transfer = id;
  chunk.snapshot = t.snapshot_vv;
  chunk.retired = retired_;
  t.keys_sent += got.keys.size();
  chunk.keys_sent = t.keys_sent;
  chunk.keys_total = std::max(t.snap->estimated_keys(), t.keys_sent);
  chunk.keys = std::move(got.keys);
  chunk.done = !got.more;
  ++stats_.transfer_chunks_served;
  if (chunk.done) {
    ++stats_.transfers_served;
    transfers_out_.erase(i);
  }
  out.chunk = std::move(chunk);
  return out;
}

namespace {

// The state-CRDT merge of DESIGN.md: a version survives if both sides hold it, or if one
// side holds it and the other side's vector does not cover its dot.
std::vector<version> merge_versions(const std::vector<version>& mine,
                                    const std::vector<version>& theirs,
                                    const std::function<bool(const dot&)>& i_cover,
                                    const std::function<bool(const dot&)>& they_cover,
                                    bool& both_sides) {
  auto in = [](const std::vector<version>& xs, const dot& d) {
    return std::any_of(xs.begin(), xs.end(), [&](const version& v) { return v.id == d; });
  };
  std::vector<version> out;
  bool mine_only = false;
  bool theirs_only = false;
  for (auto& v : mine)
    if (in(theirs, v.id) || !they_cover(v.id)) {
      out.push_back(v);
      mine_only |= !in(theirs, v.id);
    }
  for (auto& v : theirs)
    if (!in(mine, v.id) && !i_cover(v.id)) {
      out.push_back(v);
      theirs_only = true;
    }
  std::sort(out.begin(), out.end(), [](const version& a, const version& b) { return a.id < b.id; });
  both_sides = mine_only && theirs_only;
  return out;
}

} // namespace

void replica::merge_chunk(messages::node_index from, const messages::state_chunk& c,
                          std::vector<conflict>& conflicts) {
  if (!transfer_ || transfer_->from != from || (transfer_->id != 0 && transfer_->id != c.transfer))
    return; // a late answer to a transfer given up on
  // A snapshot that shows this node dots of its own beyond its counter: its past was lost
  // (or the sender lies); either way it must not issue those counters again.
  check_own_dot(dot{self_, c.snapshot.get(self_)});
  for (auto& [key, vs] : c.keys)
    for (auto& v : vs)
      check_own_dot(v.id);
  auto& t = *transfer_;
  t.id = c.transfer;
  t.snapshot = c.snapshot;
  t.retired = c.retired;
  t.retired.erase(self_); // this incarnation is live: nobody retires it for us
  t.failures = 0;
  auto i_cover = [&](const dot& d) { return held(d); };
  auto they_cover = [&](const dot& d) { return c.snapshot.covers(d) || c.retired.covers(d); };
  for (auto& [key, theirs] : c.keys) {
    t.seen.insert(key);
    auto* current = store_->find(key);
    static const std::vector<version> none;
    const auto& mine = current ? *current : none;
    bool both_sides = false;
    auto merged = merge_versions(mine, theirs, i_cover, they_cover, both_sides);
    if (key.compare(0, reserved_key_prefix.size(), reserved_key_prefix) == 0) {
      reduce_reserved(key, merged);
      both_sides = false;
    }
    if (merged == mine)
      continue;
    if (std::any_of(merged.begin(), merged.end(), [](const version& v) { return v.tombstone; }))
      tombstoned_.insert(key);
    // Several versions after the merge, from both sides or only from the sender (its own
    // resolution may still have been pending): this node's resolver decides, as for events.
    if (both_sides || merged.size() > 1) {
      ++stats_.conflicts;
      conflicts.push_back(conflict{key, merged});
    }
    if (merged.empty())
      store_->erase(key);
    else
      store_->assign(key, std::move(merged));
  }
  stats_.transfer_keys_received += c.keys.size();
  if (!c.keys.empty())
    t.after = c.keys.back().first;
  t.keys_done = c.keys_sent;
  t.keys_total = c.keys_total;
  if (c.done)
    finish_transfer(conflicts);
}

void replica::finish_transfer(std::vector<conflict>& conflicts) {
  auto& t = *transfer_;
  // Keys the snapshot lacks: the sender collected them (stable deletes), so what it covers
  // of them is gone; what it does not cover is newer and stays.
  std::vector<std::pair<std::string, std::vector<version>>> changed;
  store_->for_each([&](const std::string& key, const std::vector<version>& mine) {
    if (t.seen.count(key))
      return;
    std::vector<version> kept;
    for (auto& v : mine)
      if (!t.snapshot.covers(v.id) && !t.retired.covers(v.id))
        kept.push_back(v);
    if (kept.size() != mine.size())
      changed.emplace_back(key, std::move(kept));
  });
  for (auto& [key, kept] : changed) {
    if (kept.empty())
      store_->erase(key);
    else
      store_->assign(key, std::move(kept));
  }
  // The vector jumps: this node now holds everything the snapshot covered. It has no log
  // entries for those events, so its tree children get them by pull (or by transfer).
  check_own_dot(dot{self_, t.snapshot.get(self_)});
  if (cfg_.observer) {
    auto held_now = t.snapshot; // and the retired incarnations it folds: held as well
    held_now.merge(t.retired);
    cfg_.observer->on_state_transfer(cfg_.self, held_now);
  }
  applied_.merge(t.snapshot);
  fold(t.retired);
  ++stats_.transfers_received;
  transfer_.reset();
  release_buffered(conflicts);
  stats_.buffered = buffer_.size();
}

} // namespace mlr::actors
