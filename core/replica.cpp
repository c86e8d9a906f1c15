#include "core/replica.hpp"

#include "core/typed.hpp"

#include "core/router.hpp"

#include "storage/serialize.hpp"

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace mlr::core {

using messages::dot;
using messages::event;
using messages::version;

bool batch_budget::take(const event& e) {
  size_t added = 0;
  messages::for_each_source(e, [&](const messages::source& s) {
    if (!sources_.count(s))
      ++added;
  });
  auto bytes = messages::encoded_size_bound(e);
  bool first = events_ == 0;
  if (!first &&
      (bytes_ + bytes > max_bytes_ || sources_.size() + added > messages::max_batch_sources))
    return false;
  messages::for_each_source(e, [&](const messages::source& s) { sources_.insert(s); });
  bytes_ += bytes;
  ++events_;
  return true;
}

replica::replica(replica_config cfg, std::unique_ptr<storage::store> store)
    : cfg_(std::move(cfg)), self_{cfg_.self, cfg_.incarnation},
      store_(storage::with_digest(std::move(store))), // status must not scan the state
      clock_(cfg_.max_clock_offset_ms), buffer_(cfg_.max_buffered, cfg_.max_buffered_bytes) {
  recover();
  // A node with a past (recovered from its store), alone, or told not to wait, writes at
  // once.
  caught_up_ =
    !cfg_.catch_up_wait || cfg_.forward_to.size() <= 1 || !applied_.empty() || !retired_.empty();
  taken_.log_end = store_->log_end(); // what it recovered is committed already
  committed_end_ = durable_end_;
}

bool replica::caught_up(uint64_t now_ms) {
  if (caught_up_)
    return true;
  if (!started_ms_)
    started_ms_ = now_ms; // the leader asks once when it starts
  // What a report showed. After a long wait (ten patience periods), only as far as
  // somebody still reports holding it: dots that a peer showed and then lost (it restarted
  // empty before shipping them) exist nowhere, and would hold writes back for ever. Not
  // sooner: the reports at hand may be older than the target (a peer's heartbeat), and
  // trusting them let a node write before it held what the others had forgotten (found by
  // the simulation).
  bool lenient = now_ms - *started_ms_ >= 10 * cfg_.catch_up_patience_ms;
  auto everyone = lenient ? known() : messages::version_vector{};
  auto holds = [&](const messages::version_vector& vv) {
    for (auto& [s, c] : vv.entries())
      if (std::max(applied_.get(s), retired_.get(s)) < (lenient ? std::min(c, everyone.get(s)) : c))
        return false;
    return true;
  };
  // The first report of a peer with a history is the target: what the others collected
  // before this node started, that peer holds; what they collect later waits for this
  // node's own reports. (A later report would be a moving target under writes.)
  bool holds_all = true;
  size_t heard = 0;
  for (auto& [node, vv] : reported_) {
    if (!is_member(node))
      continue;
    ++heard;
    auto st = reported_stable_.find(node);
    if (!catch_up_target_ && st != reported_stable_.end() && !st->second.empty())
      catch_up_target_ = vv;
    holds_all = holds_all && holds(vv);
  }
  if (catch_up_target_) {
    caught_up_ = holds(*catch_up_target_);
    return caught_up_;
  }
  size_t members = 0;
  for (messages::node_index n = 0; n < std::max(live_.size(), cfg_.forward_to.size()); ++n)
    members += n != cfg_.self && is_live(n) ? 1 : 0;
  // At least one peer must have been heard: a node that hears nobody cannot know what it
  // lost.
  if (holds_all && heard > 0 &&
      (heard >= members || now_ms - *started_ms_ >= cfg_.catch_up_patience_ms))
    caught_up_ = true;
  return caught_up_;
}

// Restores what a durable store remembers: the version vector, the HLC, the counter (when
// the incarnation is the same) and the position index of the log.
void replica::recover() {
  if (auto raw = store_->get_meta("applied")) {
    if (auto vv = storage::deserialize_version_vector(*raw))
      applied_ = std::move(*vv);
  }
  if (auto raw = store_->get_meta("retired")) {
    if (auto vv = storage::deserialize_version_vector(*raw))
      retired_ = std::move(*vv);
  }
  if (auto raw = store_->get_meta("hlc"))
    clock_.restore(messages::hlc{std::strtoull(raw->c_str(), nullptr, 10)});
  counter_ = applied_.get(self_);
  full_deps_next_ = counter_ > 0;
  // Keys whose versions include deletes, so that their tombstones are collected after a
  // restart too (one scan of the key state at start-up).
  store_->for_each([&](const std::string& key, const std::vector<version>& vs) {
    if (std::any_of(vs.begin(), vs.end(), [](const version& v) { return v.tombstone; }))
      tombstoned_.insert(key);
    if (typed::needs_resolver(vs) && // a stored merge stands for its versions as they are
        key.compare(0, reserved_key_prefix.size(), reserved_key_prefix) != 0)
      recovered_siblings_.push_back(key);
  });
  if (auto* t = store_->find(topology_key)) {
    auto vs = *t;
    reduce_reserved(topology_key, vs);
  }
  // Compacted entries are gone; their index slots hold their old positions, which read()
  // answers with nullptr and pull answers skip.
  for (uint64_t pos = store_->log_begin(); pos < store_->log_end(); ++pos)
    if (auto* e = store_->read(pos); e && !retired_.covers(e->ev.id))
      index_position(e->ev.id, pos);
  durable_end_ = store_->log_end();
  recover_feed();
}

void replica::check_own_dot(const dot& d) {
  if (d.origin != self_ || d.counter <= counter_)
    return;
  if (!cfg_.new_incarnation) {
    // No source of new incarnations: at least never issue a counter that exists.
    counter_ = d.counter;
    ++stats_.incarnations_taken;
    return;
  }
  // Everything this incarnation issued up to d.counter exists elsewhere: stop using it.
  self_.incarnation = cfg_.new_incarnation();
  counter_ = 0;
  ++stats_.incarnations_taken;
}

bool replica::names_members(const event& e) const {
  auto members = std::max(live_.size(), cfg_.forward_to.size());
  auto member = [&](const dot& d) { return d.origin.node < members && d.counter > 0; };
  return member(e.id) && std::all_of(e.deps.begin(), e.deps.end(), member) &&
         std::all_of(e.context.begin(), e.context.end(), member);
}

std::vector<dot> replica::missing_context(const write_request& w) const {
  std::vector<dot> out;
  if (!w.has_context)
    return out;
  for (auto& d : messages::canonical_context(w.context))
    if (!held(d))
      out.push_back(d);
  return out;
}

void replica::want(const std::vector<dot>& dots) {
  for (auto& d : dots)
    if (!held(d))
      wanted_.advance(d);
}

void replica::clear_wanted() {
  wanted_ = messages::version_vector{};
}

dot replica::write(const write_request& w, uint64_t now_ms) {
  events_in_ = true;
  // Never issue a dot this node already holds (its past came back some other way).
  check_own_dot(dot{self_, applied_.get(self_)});
  event e;
  e.id = dot{self_, ++counter_};
  e.time = clock_.tick(now_ms);
  // Deps: what this origin applied since its previous write (everything, for the first
  // write of the incarnation). Its own previous write is implied by the counter.
  e.deps = applied_.delta_since(counter_ == 1 || full_deps_next_ ? messages::version_vector{}
                                                                 : applied_at_last_write_);
  full_deps_next_ = false;
  e.deps.erase(
    std::remove_if(e.deps.begin(), e.deps.end(), [&](const dot& d) { return d.origin == self_; }),
    e.deps.end());
  // Last writer wins must agree with causality: a write is after every version this node
  // holds of its key, whatever clock those came from (a peer's clock may run ahead of the
  // offset this clock follows); and after any delete of it this node forgot (see
  // collect_garbage). Only this event is stamped later: the node's clock is not dragged
  // along (other keys keep honest times).
  if (auto* current = store_->find(w.key))
    for (auto& v : *current)
      if (!(e.time > v.time) && v.time.value < UINT64_MAX)
        e.time = messages::hlc{v.time.value + 1};
  static const std::vector<messages::version> none;
  auto* current = store_->find(w.key);
  auto prep = typed::prepare(current ? *current : none, w, self_);
  bool register_write = prep.op == messages::op_kind::put || prep.op == messages::op_kind::del;
  e.context = w.has_context && register_write ? messages::canonical_context(w.context)
                                              : std::move(prep.context);
  e.key = w.key;
  e.op = prep.op;
  if (w.op == messages::op_kind::put || w.op == messages::op_kind::hset)
    e.value = w.value;
  if (!register_write)
    e.field = w.field;
  e.total = prep.total;
  e.removed = std::move(prep.removed);
  if (messages::is_text_op(w.op) && !local_text(w, e)) {
    --counter_; // nothing to send: the dot is not issued
    drop_if_empty(w.key);
    return dot{};
  }
  over_text(current, e);
  ++stats_.local_writes;
  if (cfg_.observer)
    cfg_.observer->on_apply(cfg_.self, e, true);
  apply(std::move(e), ready_.conflicts);
  local_text_.reset();
  applied_at_last_write_ = applied_;
  return dot{self_, counter_};
}

replica::receive_result replica::receive(messages::event_batch batch, uint64_t now_ms) {
  events_in_ = true;
  auto& conflicts = ready_.conflicts;
  receive_result out;
  for (auto& e : batch.events) {
    e.relay_for = batch.relay_for;
    if (e.relay_for != messages::no_node)
      ++stats_.relayed;
    ++out.received;
    ++stats_.events_received;
    if (!names_members(e) || is_text_op_key(e.key)) {
      ++stats_.events_refused; // it could never be applied (it would wait forever), or it
      continue;                // writes where only the replica does
    }
    check_own_dot(e.id);
    if (held(e.id) || buffer_.contains(e.id)) {
      ++out.duplicates;
      ++stats_.duplicates;
      continue;
    }
    if (retired_.get(e.id.origin) > 0)
      ++stats_.retired_late; // in flight when its incarnation was retired: taken after it
    clock_.observe(e.time, now_ms);
    if (causal_buffer::ready(e, applied_, retired_)) {
      apply_remote(std::move(e), conflicts);
      release_buffered(conflicts);
    } else if (buffer_.insert(std::move(e)) == causal_buffer::insert_result::full) {
      // Dropped for now; pull fetches it again once there is room. What it waits for is
      // pulled meanwhile, as for a buffered event: it may be a source nobody reports (an
      // incarnation the others retired), which only that pull finds.
      ++stats_.buffer_overflows;
      if (overflow_wanted_.size() < max_overflow_wanted) {
        if (!held(dot{e.id.origin, e.id.counter - 1}))
          overflow_wanted_.advance(dot{e.id.origin, e.id.counter - 1});
        for (auto& d : e.deps)
          if (!held(d))
            overflow_wanted_.advance(d);
      }
    }
  }
  stats_.buffered = buffer_.size();
  stats_.buffered_peak = std::max<uint64_t>(stats_.buffered_peak, stats_.buffered);
  return out;
}

// Start, progress (every tenth of the keys) and end of an incoming state transfer.
void replica::report_transfer(const transfer_progress& before, const transfer_progress& after,
                              std::vector<std::string>& log) const {
  auto from = [](const transfer_progress& t) { return "node " + std::to_string(t.from); };
  if (after.active && !before.active) {
    log.push_back("state transfer from " + from(after) +
                  " wanted: what this node lacks left the log");
  } else if (after.active && after.keys_total > 0 &&
             after.keys_done * 10 / after.keys_total != before.keys_done * 10 / after.keys_total) {
    log.push_back("state transfer from " + from(after) + ": " + std::to_string(after.keys_done) +
                  " of ~" + std::to_string(after.keys_total) + " keys");
  } else if (before.active && !after.active) {
    log.push_back("state transfer from " + from(before) + " done: " +
                  std::to_string(stats_.transfer_keys_received) + " keys merged in total, " +
                  std::to_string(stats_.transfers_received) + " transfers");
  }
}

void replica::set_routing(const routing& r) {
  cfg_.forward_to = r.forward_to;
  cfg_.trees = r.trees;
  live_ = r.live;
  routing_changed_ = true;
}

replica::fetch_result replica::fetch(messages::node_index dest, uint64_t from, size_t max_events,
                                     size_t max_scan, messages::node_index ship_to) {
  fetch_result out;
  out.batch.sender = cfg_.self;
  out.batch.epoch = epoch_time_.value; // the topology this node routes by (0: the static one)
  if (ship_to == messages::no_node)
    ship_to = dest;
  if (ship_to != dest)
    out.batch.relay_for = dest;
  auto reported = reported_.find(ship_to);
  auto* has = reported == reported_.end() ? nullptr : &reported->second;
  auto end = std::min<uint64_t>(shippable_end(), from + max_scan);
  uint64_t pos = std::max(from, store_->log_begin());
  batch_budget budget(cfg_.max_batch_bytes);
  for (; pos < end && out.batch.events.size() < max_events; ++pos) {
    auto* entry = store_->read(pos);
    if (!entry)
      break; // the store could not read it (damaged): ship what came before
    if (!entry->forward.contains(dest))
      continue;
    // A detour never takes an event back to its origin, nor to a node that has it.
    if (entry->ev.id.origin.node == ship_to || (has && has->covers(entry->ev.id))) {
      ++stats_.skipped_covered; // it got there another way (a detour, a pull)
      continue;
    }
    if (!budget.take(entry->ev))
      break; // full: the next batch starts here
    out.batch.events.push_back(entry->ev);
  }
  out.next = pos;
  stats_.events_sent += out.batch.events.size();
  return out;
}

} // namespace mlr::core
