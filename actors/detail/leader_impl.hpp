#pragma once
// Internal to the leader (leader.cpp, leader_writes.cpp, leader_effects.cpp,
// leader_routing.cpp): the actor's class. Users spawn leaders with spawn_leader
// (leader.hpp) and never see this.

#include "actors/leader.hpp"
#include "core/text.hpp"
#include "core/typed.hpp"

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
    if (!cfg_.wall_clock_ms)
      cfg_.wall_clock_ms = system_wall_clock_ms;
  }

  behavior_type make_behavior() override;

  // Handlers of make_behavior longer than a line or two (leader.cpp).
  void install_failure_handlers();
  void on_start(); // what make_behavior does before it returns the handlers
  void on_cursor(messages::node_index dest, uint64_t pos);
  void on_watch_ack(uint64_t id, uint64_t n, uint64_t bytes);
  caf::result<messages::frame> on_batch(const messages::frame& f);
  caf::result<std::vector<get_result>> read_many(const std::vector<std::string>& keys);
  void on_want(messages::node_index dest, uint64_t from, messages::node_index ship_to,
               uint32_t max_events);
  uint64_t on_subscribe(messages::node_index dest, link_actor link);
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
    swapped_out_.clear();
    watchers_.clear();
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
    link_actor handle;
  };

  uint64_t now() { return cfg_.wall_clock_ms(); }

  // With `range` (GETRANGE's start and end), a text key's document is read only there.
  get_result read(const std::string& key,
                  std::optional<std::pair<int64_t, int64_t>> range = std::nullopt) {
    get_result out;
    auto vs = replica_.versions(key);
    for (auto& v : vs) {
      out.context.dots.push_back(v.id);
      if (!v.tombstone && v.kind != messages::value_kind::reg &&
          v.kind != messages::value_kind::merged)
        out.siblings.push_back(v);
    }
    // A merged value shows alone, in place of the register versions it stands for.
    for (auto& v : core::typed::shown_registers(vs))
      out.siblings.push_back(std::move(v));
    auto [start, count] = std::pair<uint64_t, uint64_t>{0, UINT64_MAX};
    if (auto n = range ? replica_.text_length(key) : std::nullopt)
      std::tie(start, count) = core::text::range_of(range->first, range->second, *n);
    if (auto t = count > 0 ? replica_.read_text(key, start, count) : std::nullopt) {
      out.text = std::move(t->text);
      out.text_length = t->length;
    } else if (auto n = replica_.text_length(key)) {
      out.text_length = *n;
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

  std::optional<caf::error> refusal(const std::vector<write_request>& ws);

  // Applies `ws` (checked by refusal) and returns their dots; what typed writes answer
  // waits in replies_ for take_replies, which write_all's `pick` calls right after.
  std::vector<dot> apply_writes(const std::vector<write_request>& ws);
  std::vector<int64_t> take_replies() { return std::move(replies_); }

  caf::error catching_up_error();

  caf::error context_error(const std::vector<dot>& missing);

  // Writes that waited for their contexts: those whose contexts arrived are applied (in
  // the order they came), those past their deadline refused.
  void retry_waiting();

  bool durable_store() { return replica_.store().durable(); }

  // A member the topology removed takes no writes and serves no reads: it no longer
  // receives anything, so what it would serve goes stale. Its clients are told where to go.
  std::optional<caf::error> removed_error();

  // A key or value above the node's limits is refused before anything is written.
  std::optional<caf::error> size_error(const write_request& w);
  // A typed write at a key of another type (Redis's WRONGTYPE), also against the typed
  // writes before it in the message (`types`).
  std::optional<caf::error> type_error(const write_request& w,
                                       std::map<std::string, core::typed::key_type>& types);

  static bool reserved(const std::string& key) {
    return key.compare(0, reserved_key_prefix.size(), reserved_key_prefix) == 0;
  }
  static caf::error reserved_error();

  // Under group commit a write is acknowledged after the fsync that covers it (the
  // replica says when: ready::hold_acks).
  template <class T> caf::result<T> acknowledge(T value) {
    if (!store_error_.empty())
      return not_durable_error();
    if (!hold_acks_)
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
    else if (!hold_acks_)
      rp.deliver(std::move(value));
    else
      deferred_.push_back([rp, value](const caf::error* err) mutable {
        if (err)
          rp.deliver(*err);
        else
          rp.deliver(value);
      });
  }

  caf::error not_durable_error();

  // Carries out what the replica asks after an input (its ready value), and nothing else:
  // commits the store (with an fsync or a group fsync, as the replica says) and reports
  // how it went, hands caught-up links their batches, releases or holds answers, hands
  // conflicts to the resolver, starts relay links, routes by a new topology and logs.
  struct executed {
    bool changed = false; ///< the store changed (and was committed)
    bool failed = false;  ///< the commit failed (store_error_ says why)
  };
  executed execute();
  void carry_out(core::ready& r, executed& out);
  void commit(const core::ready& r, executed& out);

  // Topology, links and relays (leader_routing.cpp).
  void spawn_relay_link(messages::node_index dest);
  void spawn_link(messages::node_index dest, const std::vector<messages::node_index>& detours);
  void apply_topology(const std::string& spec);
  void route_by(const routing& r);
  void ensure_links();
  std::string epoch_name();
  result<dot> write_topology(const std::string& spec);
  void log(const std::string& line);
  void collect_garbage();

  // The store refused a write (a full disk): try again; once it takes it, writes resume.
  void retry_store();

  // Sends each caught-up link the batch the replica computed for it (ready::batches).
  void ship_batches(std::vector<core::ready::outgoing_batch>& batches);

  // One fsync for every write applied since the last one. If it fails, none of them is
  // acknowledged as durable (their outcome is unknown: they are in the OS, maybe on disk)
  // and none is shipped, since the durable end does not move; writes are refused until the
  // store takes writes again (retry_store).
  void group_commit();

  // After a failed fsync only a restart recovers the store: say so to whoever runs the
  // node (mlr-node exits with status 3), once.
  void report_broken_store();

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

  messages::frame own_report();

  // Tells every peer what this node has applied.
  void gossip();

  // Asks one holder for what this node has waited for past the grace period.
  void maybe_pull(bool eager = false);

  // Resolution is each node's own (deterministic in the set of versions, so all agree):
  // a node whose resolver failed would keep siblings the others dropped, for good. So a
  // failed or timed-out resolution is asked again (retry_resolutions), with the versions
  // the key holds then, and a resolver that died is replaced (supervision).
  void ask_resolver(conflict c);

  // Spawns a new resolver in place of one that stopped (with the factory it came from).
  void replace_resolver(const std::string& why);

  // Change subscriptions (see leader_actor).
  struct watcher {
    std::string prefix;
    caf::actor who;
    uint64_t unacked = 0;
    uint64_t unacked_bytes = 0;
  };
  uint64_t watch(std::string prefix, caf::actor who);
  void unwatch(uint64_t id, const std::string& why);
  void deliver(const std::vector<change>& changes);
  std::map<uint64_t, watcher> watchers_;
  uint64_t next_watch_ = 0;

  // Hot swap: `make` spawns the resolver from now on (see leader_actor).
  uint32_t swap_resolver(resolvers::resolver_factory make, std::string name);
  // Who answers a conflict now, for the feed's records.
  core::decided_by decided(const std::string& resolver) const {
    return core::decided_by{resolver, cfg_.wall_clock_ms()};
  }
  static constexpr uint32_t max_conflicts_per_answer = 1000;

  // Asks again for keys whose resolution failed, if they still hold several versions.
  void retry_resolutions();

  static constexpr uint64_t resolver_retry_ms = 1000;

  leader_config cfg_;
  replica replica_;
  resolvers::resolver_actor resolver_;
  // Resolvers swapped out, kept alive so that the questions they were asked get answers
  // (the latest few; older ones have answered or timed out long since).
  std::vector<resolvers::resolver_actor> swapped_out_;
  std::map<messages::node_index, link_entry> links_;
  uint32_t pending_resolutions_ = 0;
  std::vector<sink_actor> peers_;
  bool pull_in_flight_ = false;
  uint64_t mailbox_peak_ = 0;
  uint64_t bad_gossip_ = 0;
  bool hold_acks_ = false; ///< answers wait for the group fsync (the latest ready says)
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
  std::vector<int64_t> replies_; ///< of the last apply_writes (typed writes; see take_replies)
};

} // namespace mlr::actors::detail
