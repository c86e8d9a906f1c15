// The leader carries out what its replica asks (execute), and keeps the store, the peers
// and the resolver in step: durability (group commit, recovery), gossip, pulls and
// resolutions.

#include "actors/detail/leader_impl.hpp"

#include "core/typed.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

namespace mlr::actors::detail {

leader_impl::executed leader_impl::execute() {
  executed out;
  auto r = replica_.take_ready();
  carry_out(r, out);
  if (r.commit && !out.failed) {
    auto after = replica_.take_ready(); // what the commit made durable
    carry_out(after, out);
  }
  return out;
}

void leader_impl::carry_out(core::ready& r, executed& out) {
  for (auto& line : r.log)
    log(line);
  if (r.commit)
    commit(r, out);
  hold_acks_ = r.hold_acks;
  ship_batches(r.batches);
  if (r.release_acks) {
    auto held = std::move(deferred_);
    deferred_.clear();
    for (auto& d : held)
      d(nullptr);
  }
  if (!r.changes.empty())
    deliver(r.changes);
  for (auto& c : r.conflicts)
    ask_resolver(std::move(c));
  for (auto dest : r.relay_links)
    spawn_relay_link(dest);
  if (r.topology)
    apply_topology(*r.topology);
  for (auto& key : r.recovered_siblings)
    retry_keys_[key] = 0; // asked again at the first tick
  if (cfg_.replica.observer && (r.events_in || r.commit))
    cfg_.replica.observer->on_handled(replica_);
  if (r.events_in)
    retry_waiting();
}

void leader_impl::commit(const core::ready& r, executed& out) {
  out.changed = true;
  if (auto ok = replica_.mutable_store().commit(r.sync); !ok) {
    store_error_ = ok.err().message;
    out.failed = true;
    report_broken_store();
    return;
  }
  replica_.committed(r.sync);
  if (r.group_sync && !sync_scheduled_) {
    sync_scheduled_ = true;
    send(this, sync_atom::value);
  }
}

void leader_impl::collect_garbage() {
  replica_.collect_garbage(steady_ms());
  execute();
}

void leader_impl::retry_store() {
  auto ok = replica_.mutable_store().recover();
  if (!ok) {
    store_error_ = ok.err().message; // the latest reason
    return;
  }
  log("the data directory takes writes again (was: " + store_error_ + ")");
  store_error_.clear();
  replica_.store_recovered();
  execute();
}

void leader_impl::ship_batches(std::vector<core::ready::outgoing_batch>& batches) {
  for (auto& b : batches) {
    auto i = links_.find(b.dest);
    if (i == links_.end() || !i->second.handle)
      continue;
    shipment r;
    r.from = b.from;
    r.ship_to = b.ship_to;
    r.count = static_cast<uint32_t>(b.batch.events.size());
    if (r.count > 0)
      r.batch = messages::encode(b.batch);
    r.next = b.next;
    caf::anon_send(i->second.handle, shipment_atom::value, std::move(r));
  }
}

void leader_impl::group_commit() {
  sync_scheduled_ = false;
  auto ok = replica_.mutable_store().sync();
  replica_.synced(static_cast<bool>(ok));
  if (!ok) {
    auto held = std::move(deferred_);
    deferred_.clear();
    store_error_ = ok.err().message;
    log("group commit failed: " + store_error_ + "; " + std::to_string(held.size()) +
        " writes not acknowledged, writes refused until the data directory recovers");
    report_broken_store();
    auto err = make_error(errc::storage_full,
                          "write not durable: " + store_error_ +
                            "; it was applied in memory and may or may not reach the disk, "
                            "so its outcome is unknown");
    for (auto& d : held)
      d(&err);
  }
  execute(); // releases the answers the fsync covered and hands the links their batches
}

void leader_impl::report_broken_store() {
  if (!replica_.store().broken() || broken_reported_)
    return;
  broken_reported_ = true;
  if (cfg_.on_failure)
    cfg_.on_failure(store_error_);
}

messages::frame leader_impl::own_report() {
  messages::ack report;
  report.receiver = cfg_.replica.self;
  report.applied = replica_.applied();
  report.stable = replica_.stable();
  report.has_stable = true;
  return messages::encode(report);
}

void leader_impl::gossip() {
  if (peers_.empty())
    return;
  auto f = own_report();
  if (!replica_.is_live(cfg_.replica.self))
    return; // removed from the cluster
  for (messages::node_index n = 0; n < peers_.size(); ++n)
    if (n != cfg_.replica.self && peers_[n] && replica_.is_live(n))
      send(peers_[n], gossip_atom::value, f);
}

void leader_impl::maybe_pull(bool eager) {
  if (pull_in_flight_ || peers_.empty())
    return;
  auto plan = replica_.plan_pull(steady_ms(), eager);
  if (!plan)
    return;
  if (plan->holder >= peers_.size() || !peers_[plan->holder]) {
    replica_.pull_failed(); // nobody to ask there: the next plan asks another holder
    return;
  }
  pull_in_flight_ = true;
  replica_.pull_sent();
  auto holder = plan->holder;
  request(peers_[holder], cfg_.pull_timeout, pull_atom::value, messages::encode(plan->request))
    .then(
      [this, holder](messages::frame& answer) {
        pull_in_flight_ = false;
        auto batch = messages::decode_batch(answer, cfg_.limits);
        if (!batch || batch->sender != holder) {
          replica_.pull_failed(); // unreadable, or an answer in another node's name
          return;
        }
        replica_.receive_pulled(std::move(*batch), now());
        if (execute().changed)
          maybe_pull(true); // progress: go on at once while there is more to fetch
      },
      [this](caf::error&) {
        pull_in_flight_ = false;
        replica_.pull_failed();
      });
}

void leader_impl::ask_resolver(conflict c) {
  ++pending_resolutions_;
  auto shared = std::make_shared<conflict>(std::move(c));
  auto asked = resolver_;
  auto name = cfg_.resolver_name; // a swap while this question is out does not rename it
  request(resolver_, cfg_.resolver_timeout, resolvers::resolve_atom::value, shared->key,
          shared->versions)
    .then(
      [this, shared, name](resolvers::resolution& answer) {
        --pending_resolutions_;
        auto is_input = [&](const dot& d) {
          return std::any_of(shared->versions.begin(), shared->versions.end(),
                             [&](const messages::version& v) { return v.id == d; });
        };
        auto& keep = answer.keep;
        std::string refused;
        if (answer.merge && answer.value.size() > cfg_.max_value_bytes)
          refused = "resolver merged into " + std::to_string(answer.value.size()) +
                    " bytes, more than the " + std::to_string(cfg_.max_value_bytes) +
                    "-byte value limit";
        else if (!answer.merge &&
                 (keep.empty() || !std::all_of(keep.begin(), keep.end(), is_input)))
          refused = "resolver kept nothing or a dot it was not given";
        if (!refused.empty()) {
          replica_.unresolved(*shared, std::move(refused), decided(name));
          execute(); // the record goes with a commit now (and the observer is told)
          return;
        }
        // A stale answer, or versions that came after the question, make the replica ask
        // again (its ready value); a key is off the retry list once an answer applied.
        bool applied = answer.merge
                         ? replica_.merge(*shared, std::move(answer.value), decided(name))
                         : (replica_.resolve(*shared, keep, decided(name)), true);
        if (applied)
          retry_keys_.erase(shared->key);
        execute();
      },
      [this, shared, asked, name](caf::error& err) {
        --pending_resolutions_;
        replica_.unresolved(*shared, "resolver failed: " + system().render(err), decided(name));
        if (err == caf::sec::request_receiver_down && asked == resolver_)
          replace_resolver("it stopped");
        retry_keys_[shared->key] = steady_ms() + resolver_retry_ms;
        execute(); // the record goes with a commit now
      });
}

void leader_impl::replace_resolver(const std::string& why) {
  if (!cfg_.make_resolver || resolver_replaced_at_ == steady_ms())
    return;
  resolver_replaced_at_ = steady_ms();
  resolver_ = cfg_.make_resolver(system());
  monitor(resolver_);
  ++resolver_restarts_;
  log("the resolver was replaced: " + why);
}

uint64_t leader_impl::watch(std::string prefix, caf::actor who) {
  auto id = ++next_watch_;
  if (std::none_of(watchers_.begin(), watchers_.end(),
                   [&](auto& kv) { return kv.second.who == who; }))
    monitor(who); // once per actor: a gateway holds many watches
  watchers_[id] = watcher{std::move(prefix), std::move(who), 0};
  replica_.report_changes(true);
  return id;
}

void leader_impl::unwatch(uint64_t id, const std::string& why) {
  auto i = watchers_.find(id);
  if (i == watchers_.end())
    return;
  if (!why.empty()) {
    log("dropped change subscription " + std::to_string(id) + " (prefix '" + i->second.prefix +
        "'): " + why);
    caf::anon_send(i->second.who, change_atom::value, id, why);
  }
  auto who = i->second.who;
  watchers_.erase(i);
  if (std::none_of(watchers_.begin(), watchers_.end(),
                   [&](auto& kv) { return kv.second.who == who; }))
    demonitor(who.address()); // (CAF drops every monitor of that actor at once)
  replica_.report_changes(!watchers_.empty());
}

void leader_impl::deliver(const std::vector<change>& changes) {
  std::vector<uint64_t> behind;
  for (auto& [id, w] : watchers_) {
    std::vector<change> mine;
    for (auto& c : changes)
      if (c.key.compare(0, w.prefix.size(), w.prefix) == 0)
        mine.push_back(c);
    if (mine.empty())
      continue;
    w.unacked += mine.size();
    for (auto& c : mine)
      w.unacked_bytes += core::change_bytes(c);
    if (w.unacked > cfg_.max_watch_backlog || w.unacked_bytes > cfg_.max_watch_backlog_bytes) {
      behind.push_back(id);
      continue;
    }
    caf::anon_send(w.who, change_atom::value, id, std::move(mine));
  }
  for (auto id : behind)
    unwatch(id, "more than " + std::to_string(cfg_.max_watch_backlog) + " changes or " +
                  std::to_string(cfg_.max_watch_backlog_bytes >> 20) +
                  " MiB unread; subscribe again and read faster");
}

uint32_t leader_impl::swap_resolver(resolvers::resolver_factory make, std::string name) {
  auto next = make(system());
  demonitor(resolver_.address());
  swapped_out_.push_back(std::move(resolver_));
  if (swapped_out_.size() > 4)
    swapped_out_.erase(swapped_out_.begin());
  resolver_ = std::move(next);
  cfg_.make_resolver = std::move(make);
  cfg_.resolver_name = std::move(name);
  monitor(resolver_);
  log("the resolver was swapped for " +
      (cfg_.resolver_name.empty() ? "another" : "'" + cfg_.resolver_name + "'") + ": " +
      std::to_string(pending_resolutions_) + " questions in flight go on with the previous one, " +
      std::to_string(retry_keys_.size()) +
      " keys whose resolution failed are asked of the new one now");
  for (auto& [key, due] : retry_keys_)
    due = 0;
  retry_resolutions();
  return pending_resolutions_;
}

void leader_impl::retry_resolutions() {
  auto now_ms = steady_ms();
  for (auto i = retry_keys_.begin(); i != retry_keys_.end();) {
    if (i->second > now_ms) {
      ++i;
      continue;
    }
    auto versions = replica_.versions(i->first);
    auto key = i->first;
    i = retry_keys_.erase(i);
    auto regs = core::typed::registers(versions);
    if (regs.size() > 1)
      ask_resolver(conflict{key, std::move(regs)});
  }
}

} // namespace mlr::actors::detail
