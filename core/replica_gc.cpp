// The replica's garbage collection (DESIGN.md, "Stability and garbage collection"):
// stability from gossiped vectors, tombstones and log entries dropped once stable, and
// retired incarnations folded into the permanent table.

#include "core/replica.hpp"

#include "storage/serialize.hpp"

#include <algorithm>
#include <functional>

namespace mlr::core {

using messages::dot;
using messages::event;
using messages::version;

void replica::fold(const messages::version_vector& retiring) {
  for (auto& [s, final_counter] : retiring.entries()) {
    if (s == self_)
      continue; // the running incarnation is never retired
    if (retired_.get(s) == 0)
      ++stats_.incarnations_retired;
    retired_.advance(dot{s, final_counter});
    if (applied_.get(s) > retired_.get(s)) {
      // This node holds events of it beyond the final counter: they were still in flight
      // when every node reported the final counter. It keeps them (and its entry, its log
      // positions, its reports) so that the others take them from here, as events after
      // the final counter, until a later retirement covers them too.
      continue;
    }
    applied_.erase(s);
    applied_at_last_write_.erase(s);
    stable_.erase(s);
    positions_.erase(s);
    gaps_.erase(s);
    for (auto& [node, vv] : reported_)
      if (vv.get(s) <= retired_.get(s))
        vv.erase(s);
    for (auto& [node, vv] : reported_stable_)
      if (vv.get(s) <= retired_.get(s))
        vv.erase(s);
    if (candidate_) {
      candidate_->meet.erase(s);
      candidate_->join.erase(s);
    }
  }
}

std::optional<dot> replica::retire_incarnations(uint64_t now_ms) {
  // Earlier incarnations of this node that every node holds up to what this node holds:
  // stable at that counter means every node reported at least it. Events beyond it may
  // still be in flight (the dead incarnation sent them before it stopped); a node that
  // gets one keeps it and the others take it after the final counter (see fold), until a
  // later retirement covers it.
  messages::version_vector retiring;
  for (auto& [s, c] : applied_.entries())
    if (s.node == self_.node && s.incarnation != self_.incarnation && stable_.get(s) >= c)
      retiring.advance(dot{s, c});
  if (retiring.empty())
    return std::nullopt;
  write_request w;
  w.key = reserved_key_prefix + "retired:" + std::to_string(self_.node);
  w.value = storage::serialize(retiring);
  return write(w, now_ms); // applying it folds them here; the others follow
}

void replica::drop_orphans(uint64_t now_ms) {
  // A buffered event waits for its origin's previous event and for its deps. When one of
  // those is held by nobody (no report shows it) and every member has reported since,
  // long after, it was lost: its origin restarted empty under a new incarnation before
  // anyone got it. The buffered events of that source can then never be applied anywhere,
  // so nothing applied depends on them: they are dropped, so the buffer empties and the
  // cluster converges. Should some node hold them after all, its reports show it and they
  // are pulled again.
  if (now_ms == 0)
    return;
  auto patience = 20 * cfg_.pull_grace_ms;
  // What overflowed events waited for is a hint with a bounded life: forgotten every
  // patience period (an event dropped again records it again), so that dots nobody can
  // supply (lost, or made up by a peer) are not pulled for ever.
  if (now_ms - overflow_wanted_since_ >= patience) {
    overflow_wanted_ = messages::version_vector{};
    overflow_wanted_since_ = now_ms;
  }
  auto everyone = known();
  auto lost = [&](const dot& d) { return !held(d) && !everyone.covers(d); };
  std::set<messages::source> waiting;
  std::vector<messages::source> sources;
  for (auto& [s, lowest] : buffer_.lowest())
    sources.push_back(s);
  for (auto& s : sources) {
    if (s == self_)
      continue;
    bool orphan = false;
    buffer_.for_each_of(s, [&](const event& e) {
      if (orphan || lost(dot{s, e.id.counter - 1}))
        orphan = true;
      for (auto& d : e.deps)
        orphan = orphan || lost(d);
    });
    if (!orphan)
      continue;
    waiting.insert(s);
    auto since = orphans_.emplace(s, now_ms).first->second;
    if (now_ms - since < patience)
      continue;
    bool all_spoke = true; // every live member reported long enough after
    for (messages::node_index n = 0; n < cfg_.forward_to.size(); ++n) {
      if (n == cfg_.self || !is_live(n))
        continue;
      auto heard = reported_at_.find(n);
      all_spoke = all_spoke && heard != reported_at_.end() && heard->second >= since + patience / 2;
    }
    if (all_spoke)
      stats_.orphans_dropped += buffer_.erase_source(s);
  }
  for (auto i = orphans_.begin(); i != orphans_.end();)
    i = waiting.count(i->first) ? std::next(i) : orphans_.erase(i);
  stats_.buffered = buffer_.size();
}

void replica::collect_garbage(uint64_t now_ms) {
  drop_orphans(now_ms);
  // Outgoing transfers nobody asked about for a while are abandoned.
  if (now_ms > 0)
    for (auto i = transfers_out_.begin(); i != transfers_out_.end();)
      i =
        now_ms - i->second.last_ms > cfg_.transfer_idle_ms ? transfers_out_.erase(i) : std::next(i);
  evict_texts(); // memory, whatever stability says
  if (!advance_stability())
    return;
  collect_tombstones();
  collect_text_tombstones();
  compact_log();
}

bool replica::advance_stability() {
  // Live members only: a removed node's vector no longer holds anything back.
  size_t members = 0;
  for (messages::node_index n = 0; n < cfg_.forward_to.size(); ++n)
    members += is_live(n) ? 1 : 0;
  size_t heard = 0;
  for (auto& [node, vv] : reported_)
    heard += node < cfg_.forward_to.size() && is_live(node) ? 1 : 0;
  if (members == 0 || heard + 1 < members)
    return false; // not every node has been heard from: nothing can be stable yet
  if (candidate_ && applied_.covers(candidate_->join))
    stable_.merge(candidate_->meet);
  stability_candidate next{applied_, applied_};
  for (auto& [node, vv] : reported_) {
    if (node >= cfg_.forward_to.size() || !is_live(node))
      continue;
    next.meet.intersect(vv);
    next.join.merge(vv);
  }
  candidate_ = std::move(next);
  return true;
}

// Stable here is not enough to forget a delete: a node where it is not stable yet could
// meet a write that this node makes after forgetting the delete (so without it in its
// context) as a concurrent version, and with per-node clock skew the delete's HLC could win
// there.
bool replica::stable_everywhere(const dot& d) const {
  if (retired_.covers(d))
    return true;
  if (!stable_.covers(d))
    return false;
  for (messages::node_index n = 0; n < cfg_.forward_to.size(); ++n) {
    if (n == cfg_.self || !is_live(n))
      continue;
    auto r = reported_stable_.find(n);
    if (r == reported_stable_.end() || !r->second.covers(d))
      return false;
  }
  return true;
}

// Deletes that are stable everywhere and alone: forget the key.
void replica::collect_tombstones() {
  for (auto i = tombstoned_.begin(); i != tombstoned_.end();) {
    auto* versions = store_->find(*i);
    bool only_stable_tombstones =
      versions && std::all_of(versions->begin(), versions->end(), [&](const version& v) {
        return v.tombstone && stable_everywhere(v.id);
      });
    bool any_live = versions && std::any_of(versions->begin(), versions->end(),
                                            [](const version& v) { return !v.tombstone; });
    if (only_stable_tombstones) {
      // The clock moves past the forgotten deletes, so that a later write of the key wins
      // over them at a node that still holds them, whatever clock they came from.
      for (auto& v : *versions)
        clock_.restore(v.time);
      store_->erase(*i);
      ++stats_.tombstones_collected;
      i = tombstoned_.erase(i);
    } else if (!versions || any_live) {
      i = tombstoned_.erase(i); // a later put revived it; a later delete re-adds it
    } else {
      ++i;
    }
  }
}

// Stable log prefix, beyond the retention window: drop it.
void replica::compact_log() {
  auto begin = store_->log_begin();
  auto end = shippable_end();
  // A receiver of a state transfer resumes from the log where the snapshot was taken.
  for (auto& [id, t] : transfers_out_)
    end = std::min(end, t.hold);
  if (end <= begin + cfg_.log_retention)
    return;
  end -= cfg_.log_retention;
  auto pos = begin;
  for (; pos < end; ++pos) {
    auto* e = store_->read(pos);
    if (!e || !(stable_.covers(e->ev.id) || retired_.covers(e->ev.id)))
      break;
  }
  if (pos > begin) {
    store_->truncate_log(pos);
    stats_.log_compacted += store_->log_begin() - begin;
    positions_.drop_before(store_->log_begin()); // the index shrinks with the log
  }
}

} // namespace mlr::core
