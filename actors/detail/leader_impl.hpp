#pragma once
// Internal to the leader (leader.cpp, leader_routing.cpp): the actor's class. Users spawn
// leaders with spawn_leader (leader.hpp) and never see this.

#include "actors/leader.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

namespace mlr::actors::detail {

using messages::dot;

class leader_impl : public leader_actor::base {
public:
  leader_impl(caf::actor_config& ac, leader_config cfg, std::unique_ptr<storage::store> store,
              resolvers::resolver_actor resolver)
      : leader_actor::base(ac), cfg_(std::move(cfg)),
        replica_(catch_up_rule(cfg_), std::move(store)), resolver_(std::move(resolver)) {
    durable_end_ = replica_.log_end();
    if (!cfg_.wall_clock_ms)
      cfg_.wall_clock_ms = system_wall_clock_ms;
  }

  behavior_type make_behavior() override;

  // Handlers of make_behavior longer than a line or two (leader.cpp).
  void install_failure_handlers();
  caf::result<messages::frame> on_batch(const messages::frame& f);
  caf::result<std::vector<get_result>> read_many(const std::vector<std::string>& keys);
  fetch_result on_fetch(messages::node_index dest, uint64_t from, uint32_t max_events,
                        messages::node_index ship_to);
  uint64_t on_subscribe(messages::node_index dest);
  node_status status();
  caf::result<messages::frame> on_pull(const messages::frame& f);
  void on_gossip(const messages::frame& f);
  void on_peers(std::vector<sink_actor>& peers);
  void on_detour(messages::node_index to, bool detoured);
  bool on_shutdown();
  void on_tick();

  // Handles form cycles (links hold their leader, the leader holds its links): drop
  // them on exit so the actors can be destroyed.
  void on_exit() override {
    links_.clear();
    peers_.clear();
    resolver_ = nullptr;
    // Writes waiting for their context, for catching up or for the fsync hold response
    // promises, which hold this actor: a leader killed with writes waiting was never freed.
    waiting_.clear();
    deferred_.clear();
  }

private:
  // Without gossip (tick interval zero) nothing is ever stable or collected, so a node
  // started without state has nothing to catch up before it writes.
  static const replica_config& catch_up_rule(leader_config& cfg) {
    if (cfg.tick_interval.count() <= 0)
      cfg.replica.catch_up_wait = false;
    return cfg.replica;
  }

  struct link_entry {
    caf::actor handle;
    bool wants_wakeup = false;
  };

  uint64_t now() { return cfg_.wall_clock_ms(); }

  get_result read(const std::string& key) {
    get_result out;
    for (auto& v : replica_.versions(key)) {
      out.context.dots.push_back(v.id);
      if (!v.tombstone)
        out.siblings.push_back(v);
    }
    return out;
  }

  caf::result<dot> write_one(const write_request& w) {
    return write_all<dot>({w}, [](std::vector<dot>& ds) { return ds.front(); });
  }

  // Writes `ws` in order, all or none, and acknowledges them as the durability policy
  // says; `pick` turns their dots into the reply. A write whose context names dots this
  // node has not applied (read at another node, or before it restarted empty) waits for
  // them, because a context is part of the write's causal past (DESIGN.md, "Hostile
  // input"); writes without such a context do not wait behind it.
  template <class T, class Pick>
  caf::result<T> write_all(std::vector<write_request> ws, Pick pick) {
    note_mailbox();
    if (auto err = refusal(ws))
      return *err;
    if (!caught_up_seen_ && replica_.caught_up(steady_ms())) {
      caught_up_seen_ = true;
      retry_waiting(); // the writes that waited for it go first, in the order they came
    }
    std::vector<dot> missing;
    for (auto& w : ws)
      for (auto& d : replica_.missing_context(w))
        missing.push_back(d);
    if (missing.empty() && replica_.caught_up(steady_ms())) {
      auto dots = apply_writes(ws);
      return acknowledge(pick(dots));
    }
    size_t bytes = 0;
    for (auto& w : ws)
      bytes += w.key.size() + w.value.size();
    if (waiting_.size() >= cfg_.max_waiting_writes ||
        waiting_bytes_ + bytes > cfg_.max_waiting_bytes)
      return make_error(errc::retry_later, std::to_string(waiting_.size()) + " writes (" +
                                             std::to_string(waiting_bytes_) +
                                             " bytes) already wait for their " +
                                             "contexts here; nothing was written: retry later");
    waiting_bytes_ += bytes;
    replica_.want(missing);
    auto rp = make_response_promise<T>();
    auto deadline = steady_ms() + static_cast<uint64_t>(cfg_.context_wait.count());
    waiting_.push_back(
      waiting_write{deadline, [this, rp, ws = std::move(ws), pick, bytes](bool expired) mutable {
                      std::vector<dot> still;
                      for (auto& w : ws)
                        for (auto& d : replica_.missing_context(w))
                          still.push_back(d);
                      bool behind = !replica_.caught_up(steady_ms());
                      if (!still.empty() || behind) {
                        if (expired) {
                          rp.deliver(still.empty() ? catching_up_error() : context_error(still));
                          waiting_bytes_ -= bytes;
                        }
                        return expired;
                      }
                      waiting_bytes_ -= bytes;
                      if (auto err = refusal(ws)) {
                        rp.deliver(*err);
                        return true;
                      }
                      auto dots = apply_writes(ws);
                      acknowledge_to(rp, pick(dots));
                      return true;
                    }});
    return rp;
  }

  std::optional<caf::error> refusal(const std::vector<write_request>& ws) {
    if (auto err = removed_error())
      return err;
    if (!store_error_.empty())
      return make_error(errc::storage_full, "write refused: " + store_error_);
    for (auto& w : ws) {
      if (reserved(w.key))
        return reserved_error();
      if (auto err = size_error(w))
        return err; // nothing of the message is written
    }
    return std::nullopt;
  }

  std::vector<dot> apply_writes(const std::vector<write_request>& ws) {
    std::vector<dot> dots;
    dots.reserve(ws.size());
    for (auto& w : ws)
      dots.push_back(replica_.write(w, now()));
    execute();
    return dots;
  }

  caf::error catching_up_error() {
    return make_error(errc::retry_later,
                      "this node started without data and has not caught up with its peers " +
                        std::string("within ") + std::to_string(cfg_.context_wait.count()) +
                        " ms (it holds " + std::to_string(replica_.applied().total()) +
                        " events); nothing was written: retry shortly, or write at another " +
                        "node");
  }

  caf::error context_error(const std::vector<dot>& missing) {
    std::string names;
    for (size_t i = 0; i < missing.size() && i < 3; ++i)
      names += (i ? ", " : "") + messages::to_string(missing[i]);
    if (missing.size() > 3)
      names += " and " + std::to_string(missing.size() - 3) + " more";
    return make_error(errc::retry_later,
                      "the context names " + names + ", which this node has not received " +
                        "within " + std::to_string(cfg_.context_wait.count()) +
                        " ms; nothing was written: write at the node you read from, or retry " +
                        "once it has replicated");
  }

  // Writes that waited for their contexts: those whose contexts arrived are applied (in
  // the order they came), those past their deadline refused.
  void retry_waiting() {
    if (waiting_.empty() || retrying_)
      return;
    retrying_ = true;
    auto now_ms = steady_ms();
    std::vector<waiting_write> keep;
    auto batch = std::move(waiting_);
    waiting_.clear();
    for (auto& w : batch)
      if (!w.retry(now_ms >= w.deadline_ms))
        keep.push_back(std::move(w));
    keep.insert(keep.end(), std::make_move_iterator(waiting_.begin()),
                std::make_move_iterator(waiting_.end()));
    waiting_ = std::move(keep);
    if (waiting_.empty())
      replica_.clear_wanted();
    retrying_ = false;
  }

  bool durable_store() { return replica_.store().durable(); }

  // A member the topology removed takes no writes and serves no reads: it no longer
  // receives anything, so what it would serve goes stale. Its clients are told where to go.
  std::optional<caf::error> removed_error() {
    if (replica_.is_live(cfg_.replica.self))
      return std::nullopt;
    std::string live;
    if (current_routing_)
      for (size_t i = 0; i < current_routing_->members.size(); ++i)
        if (i < current_routing_->live.size() && current_routing_->live[i])
          live += (live.empty() ? "" : ", ") + current_routing_->members[i];
    return make_error(errc::refused, "this node was removed from the cluster (topology epoch " +
                                       epoch_name() + "); nothing was done: use a live member (" +
                                       live + ")");
  }

  // A key or value above the node's limits is refused before anything is written.
  std::optional<caf::error> size_error(const write_request& w) {
    if (w.key.size() > cfg_.max_key_bytes)
      return make_error(errc::too_large,
                        "key is " + std::to_string(w.key.size()) + " bytes; the limit is " +
                          std::to_string(cfg_.max_key_bytes) + " (--max-key-bytes)");
    if (w.value.size() > cfg_.max_value_bytes)
      return make_error(errc::too_large,
                        "value is " + std::to_string(w.value.size()) + " bytes; the limit is " +
                          std::to_string(cfg_.max_value_bytes) + " (--max-value-bytes)");
    return std::nullopt;
  }

  static bool reserved(const std::string& key) {
    return key.compare(0, reserved_key_prefix.size(), reserved_key_prefix) == 0;
  }
  static caf::error reserved_error() {
    return make_error(errc::refused,
                      "keys starting with \\0mlr: are the cluster's own; choose another key");
  }

  // Under group commit a write is acknowledged after the fsync that covers it.
  template <class T> caf::result<T> acknowledge(T value) {
    if (!store_error_.empty())
      return not_durable_error();
    if (!durable_store() || cfg_.sync != sync_policy::batch)
      return value;
    auto rp = make_response_promise<T>();
    deferred_.push_back([rp, value](const caf::error* err) mutable {
      if (err)
        rp.deliver(*err);
      else
        rp.deliver(value);
    });
    return rp;
  }

  // The same for a promise made earlier (a write that waited for its context).
  template <class T> void acknowledge_to(caf::typed_response_promise<T>& rp, T value) {
    if (!store_error_.empty())
      rp.deliver(not_durable_error());
    else if (!durable_store() || cfg_.sync != sync_policy::batch)
      rp.deliver(std::move(value));
    else
      deferred_.push_back([rp, value](const caf::error* err) mutable {
        if (err)
          rp.deliver(*err);
        else
          rp.deliver(value);
      });
  }

  caf::error not_durable_error() {
    return make_error(errc::storage_full,
                      "write not durable: " + store_error_ +
                        "; it stays in memory and becomes durable if space is freed before "
                        "the node stops, so its outcome is unknown");
  }

  // Carries out what the replica asks after an input (its ready value), and nothing else:
  // commits what changed (`by_policy`: as the sync policy says, after writes and events;
  // otherwise without an fsync, after garbage collection and resolutions, which a restart
  // recomputes), wakes links for what became shippable, hands conflicts to the resolver,
  // starts relay links, routes by a new topology and logs. True when the store changed.
  bool execute(bool by_policy = true) {
    auto r = replica_.take_ready();
    for (auto& line : r.log)
      log(line);
    if (r.commit && durable_store()) {
      auto ok = replica_.mutable_store().commit(by_policy && cfg_.sync == sync_policy::always);
      if (!ok) {
        store_error_ = ok.err().message;
        if (by_policy)
          report_broken_store();
      } else if (by_policy && cfg_.sync == sync_policy::batch) {
        if (!sync_scheduled_) {
          sync_scheduled_ = true;
          send(this, sync_atom::value);
        }
      } else if (by_policy) {
        advance_durable();
      }
    } else if (!durable_store()) {
      advance_durable();
    }
    for (auto& c : r.conflicts)
      ask_resolver(std::move(c));
    for (auto dest : r.relay_links)
      spawn_relay_link(dest);
    if (r.topology)
      apply_topology(*r.topology);
    for (auto& key : r.recovered_siblings)
      retry_keys_[key] = 0; // asked again at the first tick
    if (cfg_.replica.observer && (by_policy || r.commit))
      cfg_.replica.observer->on_handled(replica_);
    if (by_policy)
      retry_waiting();
    return r.commit;
  }

  // Topology, links and relays (leader_routing.cpp).
  void spawn_relay_link(messages::node_index dest);
  void spawn_link(messages::node_index dest, const std::vector<messages::node_index>& detours);
  void apply_topology(const std::string& spec);
  void route_by(const routing& r);
  void ensure_links();
  std::string epoch_name();
  result<dot> write_topology(const std::string& spec);
  void log(const std::string& line);
  void collect_garbage() {
    replica_.collect_garbage(steady_ms());
    execute(/*by_policy=*/false);
  }

  // The store refused a write (a full disk): try again; once it takes it, writes resume.
  void retry_store() {
    auto ok = replica_.mutable_store().recover();
    if (!ok) {
      store_error_ = ok.err().message; // the latest reason
      return;
    }
    log("the data directory takes writes again (was: " + store_error_ + ")");
    store_error_.clear();
    advance_durable();
  }

  // Everything committed so far is durable: links may ship it.
  void advance_durable() {
    auto end = replica_.log_end();
    if (end <= durable_end_)
      return;
    durable_end_ = end;
    replica_.set_durable_end(end);
    for (auto& [dest, link] : links_) {
      if (link.wants_wakeup && link.handle) {
        link.wants_wakeup = false;
        caf::anon_send(link.handle, log_grew_atom::value);
      }
    }
  }

  // One fsync for every write applied since the last one. If it fails, none of them is
  // acknowledged as durable (their outcome is unknown: they are in the OS, maybe on disk)
  // and none is shipped, since advance_durable does not run; writes are refused until the
  // store takes writes again (retry_store).
  void group_commit() {
    sync_scheduled_ = false;
    auto ok = replica_.mutable_store().sync();
    auto ready = std::move(deferred_);
    deferred_.clear();
    if (!ok) {
      store_error_ = ok.err().message;
      log("group commit failed: " + store_error_ + "; " + std::to_string(ready.size()) +
          " writes not acknowledged, writes refused until the data directory recovers");
      report_broken_store();
      auto err = make_error(errc::storage_full,
                            "write not durable: " + store_error_ +
                              "; it was applied in memory and may or may not reach the disk, "
                              "so its outcome is unknown");
      for (auto& d : ready)
        d(&err);
      return;
    }
    advance_durable();
    for (auto& d : ready)
      d(nullptr);
  }

  // After a failed fsync only a restart recovers the store: say so to whoever runs the
  // node (mlr-node exits with status 3), once.
  void report_broken_store() {
    if (!replica_.store().broken() || broken_reported_)
      return;
    broken_reported_ = true;
    if (cfg_.on_failure)
      cfg_.on_failure(store_error_);
  }

  void note_mailbox() {
    // Messages already moved into the mailbox's queue and not yet handled (+1: this one).
    // mailbox().size() would move new arrivals into that queue while the actor is
    // iterating it, which CAF does not allow from inside a handler (UBSan caught it), so
    // messages still in the inbox are not counted: a lower bound, taken every message.
    mailbox_peak_ = std::max<uint64_t>(
      mailbox_peak_, static_cast<uint64_t>(mailbox().queue().total_task_size()) + 1);
  }

  uint64_t steady_ms() {
    return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(clock().now().time_since_epoch())
        .count());
  }

  messages::frame own_report() {
    messages::ack report;
    report.receiver = cfg_.replica.self;
    report.applied = replica_.applied();
    report.stable = replica_.stable();
    report.has_stable = true;
    return messages::encode(report);
  }

  // Tells every peer what this node has applied.
  void gossip() {
    if (peers_.empty())
      return;
    auto f = own_report();
    if (!replica_.is_live(cfg_.replica.self))
      return; // removed from the cluster
    for (messages::node_index n = 0; n < peers_.size(); ++n)
      if (n != cfg_.replica.self && peers_[n] && replica_.is_live(n))
        send(peers_[n], gossip_atom::value, f);
  }

  // Asks one holder for what this node has waited for past the grace period.
  void maybe_pull(bool eager = false) {
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
          if (execute())
            maybe_pull(true); // progress: go on at once while there is more to fetch
        },
        [this](caf::error&) {
          pull_in_flight_ = false;
          replica_.pull_failed();
        });
  }

  // Resolution is each node's own (deterministic in the set of versions, so all agree):
  // a node whose resolver failed would keep siblings the others dropped, for good. So a
  // failed or timed-out resolution is asked again (retry_resolutions), with the versions
  // the key holds then, and a resolver that died is replaced (supervision).
  void ask_resolver(conflict c) {
    ++pending_resolutions_;
    auto shared = std::make_shared<conflict>(std::move(c));
    request(resolver_, cfg_.resolver_timeout, resolvers::resolve_atom::value, shared->key,
            shared->versions)
      .then(
        [this, shared](std::vector<dot>& keep) {
          --pending_resolutions_;
          auto is_input = [&](const dot& d) {
            return std::any_of(shared->versions.begin(), shared->versions.end(),
                               [&](const messages::version& v) { return v.id == d; });
          };
          if (keep.empty() || !std::all_of(keep.begin(), keep.end(), is_input)) {
            replica_.unresolved(*shared, "resolver kept nothing or a dot it was not given");
            if (cfg_.replica.observer)
              cfg_.replica.observer->on_handled(replica_);
            return;
          }
          retry_keys_.erase(shared->key);
          replica_.resolve(*shared, keep);
          execute(/*by_policy=*/false);
        },
        [this, shared](caf::error& err) {
          --pending_resolutions_;
          replica_.unresolved(*shared, "resolver failed: " + system().render(err));
          if (err == caf::sec::request_receiver_down)
            replace_resolver("it stopped");
          retry_keys_[shared->key] = steady_ms() + resolver_retry_ms;
        });
  }

  // Spawns a new resolver in place of one that stopped (with the factory it came from).
  void replace_resolver(const std::string& why) {
    if (!cfg_.make_resolver || resolver_replaced_at_ == steady_ms())
      return;
    resolver_replaced_at_ = steady_ms();
    resolver_ = cfg_.make_resolver(system());
    monitor(resolver_);
    ++resolver_restarts_;
    log("the resolver was replaced: " + why);
  }

  // Asks again for keys whose resolution failed, if they still hold several versions.
  void retry_resolutions() {
    auto now_ms = steady_ms();
    for (auto i = retry_keys_.begin(); i != retry_keys_.end();) {
      if (i->second > now_ms) {
        ++i;
        continue;
      }
      auto versions = replica_.versions(i->first);
      auto key = i->first;
      i = retry_keys_.erase(i);
      if (versions.size() > 1)
        ask_resolver(conflict{key, std::move(versions)});
    }
  }

  static constexpr uint64_t resolver_retry_ms = 1000;

  leader_config cfg_;
  replica replica_;
  resolvers::resolver_actor resolver_;
  std::map<messages::node_index, link_entry> links_;
  uint32_t pending_resolutions_ = 0;
  std::vector<sink_actor> peers_;
  bool pull_in_flight_ = false;
  uint64_t mailbox_peak_ = 0;
  uint64_t bad_gossip_ = 0;
  uint64_t durable_end_ = 0;
  bool sync_scheduled_ = false;
  std::vector<std::function<void(const caf::error*)>> deferred_; ///< waiting for the fsync
  std::string store_error_; ///< set when the store refused a write (a full disk, ...)
  std::set<messages::node_index> link_dests_; ///< nodes this node has a link to
  std::vector<std::pair<messages::node_index, std::vector<messages::node_index>>> wanted_links_;
  std::string topology_; ///< the routed topology, once the topology key set one
  bool took_over_ = false;
  std::optional<routing> current_routing_; ///< as the topology key set it (none: the initial)
  /// A topology that adds members, waiting for its epoch to be stable (apply_topology).
  std::optional<std::string> pending_topology_;
  struct waiting_write {
    uint64_t deadline_ms = 0;
    std::function<bool(bool expired)> retry; ///< true when it was answered
  };
  std::vector<waiting_write> waiting_; ///< writes waiting for their contexts, oldest first
  bool retrying_ = false;
  bool caught_up_seen_ = false; ///< the replica was seen caught up (see write_all)
  size_t waiting_bytes_ = 0;    ///< keys and values of the writes in waiting_
  bool broken_reported_ = false;
  std::map<std::string, uint64_t> retry_keys_; ///< failed resolutions -> when to ask again
  uint64_t resolver_replaced_at_ = UINT64_MAX;
  uint64_t resolver_restarts_ = 0;
};

} // namespace mlr::actors::detail
