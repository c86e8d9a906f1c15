#include "actors/leader.hpp"

#include "actors/replication_link.hpp"

#include <caf/actor_system.hpp>
#include <caf/detail/scope_guard.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>
#include <map>
#include <set>

namespace mlr::actors {

using messages::dot;

uint64_t system_wall_clock_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count());
}

namespace {

class leader_impl : public leader_actor::base {
public:
  leader_impl(caf::actor_config& ac, leader_config cfg, std::unique_ptr<storage::store> store,
              resolvers::resolver_actor resolver)
    : leader_actor::base(ac),
      cfg_(std::move(cfg)),
      replica_(cfg_.replica, std::move(store)),
      resolver_(std::move(resolver)) {
    durable_end_ = replica_.log_end();
    if (!cfg_.wall_clock_ms)
      cfg_.wall_clock_ms = system_wall_clock_ms;
  }

  behavior_type make_behavior() override {
    link_dests_.insert(cfg_.out_edges.begin(), cfg_.out_edges.end());
    if (auto t = replica_.take_topology_update()) // recovered from the store
      apply_topology(*t);
    if (cfg_.tick_interval.count() > 0)
      delayed_send(this, cfg_.tick_interval, tick_atom::value);
    return {
      [this](batch_atom, const messages::frame& f) -> caf::result<messages::frame> {
        note_mailbox();
        auto batch = messages::decode_batch(f, cfg_.limits);
        if (!batch)
          return make_error(batch.err().code, batch.err().message);
        auto before = replica_.log_end();
        auto got = replica_.receive(std::move(*batch), now(), pending_);
        after_change(before);
        messages::ack a;
        a.receiver = cfg_.replica.self;
        a.applied = replica_.applied();
        a.received = got.received;
        a.duplicates = got.duplicates;
        return messages::encode(a);
      },
      [this](put_atom, std::string& key, std::string& value) {
        return write_one(write_request{std::move(key), messages::op_kind::put, std::move(value),
                                       false, {}});
      },
      [this](put_atom, std::string& key, std::string& value, causal_context& ctx) {
        return write_one(write_request{std::move(key), messages::op_kind::put, std::move(value),
                                       true, std::move(ctx.dots)});
      },
      [this](del_atom, std::string& key) {
        return write_one(write_request{std::move(key), messages::op_kind::del, {}, false, {}});
      },
      [this](del_atom, std::string& key, causal_context& ctx) {
        return write_one(
          write_request{std::move(key), messages::op_kind::del, {}, true, std::move(ctx.dots)});
      },
      [this](write_atom, const std::vector<write_request>& writes)
        -> caf::result<std::vector<dot>> {
        note_mailbox();
        if (!store_error_.empty())
          return make_error(errc::invalid_argument, "write refused: " + store_error_);
        for (auto& w : writes)
          if (reserved(w.key))
            return reserved_error();
        auto before = replica_.log_end();
        std::vector<dot> dots;
        dots.reserve(writes.size());
        for (auto& w : writes)
          dots.push_back(replica_.write(w, now(), pending_));
        after_change(before);
        return acknowledge(std::move(dots));
      },
      [this](get_atom, const std::string& key) { return read(key); },
      [this](get_atom, const std::vector<std::string>& keys) {
        std::vector<get_result> out;
        out.reserve(keys.size());
        for (auto& k : keys)
          out.push_back(read(k));
        return out;
      },
      [this](fetch_atom, messages::node_index dest, uint64_t from, uint32_t max_events,
             messages::node_index ship_to) {
        auto got = replica_.fetch(dest, from, max_events,
                                  std::max(max_events, cfg_.max_fetch_scan), ship_to);
        fetch_result out;
        out.count = static_cast<uint32_t>(got.batch.events.size());
        if (out.count > 0)
          out.batch = messages::encode(got.batch);
        out.next = got.next;
        out.log_end = replica_.log_end();
        if (out.next >= out.log_end)
          if (auto i = links_.find(dest); i != links_.end())
            i->second.wants_wakeup = true;
        return out;
      },
      [this](subscribe_atom, messages::node_index dest) -> uint64_t {
        links_[dest] = link_entry{caf::actor_cast<caf::actor>(current_sender()), true};
        uint64_t start = replica_.store().log_begin();
        if (auto saved = replica_.store().get_meta("cursor." + std::to_string(dest)))
          start = std::max<uint64_t>(start, std::strtoull(saved->c_str(), nullptr, 10));
        return std::min(start, replica_.log_end());
      },
      [this](cursor_atom, messages::node_index dest, uint64_t pos) {
        // Written with the next commit: losing the latest cursor only re-sends a little.
        if (durable_store())
          replica_.mutable_store().put_meta("cursor." + std::to_string(dest),
                                            std::to_string(pos));
      },
      [this](status_atom) {
        node_status s;
        s.node = cfg_.replica.self;
        s.incarnation = replica_.self().incarnation;
        s.applied = replica_.applied();
        s.digest = storage::state_digest(replica_.store());
        s.stats = replica_.stats();
        s.log_end = replica_.log_end();
        s.log_begin = replica_.store().log_begin();
        s.keys = replica_.store().key_count();
        replica_.store().for_each(
          [&](const std::string&, const std::vector<messages::version>& versions) {
            if (std::any_of(versions.begin(), versions.end(),
                            [](const messages::version& v) { return !v.tombstone; }))
              ++s.live_keys;
          });
        s.pending_resolutions = pending_resolutions_;
        s.mailbox_peak = mailbox_peak_;
        s.pull_in_flight = pull_in_flight_;
        s.retired = replica_.retired();
        s.transfer = replica_.transfer();
        if (auto e = replica_.epoch())
          s.epoch = messages::to_string(*e);
        s.topology = topology_;
        return s;
      },
      [this](conflicts_atom) {
        auto& log = replica_.conflict_log();
        return std::vector<conflict_record>(log.begin(), log.end());
      },
      [this](pull_atom, const messages::frame& f) -> caf::result<messages::frame> {
        note_mailbox();
        auto req = messages::decode_pull(f, cfg_.limits);
        if (!req)
          return make_error(req.err().code, req.err().message);
        if (req->start_transfer) {
          // The snapshot holds committed state only: commit, and make it durable, so that
          // the receiver never holds a dot a power cut could take from this node.
          if (durable_store()) {
            replica_.persist();
            if (auto ok = replica_.mutable_store().commit(true); !ok)
              return make_error(errc::invalid_argument, ok.err().message);
            advance_durable();
          }
          log("state transfer to node " + std::to_string(req->requester) + " starts (" +
              std::to_string(replica_.store().key_count()) + " keys)");
        }
        auto answer = replica_.serve_pull(*req, steady_ms());
        if (answer.chunk && answer.chunk->done)
          log("state transfer to node " + std::to_string(req->requester) + " done: " +
              std::to_string(answer.chunk->keys_sent) + " keys");
        return messages::encode(answer);
      },
      [this](gossip_atom, const messages::frame& f) {
        note_mailbox();
        if (auto report = messages::decode_ack(f, cfg_.limits))
          replica_.observe_report(report->receiver, report->applied);
        else
          ++bad_gossip_;
      },
      [this](peers_atom, std::vector<sink_actor>& peers) {
        peers_ = std::move(peers);
        // A topology recovered or learnt before the peers were known may name members the
        // process has no connection to yet.
        if (current_routing_ && cfg_.on_routing && peers_.size() < current_routing_->members.size())
          cfg_.on_routing(*current_routing_);
        ensure_links();
      },
      [this](topology_atom, const std::string& spec) -> caf::result<dot> {
        note_mailbox();
        auto d = write_topology(spec);
        if (!d)
          return make_error(d.err().code, d.err().message);
        return acknowledge(*d);
      },
      [this](detour_atom, messages::node_index to, bool detoured) {
        log(std::string("link to node ") + std::to_string(to) +
            (detoured ? ": no answer, detouring" : ": answers again, detour ended"));
        if (detoured && to == cfg_.take_over_from && !took_over_) {
          took_over_ = true;
          auto d = write_topology(cfg_.take_over_spec);
          log("the hub (node " + std::to_string(to) + ") is down: taking its role, " +
              (d ? "epoch " + messages::to_string(*d) : "refused: " + d.err().message));
        }
      },
      [this](report_atom) { return own_report(); },
      [this](sync_atom) { group_commit(); },
      [this](shutdown_atom) {
        if (durable_store()) {
          replica_.persist();
          auto& st = replica_.mutable_store();
          st.put_meta("clean", "1");
          if (!st.commit(true))
            return false;
        }
        return true;
      },
      [this](tick_atom) {
        note_mailbox();
        delayed_send(this, cfg_.tick_interval, tick_atom::value);
        gossip();
        maybe_pull();
        collect_garbage();
        auto before = replica_.log_end();
        if (store_error_.empty() && replica_.retire_incarnations(now(), pending_))
          after_change(before);
      },
    };
  }

  // Handles form cycles (links hold their leader, the leader holds its links): drop
  // them on exit so the actors can be destroyed.
  void on_exit() override {
    links_.clear();
    peers_.clear();
    resolver_ = nullptr;
  }

private:
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
    note_mailbox();
    if (!store_error_.empty())
      return make_error(errc::invalid_argument, "write refused: " + store_error_);
    if (reserved(w.key))
      return reserved_error();
    auto before = replica_.log_end();
    auto d = replica_.write(w, now(), pending_);
    after_change(before);
    return acknowledge(d);
  }

  bool durable_store() { return replica_.store().durable(); }

  static bool reserved(const std::string& key) {
    return key.compare(0, reserved_key_prefix.size(), reserved_key_prefix) == 0;
  }
  static caf::error reserved_error() {
    return make_error(errc::invalid_argument,
                      "keys starting with \\0mlr: are the cluster's own; choose another key");
  }

  // Under group commit a write is acknowledged after the fsync that covers it.
  template <class T>
  caf::result<T> acknowledge(T value) {
    if (!store_error_.empty())
      return make_error(errc::invalid_argument, "write not durable: " + store_error_);
    if (!durable_store() || cfg_.sync != sync_policy::batch)
      return value;
    auto rp = make_response_promise<T>();
    deferred_.push_back([rp, value]() mutable { rp.deliver(value); });
    return rp;
  }

  // Persists what the message changed, makes it durable as the policy says, wakes links
  // for what became shippable, and hands new conflicts to the resolver.
  void after_change(uint64_t log_before, bool state_changed = false) {
    if (durable_store() && (replica_.log_end() > log_before || state_changed)) {
      replica_.persist();
      auto ok = replica_.mutable_store().commit(cfg_.sync == sync_policy::always);
      if (!ok) {
        store_error_ = ok.err().message;
      } else if (cfg_.sync == sync_policy::batch) {
        if (!sync_scheduled_) {
          sync_scheduled_ = true;
          send(this, sync_atom::value);
        }
      } else {
        advance_durable();
      }
    } else if (!durable_store()) {
      advance_durable();
    }
    for (auto& c : pending_)
      ask_resolver(std::move(c));
    pending_.clear();
    for (auto dest : replica_.take_relay_destinations())
      spawn_relay_link(dest);
    if (auto t = replica_.take_topology_update())
      apply_topology(*t);
    if (cfg_.replica.observer)
      cfg_.replica.observer->on_handled(replica_);
  }

  // A link to a node that is not one of this node's out-edges, for entries it forwards
  // while relaying for a node that stopped answering (a star's standby hub shipping to the
  // other spokes).
  void spawn_relay_link(messages::node_index dest) {
    if (dest == cfg_.replica.self || dest >= peers_.size() || !peers_[dest] ||
        link_dests_.count(dest))
      return;
    log("relaying: a link to node " + std::to_string(dest) + " starts");
    spawn_link(dest, {});
  }

  void spawn_link(messages::node_index dest, const std::vector<messages::node_index>& detours) {
    link_dests_.insert(dest);
    link_config lc;
    lc.from = cfg_.replica.self;
    lc.to = dest;
    lc.ack_timeout = cfg_.relay_ack_timeout;
    std::vector<sink_actor> detour_sinks;
    for (auto d : detours)
      if (d < peers_.size() && peers_[d]) {
        lc.detours.push_back(d);
        detour_sinks.push_back(peers_[d]);
      }
    spawn_replication_link(system(), lc, caf::actor_cast<leader_actor>(this), peers_[dest],
                           std::move(detour_sinks));
  }

  // The topology key changed: route by it, and open links for its new out-edges.
  void apply_topology(const std::string& spec) {
    if (!cfg_.route)
      return;
    auto r = cfg_.route(spec, current_routing_ ? &*current_routing_ : nullptr);
    if (!r) {
      log("topology epoch " + epoch_name() + " ignored: " + r.err().message);
      return;
    }
    replica_.set_routing(*r);
    current_routing_ = *r;
    if (cfg_.on_routing)
      cfg_.on_routing(*r);
    topology_ = r->canonical;
    wanted_links_ = r->links;
    log("topology epoch " + epoch_name() + ": " + std::to_string(r->links.size()) +
        " links out of this node");
    ensure_links();
  }

  void ensure_links() {
    if (peers_.empty())
      return;
    for (auto& [dest, detours] : wanted_links_)
      if (dest != cfg_.replica.self && dest < peers_.size() && peers_[dest] &&
          !link_dests_.count(dest))
        spawn_link(dest, detours);
  }

  std::string epoch_name() {
    auto e = replica_.epoch();
    return e ? messages::to_string(*e) : std::string("static");
  }

  // Writes the topology key (validated first); the dot is the new epoch.
  result<dot> write_topology(const std::string& spec) {
    if (!cfg_.route)
      return error{errc::invalid_argument, "this node cannot change its topology"};
    auto r = cfg_.route(spec, current_routing_ ? &*current_routing_ : nullptr);
    if (!r)
      return r.err();
    if (!store_error_.empty())
      return error{errc::invalid_argument, "write refused: " + store_error_};
    auto before = replica_.log_end();
    auto d = replica_.write(
      write_request{topology_key, messages::op_kind::put, r->stored, false, {}}, now(),
      pending_);
    after_change(before);
    return d;
  }

  void log(const std::string& line) {
    if (cfg_.log)
      cfg_.log(line);
  }

  // Start, progress (every tenth of the keys) and end of an incoming state transfer.
  void report_transfer(const transfer_progress& before, const transfer_progress& after) {
    auto from = [](const transfer_progress& t) { return "node " + std::to_string(t.from); };
    if (after.active && !before.active) {
      log("state transfer from " + from(after) + " wanted: what this node lacks left the log");
    } else if (after.active && after.keys_total > 0 &&
               after.keys_done * 10 / after.keys_total != before.keys_done * 10 / after.keys_total) {
      log("state transfer from " + from(after) + ": " + std::to_string(after.keys_done) + " of ~" +
          std::to_string(after.keys_total) + " keys");
    } else if (before.active && !after.active) {
      log("state transfer from " + from(before) + " done: " +
          std::to_string(replica_.stats().transfer_keys_received) + " keys merged in total, " +
          std::to_string(replica_.stats().transfers_received) + " transfers");
    }
  }

  void collect_garbage() {
    auto before = replica_.stats().tombstones_collected + replica_.stats().log_compacted;
    replica_.collect_garbage(steady_ms());
    auto after = replica_.stats().tombstones_collected + replica_.stats().log_compacted;
    if (after != before && durable_store()) {
      replica_.persist();
      if (auto ok = replica_.mutable_store().commit(false); !ok)
        store_error_ = ok.err().message;
    }
    if (after != before && cfg_.replica.observer)
      cfg_.replica.observer->on_handled(replica_);
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

  void group_commit() {
    sync_scheduled_ = false;
    auto ok = replica_.mutable_store().sync();
    if (!ok) {
      store_error_ = ok.err().message;
      for (auto& d : deferred_)
        d(); // they were applied; the error reaches later writes
      deferred_.clear();
      return;
    }
    advance_durable();
    auto ready = std::move(deferred_);
    deferred_.clear();
    for (auto& d : ready)
      d();
  }

  void note_mailbox() {
    // Messages already moved into the mailbox's queue and not yet handled (+1: this one).
    // mailbox().size() would move new arrivals into that queue while the actor is
    // iterating it, which CAF does not allow from inside a handler (UBSan caught it), so
    // messages still in the inbox are not counted: a lower bound, taken every message.
    mailbox_peak_ =
      std::max<uint64_t>(mailbox_peak_, static_cast<uint64_t>(mailbox().queue().total_task_size()) + 1);
  }

  uint64_t steady_ms() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   clock().now().time_since_epoch())
                                   .count());
  }

  messages::frame own_report() {
    messages::ack report;
    report.receiver = cfg_.replica.self;
    report.applied = replica_.applied();
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
    if (!plan || plan->holder >= peers_.size() || !peers_[plan->holder])
      return;
    pull_in_flight_ = true;
    request(peers_[plan->holder], cfg_.pull_timeout, pull_atom::value,
            messages::encode(plan->request))
      .then(
        [this](messages::frame& answer) {
          pull_in_flight_ = false;
          auto batch = messages::decode_batch(answer, cfg_.limits);
          if (!batch) {
            replica_.pull_failed();
            return;
          }
          auto before = replica_.log_end();
          auto keys_before = replica_.stats().transfer_keys_received;
          auto transfer_before = replica_.transfer();
          replica_.receive_pulled(std::move(*batch), now(), pending_);
          auto transfer_after = replica_.transfer();
          bool merged = replica_.stats().transfer_keys_received != keys_before ||
                        transfer_before.active != transfer_after.active;
          after_change(before, merged);
          report_transfer(transfer_before, transfer_after);
          if (replica_.log_end() > before || merged)
            maybe_pull(true); // progress: go on at once while there is more to fetch
        },
        [this](caf::error&) {
          pull_in_flight_ = false;
          replica_.pull_failed();
        });
  }

  void ask_resolver(conflict c) {
    ++pending_resolutions_;
    auto shared = std::make_shared<conflict>(std::move(c));
    request(resolver_, cfg_.resolver_timeout, resolvers::resolve_atom::value, shared->key,
            shared->versions)
      .then(
        [this, shared](std::vector<dot>& keep) {
          --pending_resolutions_;
          auto notify = caf::detail::make_scope_guard([this] {
            if (cfg_.replica.observer)
              cfg_.replica.observer->on_handled(replica_);
          });
          auto is_input = [&](const dot& d) {
            return std::any_of(shared->versions.begin(), shared->versions.end(),
                               [&](const messages::version& v) { return v.id == d; });
          };
          if (keep.empty() || !std::all_of(keep.begin(), keep.end(), is_input)) {
            replica_.unresolved(*shared, "resolver kept nothing or a dot it was not given");
            return;
          }
          replica_.resolve(*shared, keep);
          if (durable_store()) {
            replica_.persist();
            if (auto ok = replica_.mutable_store().commit(false); !ok)
              store_error_ = ok.err().message;
          }
        },
        [this, shared](caf::error& err) {
          --pending_resolutions_;
          replica_.unresolved(*shared, "resolver failed: " + system().render(err));
        });
  }

  leader_config cfg_;
  replica replica_;
  resolvers::resolver_actor resolver_;
  std::vector<conflict> pending_;
  std::map<messages::node_index, link_entry> links_;
  uint32_t pending_resolutions_ = 0;
  std::vector<sink_actor> peers_;
  bool pull_in_flight_ = false;
  uint64_t mailbox_peak_ = 0;
  uint64_t bad_gossip_ = 0;
  uint64_t durable_end_ = 0;
  bool sync_scheduled_ = false;
  std::vector<std::function<void()>> deferred_;
  std::string store_error_; ///< set when the store refused a write (a full disk, ...)
  std::set<messages::node_index> link_dests_; ///< nodes this node has a link to
  std::vector<std::pair<messages::node_index, std::vector<messages::node_index>>> wanted_links_;
  std::string topology_; ///< the routed topology, once the topology key set one
  bool took_over_ = false;
  std::optional<routing> current_routing_; ///< as the topology key set it (none: the initial)
};

} // namespace

leader_actor spawn_leader(caf::actor_system& sys, leader_config cfg,
                          std::unique_ptr<storage::store> store,
                          resolvers::resolver_actor resolver) {
  return sys.spawn<leader_impl>(std::move(cfg), std::move(store), std::move(resolver));
}

} // namespace mlr::actors
