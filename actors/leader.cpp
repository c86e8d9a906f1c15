#include "actors/detail/leader_impl.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

namespace mlr::actors {

uint64_t system_wall_clock_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count());
}

namespace detail {

// A handler that throws stops the leader (CAF's default); say so to whoever runs the node.
// Set explicitly: with CAF 0.17's default handler, monitors were not told either. A
// resolver that stops is replaced (CAF 0.17 may not tell monitors of an actor that died of
// an exception; a failed request also triggers the replacement).
void leader_impl::install_failure_handlers() {
  set_exception_handler([this](caf::scheduled_actor*, std::exception_ptr& ep) -> caf::error {
    std::string what = "an unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    if (cfg_.on_failure)
      cfg_.on_failure("the leader stopped: " + what);
    return make_error(errc::invalid_argument, "the leader stopped: " + what);
  });
  monitor(resolver_);
  set_down_handler([this](caf::down_msg& m) {
    if (m.source == resolver_.address())
      replace_resolver("it stopped: " + system().render(m.reason));
    for (auto i = watchers_.begin(); i != watchers_.end();) // every watch of that actor
      i = i->second.who.address() == m.source ? watchers_.erase(i) : std::next(i);
    replica_.report_changes(!watchers_.empty());
  });
}

caf::result<messages::frame> leader_impl::on_batch(const messages::frame& f) {
  note_mailbox();
  auto batch = messages::decode_batch(f, cfg_.limits);
  if (!batch)
    return make_error(batch.err().code, batch.err().message);
  auto got = replica_.receive(std::move(*batch), now());
  execute();
  messages::ack a;
  a.receiver = cfg_.replica.self;
  a.applied = replica_.applied();
  a.received = got.received;
  a.duplicates = got.duplicates;
  return messages::encode(a);
}

caf::result<std::vector<get_result>> leader_impl::read_many(const std::vector<std::string>& keys) {
  if (auto err = removed_error())
    return *err;
  // One reply is bounded like a write: "MGET k k k ..." must not copy a large value a
  // million times.
  size_t bytes = 0;
  for (auto& k : keys)
    for (auto& v : replica_.versions(k))
      if ((bytes += v.value.size() + k.size()) > cfg_.max_reply_bytes)
        return make_error(errc::too_large, "the answer would be more than " +
                                             std::to_string(cfg_.max_reply_bytes) +
                                             " bytes; ask for fewer keys at a time");
  std::vector<get_result> out;
  out.reserve(keys.size());
  for (auto& k : keys)
    out.push_back(read(k));
  return out;
}

void leader_impl::on_want(messages::node_index dest, uint64_t from, messages::node_index ship_to,
                          uint32_t max_events) {
  if (!links_.count(dest))
    return;
  replica_.link_waiting(dest, from, ship_to, max_events, std::max(max_events, cfg_.max_fetch_scan));
  execute(); // hands it a batch now if the log has entries for it past `from`
}

uint64_t leader_impl::on_subscribe(messages::node_index dest, link_actor link) {
  links_[dest] = link_entry{std::move(link)};
  auto start = std::max(replica_.store().log_begin(), replica_.kept_cursor(dest));
  return std::min(start, replica_.log_end());
}

node_status leader_impl::status() {
  node_status s;
  s.node = cfg_.replica.self;
  s.incarnation = replica_.self().incarnation;
  s.applied = replica_.applied();
  s.digest = storage::state_digest(replica_.store());
  s.stats = replica_.stats();
  s.log_end = replica_.log_end();
  s.log_begin = replica_.store().log_begin();
  s.keys = replica_.store().key_count();
  s.live_keys = replica_.store().live_key_count(); // O(1), like the digest
  s.pending_resolutions = pending_resolutions_;
  s.mailbox_peak = mailbox_peak_;
  s.pull_in_flight = pull_in_flight_;
  s.caught_up = replica_.caught_up(steady_ms());
  s.resolver = cfg_.resolver_name;
  s.retired = replica_.retired();
  s.transfer = replica_.transfer();
  if (auto e = replica_.epoch())
    s.epoch = messages::to_string(*e);
  s.topology = topology_;
  if (pending_topology_)
    s.pending_topology = *pending_topology_;
  return s;
}

caf::result<messages::frame> leader_impl::on_pull(const messages::frame& f) {
  note_mailbox();
  auto req = messages::decode_pull(f, cfg_.limits);
  if (!req)
    return make_error(req.err().code, req.err().message);
  if (req->start_transfer) {
    // The snapshot holds committed state only: commit, and make it durable, so that the
    // receiver never holds a dot a power cut could take from this node.
    replica_.make_durable();
    if (execute().failed)
      return make_error(errc::storage_full, store_error_);
    log("state transfer to node " + std::to_string(req->requester) + " starts (" +
        std::to_string(replica_.store().key_count()) + " keys)");
  }
  auto answer = replica_.serve_pull(*req, steady_ms());
  if (answer.chunk && answer.chunk->done)
    log("state transfer to node " + std::to_string(req->requester) +
        " done: " + std::to_string(answer.chunk->keys_sent) + " keys");
  return messages::encode(answer);
}

void leader_impl::on_gossip(const messages::frame& f) {
  note_mailbox();
  if (auto report = messages::decode_ack(f, cfg_.limits)) {
    replica_.observe_report(report->receiver, report->applied, report->stable, steady_ms(),
                            report->has_stable);
    retry_waiting(); // a node that started empty may have caught up
  } else {
    ++bad_gossip_;
  }
}

void leader_impl::on_peers(std::vector<sink_actor>& peers) {
  peers_ = std::move(peers);
  // Peers hear this node at once (a node started without data waits for their reports
  // before it takes writes; they answer at their next tick).
  if (cfg_.tick_interval.count() > 0)
    gossip();
  // A topology recovered or learnt before the peers were known may name members the
  // process has no connection to yet.
  if (current_routing_ && cfg_.on_routing && peers_.size() < current_routing_->members.size())
    cfg_.on_routing(*current_routing_);
  ensure_links();
}

void leader_impl::on_detour(messages::node_index to, bool detoured) {
  log(std::string("link to node ") + std::to_string(to) +
      (detoured ? ": no answer, detouring" : ": answers again, detour ended"));
  if (detoured && to == cfg_.take_over_from && !took_over_) {
    took_over_ = true;
    auto d = write_topology(cfg_.take_over_spec);
    log("the hub (node " + std::to_string(to) + ") is down: taking its role, " +
        (d ? "epoch " + messages::to_string(*d) : "refused: " + d.err().message));
  }
}

bool leader_impl::on_shutdown() {
  replica_.make_durable(/*clean=*/true);
  return !execute().failed;
}

void leader_impl::on_tick() {
  note_mailbox();
  if (cfg_.tick_interval.count() > 0)
    delayed_send(this, cfg_.tick_interval, tick_atom::value);
  if (!store_error_.empty())
    retry_store();
  retry_waiting(); // writes whose context wait expired are refused
  gossip();
  maybe_pull();
  collect_garbage();
  retry_resolutions();
  if (pending_topology_) {
    auto spec = *pending_topology_;
    apply_topology(spec); // routes by it once its epoch is stable
  }
  if (store_error_.empty() && replica_.is_live(cfg_.replica.self) &&
      replica_.retire_incarnations(now()))
    execute();
}

void leader_impl::on_start() {
  install_failure_handlers();
  link_dests_.insert(cfg_.out_edges.begin(), cfg_.out_edges.end());
  // What the replica recovered from the store: its topology, and siblings that may be the
  // inputs of a resolution that was pending when the node stopped (asked again at the
  // first tick).
  execute();
  replica_.caught_up(steady_ms()); // a node that started without data counts from now
  if (cfg_.tick_interval.count() > 0)
    delayed_send(this, cfg_.tick_interval, tick_atom::value);
}

void leader_impl::on_cursor(messages::node_index dest, uint64_t pos) {
  replica_.keep_cursor(dest, pos);
}

void leader_impl::on_watch_ack(uint64_t id, uint64_t n, uint64_t bytes) {
  if (auto i = watchers_.find(id); i != watchers_.end()) {
    i->second.unacked -= std::min(n, i->second.unacked);
    i->second.unacked_bytes -= std::min(bytes, i->second.unacked_bytes);
  }
}

leader_impl::behavior_type leader_impl::make_behavior() {
  on_start();
  using messages::frame;
  using op = messages::op_kind;
  return {
    [this](batch_atom, const frame& f) { return on_batch(f); },
    [this](put_atom, std::string& key, std::string& value) {
      return write_one(write_request{std::move(key), op::put, std::move(value), false, {}});
    },
    [this](put_atom, std::string& key, std::string& value, causal_context& ctx) {
      return write_one(
        write_request{std::move(key), op::put, std::move(value), true, std::move(ctx.dots)});
    },
    [this](del_atom, std::string& key) {
      return write_one(write_request{std::move(key), op::del, {}, false, {}});
    },
    [this](del_atom, std::string& key, causal_context& ctx) {
      return write_one(write_request{std::move(key), op::del, {}, true, std::move(ctx.dots)});
    },
    [this](write_atom, const std::vector<write_request>& writes) -> caf::result<std::vector<dot>> {
      return write_all<std::vector<dot>>(writes, [](std::vector<dot>& ds) { return ds; });
    },
    [this](typed_atom,
           const std::vector<write_request>& writes) -> caf::result<std::vector<int64_t>> {
      return write_all<std::vector<int64_t>>(writes,
                                             [this](std::vector<dot>&) { return take_replies(); });
    },
    [this](get_atom, const std::string& key) -> caf::result<get_result> {
      if (auto err = removed_error())
        return *err;
      return read(key);
    },
    [this](get_atom, const std::string& key, int64_t start,
           int64_t end) -> caf::result<get_result> {
      if (auto err = removed_error())
        return *err;
      return read(key, std::make_pair(start, end));
    },
    [this](get_atom, const std::vector<std::string>& keys) { return read_many(keys); },
    [this](subscribe_atom, messages::node_index dest, link_actor& link) {
      return on_subscribe(dest, std::move(link));
    },
    [this](want_atom, messages::node_index dest, uint64_t from, messages::node_index ship_to,
           uint32_t max_events) { on_want(dest, from, ship_to, max_events); },
    [this](cursor_atom, messages::node_index dest, uint64_t pos) { on_cursor(dest, pos); },
    [this](status_atom) { return status(); },
    [this](resolver_atom, const resolver_swap& s) { return swap_resolver(s.make, s.name); },
    [this](watch_atom, std::string& prefix, caf::actor& who) {
      return watch(std::move(prefix), std::move(who));
    },
    [this](unwatch_atom, uint64_t id) { unwatch(id, {}); },
    [this](watch_ack_atom, uint64_t id, uint64_t n, uint64_t bytes) { on_watch_ack(id, n, bytes); },
    [this](conflicts_atom, uint64_t after, uint32_t limit) {
      return replica_.conflicts(after, std::min<uint32_t>(limit, max_conflicts_per_answer));
    },
    [this](pull_atom, const frame& f) { return on_pull(f); },
    [this](gossip_atom, const frame& f) { on_gossip(f); },
    [this](peers_atom, std::vector<sink_actor>& peers) { on_peers(peers); },
    [this](topology_atom, const std::string& spec) -> caf::result<dot> {
      note_mailbox();
      auto d = write_topology(spec);
      if (!d)
        return make_error(d.err().code, d.err().message);
      return acknowledge(*d);
    },
    [this](detour_atom, messages::node_index to, bool detoured) { on_detour(to, detoured); },
    [this](report_atom) { return own_report(); },
    [this](sync_atom) { group_commit(); },
    [this](shutdown_atom) { return on_shutdown(); },
    [this](tick_atom) { on_tick(); },
  };
}

} // namespace detail

leader_actor spawn_leader(caf::actor_system& sys, leader_config cfg,
                          std::unique_ptr<storage::store> store,
                          resolvers::resolver_actor resolver) {
  return sys.spawn<detail::leader_impl>(std::move(cfg), std::move(store), std::move(resolver));
}

} // namespace mlr::actors
