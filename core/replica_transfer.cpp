// The state transfer (DESIGN.md, "State transfer"): a holder serves a snapshot of its key
// state in chunks to a node whose pull asked for what left its log, and the receiver merges
// each chunk as a state CRDT. Part of the replica (replica.hpp).

#include "core/replica.hpp"

#include "core/detail/text_keys.hpp"

#include "core/typed.hpp"

#include <algorithm>
#include <set>

namespace mlr::core {

using messages::dot;
using messages::event;
using messages::version;

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
  // Merged values are each node's own (core/typed.hpp): never sent.
  for (auto& [key, vs] : chunk.keys)
    vs.erase(std::remove_if(vs.begin(), vs.end(),
                            [](auto& v) { return v.kind == messages::value_kind::merged; }),
             vs.end());
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
  // Counter shares are never replaced, only joined (typed.hpp); a merged value is this
  // node's own answer for its register versions, kept only while they stay as they are
  // (never taken from the sender: this node's resolver computes its own).
  auto plain = [](const version& v) {
    return !typed::is_share(v.kind) && v.kind != messages::value_kind::merged;
  };
  auto in = [&](const std::vector<version>& xs, const dot& d) {
    return std::any_of(xs.begin(), xs.end(),
                       [&](const version& v) { return v.id == d && plain(v); });
  };
  auto out = typed::join_shares(mine, theirs);
  bool mine_only = false;
  bool theirs_only = false;
  for (auto& v : mine)
    if (plain(v) && (in(theirs, v.id) || !they_cover(v.id))) {
      out.push_back(v);
      mine_only |= !in(theirs, v.id) && v.kind == messages::value_kind::reg;
    }
  for (auto& v : theirs)
    if (plain(v) && !in(mine, v.id) && !i_cover(v.id)) {
      out.push_back(v);
      theirs_only |= v.kind == messages::value_kind::reg;
    }
  if (auto* m = typed::merged(mine);
      m && typed::registers(out).size() == typed::registers(mine).size() &&
      std::all_of(mine.begin(), mine.end(), [&](const version& v) {
        return v.kind != messages::value_kind::reg || in(out, v.id);
      }))
    out.push_back(*m);
  std::sort(out.begin(), out.end(), [](const version& a, const version& b) {
    return a.id != b.id ? a.id < b.id : a.kind < b.kind;
  });
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
    if (is_text_op_key(key)) { // a document's operations: their union is its state
      if (auto at = detail::parse_text_key(key); at && at->snapshot) {
        // and its snapshot (replica_text_snapshot.cpp): one refused abandons the transfer
        if (!consider_text_snapshot(key, theirs)) {
          ++pull_rotation_;
          transfer_.reset();
          transfer_finished();
          return;
        }
      } else if (!current && !theirs.empty()) {
        store_->assign(key, theirs);
        text_state_changed(key);
      }
      continue;
    }
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
    if (both_sides || (typed::registers(merged).size() > 1 && !typed::merged(merged))) {
      ++stats_.conflicts;
      conflicts.push_back(conflict{key, typed::registers(merged)});
    }
    if (report_changes_ && key.compare(0, reserved_key_prefix.size(), reserved_key_prefix) != 0)
      ready_.changes.push_back(typed::describe_state(key, "transfer", merged));
    if (merged.empty())
      store_->erase(key);
    else
      store_->assign(key, std::move(merged));
  }
  report_text_changes();
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
  for (auto& [key, vs] : t.text_snapshots) {
    store_->assign(key, vs);
    text_state_changed(key);
  }
  // Keys the snapshot lacks: the sender collected them (stable deletes), so what it covers
  // of them is gone; what it does not cover is newer and stays.
  std::vector<std::pair<std::string, std::vector<version>>> changed;
  store_->for_each([&](const std::string& key, const std::vector<version>& mine) {
    if (t.seen.count(key) || is_text_op_key(key))
      return; // (a document's operations are a union: never taken away)
    std::vector<version> kept;
    for (auto& v : mine)
      if (v.kind == messages::value_kind::merged ||
          (!t.snapshot.covers(v.id) && !t.retired.covers(v.id)))
        kept.push_back(v);
    if (kept.size() != mine.size()) {
      typed::drop_stale_merge(mine, kept); // kept only if its inputs all stayed
      changed.emplace_back(key, std::move(kept));
    }
  });
  for (auto& [key, kept] : changed) {
    if (typed::needs_resolver(kept) &&
        key.compare(0, reserved_key_prefix.size(), reserved_key_prefix) != 0) {
      ++stats_.conflicts;
      conflicts.push_back(conflict{key, typed::registers(kept)});
    }
    if (report_changes_ && key.compare(0, reserved_key_prefix.size(), reserved_key_prefix) != 0)
      ready_.changes.push_back(typed::describe_state(key, "transfer", kept));
    if (kept.empty())
      store_->erase(key);
    else
      store_->assign(key, std::move(kept));
  }
  report_text_changes();
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
  transfer_finished(); // documents built while it ran held only what this node held then
  release_buffered(conflicts);
  stats_.buffered = buffer_.size();
}

} // namespace mlr::core
