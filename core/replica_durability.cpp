// What the replica asks of its shell after each input (take_ready), and durability: which
// commit the sync policy wants, when a write may be answered, and how far links may ship.
// The shell carries out the commit and the fsync and reports back (committed, synced):
// etcd raft's Ready and Advance.

#include "core/replica.hpp"

#include "storage/serialize.hpp"

#include <algorithm>
#include <cstdlib>
#include <utility>

namespace mlr::core {

ready replica::take_ready() {
  ready out = std::move(ready_);
  ready_ = ready{};
  out.topology = std::move(topology_update_);
  topology_update_.reset();
  out.recovered_siblings = std::move(recovered_siblings_);
  recovered_siblings_.clear();
  out.relay_links.assign(relay_dests_.begin(), relay_dests_.end());
  relay_dests_reported_.insert(relay_dests_.begin(), relay_dests_.end());
  relay_dests_.clear();
  // What changed the store since the last take: the log grew, garbage was collected, a
  // state transfer merged keys or started or ended, or a resolution was applied.
  auto t = transfer();
  auto collected = stats_.tombstones_collected + stats_.log_compacted;
  out.commit = store_->log_end() != taken_.log_end || collected != taken_.collected ||
               stats_.transfer_keys_received != taken_.transfer_keys ||
               t.active != taken_.transfer.active || dirty_;
  take_durability(out);
  if (out.commit && store_->durable())
    persist();
  take_batches(out);
  report_transfer(taken_.transfer, t, out.log);
  taken_ = taken_state{store_->log_end(), collected, stats_.transfer_keys_received, t};
  dirty_ = false;
  return out;
}

// The sync policy applies to writes and received events: garbage collection, resolutions
// and recovery are committed without an fsync (a restart recomputes them), and they do not
// move the durable end.
void replica::take_durability(ready& out) {
  out.events_in = std::exchange(events_in_, false);
  bool forced = std::exchange(force_sync_, false);
  if (!store_->durable()) {
    clean_ = false; // nothing survives a memory store: all of it may be shipped at once
    if (store_->log_end() > durable_end_)
      out.durable_end = durable_end_ = store_->log_end();
    return;
  }
  asked_durable_ = false;
  if (forced) {
    out.commit = out.sync = asked_durable_ = true;
    if (std::exchange(clean_, false))
      store_->put_meta("clean", "1");
  } else if (out.commit && out.events_in) {
    if (cfg_.sync == sync_policy::batch && !sync_pending_)
      out.group_sync = sync_pending_ = true;
    out.sync = cfg_.sync == sync_policy::always;
    asked_durable_ = cfg_.sync != sync_policy::batch;
  }
  asked_sync_ = out.sync;
  asked_end_ = store_->log_end();
  out.hold_acks = cfg_.sync == sync_policy::batch && sync_pending_;
}

void replica::committed(bool synced) {
  committed_end_ = asked_end_;
  if (asked_durable_ && (synced || !asked_sync_))
    advance_durable(asked_end_);
  asked_durable_ = false;
}

void replica::synced(bool ok) {
  sync_pending_ = false;
  if (!ok)
    return; // nothing of it counts as durable: those writes are refused, nothing is shipped
  advance_durable(committed_end_);
  ready_.release_acks = true;
}

void replica::store_recovered() {
  committed_end_ = store_->log_end();
  advance_durable(committed_end_);
}

void replica::make_durable(bool clean) {
  force_sync_ = true;
  clean_ = clean;
}

void replica::advance_durable(uint64_t end) {
  if (end <= durable_end_)
    return;
  durable_end_ = end;
  ready_.durable_end = end;
}

void replica::link_waiting(messages::node_index dest, uint64_t from, messages::node_index ship_to,
                           size_t max_events, size_t max_scan) {
  max_events = std::max<size_t>(max_events, 1);
  waiting_links_[dest] = waiting_link{from, ship_to, max_events, std::max(max_scan, max_events)};
}

// One batch for each waiting link that has something past where it stands; it then waits
// no longer. Stretches of entries that are not for it are scanned on until the shippable
// end; when they were all there was, an empty batch moves the link, so that its
// acknowledged cursor follows the log.
void replica::take_batches(ready& out) {
  auto end = shippable_end();
  for (auto it = waiting_links_.begin(); it != waiting_links_.end();) {
    auto& w = it->second;
    if (end <= w.from) {
      ++it;
      continue;
    }
    auto got = fetch(it->first, w.from, w.max_events, w.max_scan, w.ship_to);
    for (auto scan = w.from; got.batch.events.empty() && got.next > scan && got.next < end;) {
      scan = got.next; // nothing for it in this stretch: look further
      got = fetch(it->first, scan, w.max_events, w.max_scan, w.ship_to);
    }
    if (got.next <= w.from) { // the store could not read on: it stays waiting, tried again
      ++it;
      continue;
    }
    out.batches.push_back(
      ready::outgoing_batch{it->first, w.ship_to, w.from, got.next, std::move(got.batch)});
    it = waiting_links_.erase(it); // it says where it stands again once it took it
  }
}

void replica::keep_cursor(messages::node_index dest, uint64_t pos) {
  if (store_->durable())
    store_->put_meta("cursor." + std::to_string(dest), std::to_string(pos));
}

uint64_t replica::kept_cursor(messages::node_index dest) const {
  auto saved = store_->get_meta("cursor." + std::to_string(dest));
  return saved ? std::strtoull(saved->c_str(), nullptr, 10) : 0;
}

void replica::persist() {
  store_->put_meta("applied", storage::serialize(applied_));
  store_->put_meta("retired", storage::serialize(retired_));
  store_->put_meta("hlc", std::to_string(clock_.last().value));
  store_->put_meta("incarnation", std::to_string(self_.incarnation));
}

} // namespace mlr::core
