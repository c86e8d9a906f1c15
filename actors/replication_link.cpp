#include "actors/replication_link.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>
#include <deque>

namespace mlr::actors {

namespace {

class link_impl : public link_actor::base {
public:
  link_impl(caf::actor_config& ac, link_config cfg, leader_actor source, sink_actor dest,
            std::vector<sink_actor> detour_sinks)
      : link_actor::base(ac), cfg_(std::move(cfg)), source_(std::move(source)) {
    status_.from = cfg_.from;
    status_.to = cfg_.to;
    status_.route = cfg_.to;
    routes_.emplace_back(cfg_.to, std::move(dest));
    for (size_t i = 0; i < cfg_.detours.size() && i < detour_sinks.size(); ++i)
      if (detour_sinks[i])
        routes_.emplace_back(cfg_.detours[i], std::move(detour_sinks[i]));
  }

  behavior_type make_behavior() override {
    // The link lives and dies with its source leader.
    link_to(source_);
    // Start where the destination last acknowledged (0 for a fresh log), then ship.
    request(source_, caf::infinite, subscribe_atom::value, cfg_.to,
            caf::actor_cast<link_actor>(this))
      .then([this](uint64_t start) {
        status_.sent_cursor = std::max(status_.sent_cursor, start);
        status_.acked_cursor = std::max(status_.acked_cursor, start);
        started_ = true;
        pump();
      });
    return {
      [this](log_grew_atom) { pump(); },
      [this](shipment_atom, shipment& r) { on_shipment(std::move(r)); },
      [this](tick_atom) { probe(); },
      [this](status_atom) {
        status_.in_flight = static_cast<uint32_t>(in_flight_.size());
        return status_;
      },
    };
  }

  // Drop the handles on exit: the source leader holds this link, so keeping them would
  // keep both alive.
  void on_exit() override {
    source_ = nullptr;
    routes_.clear();
  }

private:
  struct batch_in_flight {
    uint64_t seq;
    uint64_t end; ///< source log position after this batch
    bool acked = false;
  };

  // With room in the window and the route not paused, tells the leader where the link
  // stands and where it ships (want), unless it already did: the leader then hands it
  // its next batch (shipment) once the log has one for it.
  void pump() {
    if (!started_ || in_flight_.size() >= cfg_.window)
      return;
    if (clock().now() < resume_at_) { // the route refused at once: wait before trying again
      if (!resume_scheduled_) {
        resume_scheduled_ = true;
        delayed_send(this, resume_at_ - clock().now(), log_grew_atom::value);
      }
      return;
    }
    resume_scheduled_ = false;
    auto ship_to = routes_[route_].first;
    if (waiting_ && want_from_ == status_.sent_cursor && want_to_ == ship_to)
      return;
    waiting_ = true;
    want_from_ = status_.sent_cursor;
    want_to_ = ship_to;
    send(source_, want_atom::value, cfg_.to, want_from_, ship_to, cfg_.max_batch_events);
  }

  // The leader's answer to a want. Only the latest want counts (the leader keeps only the
  // latest): an answer to an earlier one is dropped, its entries stay in the log. Shipped
  // if the link still stands there and ships there, with room in the window and the route
  // not paused; otherwise the link says where it stands now.
  void on_shipment(shipment r) {
    if (!waiting_ || r.from != want_from_ || r.ship_to != want_to_) {
      ++status_.shipments_refused;
      return;
    }
    waiting_ = false;
    if (r.from == status_.sent_cursor && r.ship_to == routes_[route_].first &&
        in_flight_.size() < cfg_.window && clock().now() >= resume_at_) {
      ++status_.shipments;
      take(std::move(r));
    } else {
      ++status_.shipments_refused;
      pump();
    }
  }

  // Entries up to r.next are dealt with: ship those that are for us, and ask for more.
  void take(shipment r) {
    status_.sent_cursor = r.next;
    if (r.count > 0)
      ship(std::move(r));
    else if (in_flight_.empty() && r.next > status_.acked_cursor)
      advance_acked(r.next); // nothing for us in between
    pump();
  }

  void ship(shipment r) {
    auto seq = ++next_seq_;
    in_flight_.push_back(batch_in_flight{seq, r.next});
    ++status_.batches_sent;
    status_.events_sent += r.count;
    auto epoch = epoch_;
    request(routes_[route_].second, cfg_.ack_timeout, batch_atom::value, std::move(r.batch))
      .then([this, seq](messages::frame& ack_frame) { on_ack(seq, ack_frame); },
            [this, seq, epoch](caf::error& err) {
              if (epoch != epoch_)
                return;
              // Refused at once (the connection is known to be down): count it like a
              // timeout, but do not hammer the route; a detour, if taken, goes at once.
              if (is(err, errc::peer_down)) {
                resume_at_ = clock().now() + cfg_.ack_timeout;
                // Known down, not merely slow: detour now rather than after more failures.
                failures_ = std::max(failures_, cfg_.failures_before_detour - 1);
              }
              go_back(seq);
            });
  }

  void on_ack(uint64_t seq, const messages::frame& ack_frame) {
    for (auto& b : in_flight_)
      if (b.seq == seq)
        b.acked = true;
    while (!in_flight_.empty() && in_flight_.front().acked) {
      advance_acked(in_flight_.front().end);
      in_flight_.pop_front();
    }
    ++status_.acks;
    failures_ = 0;
    if (auto a = messages::decode_ack(ack_frame))
      status_.remote_applied = std::move(a->applied);
    pump();
  }

  // The destination has everything before `pos` that is meant for it: the leader keeps
  // that cursor (a detour's progress is not the destination's, so it is not kept).
  void advance_acked(uint64_t pos) {
    if (pos <= status_.acked_cursor)
      return;
    status_.acked_cursor = pos;
    if (route_ == 0)
      send(source_, cursor_atom::value, cfg_.to, pos);
  }

  // A batch went unacknowledged: ship everything after the acked cursor again.
  void go_back(uint64_t seq) {
    bool pending = false;
    for (auto& b : in_flight_)
      pending |= b.seq == seq && !b.acked;
    if (!pending)
      return;
    ++status_.retransmits;
    ++epoch_;
    in_flight_.clear();
    status_.sent_cursor = status_.acked_cursor; // pump asks from here

    if (++failures_ >= cfg_.failures_before_detour && routes_.size() > 1)
      take_detour();
    pump();
  }

  // The current route stopped acknowledging: ship to the next detour instead.
  void take_detour() {
    failures_ = 0;
    if (route_ == 0) {
      detour_start_ = status_.acked_cursor;
      delayed_send(this, cfg_.probe_interval, tick_atom::value);
      send(source_, detour_atom::value, cfg_.to, true);
    }
    route_ = route_ + 1 < routes_.size() ? route_ + 1 : 1;
    resume_at_ = {};
    status_.route = routes_[route_].first;
    ++status_.detours_taken;
  }

  // While detoured: an empty batch to the destination; an answer brings the link back.
  void probe() {
    if (route_ == 0)
      return;
    messages::event_batch empty;
    empty.sender = cfg_.from;
    request(routes_[0].second, cfg_.ack_timeout, batch_atom::value, messages::encode(empty))
      .then([this](messages::frame&) { come_back(); },
            [this](caf::error&) {
              if (route_ != 0)
                delayed_send(this, cfg_.probe_interval, tick_atom::value);
            });
  }

  // The destination answers again: ship it everything since the detour began.
  void come_back() {
    if (route_ == 0)
      return;
    route_ = 0;
    status_.route = cfg_.to;
    ++status_.returns;
    send(source_, detour_atom::value, cfg_.to, false);
    ++epoch_;
    in_flight_.clear();
    failures_ = 0;
    resume_at_ = {};
    status_.sent_cursor = detour_start_;
    status_.acked_cursor = detour_start_;
    pump();
  }

  link_config cfg_;
  leader_actor source_;
  /// [0]: the destination; then the detours, in order of preference.
  std::vector<std::pair<messages::node_index, sink_actor>> routes_;
  size_t route_ = 0;
  uint32_t failures_ = 0;     ///< unacknowledged batches in a row on the current route
  uint64_t detour_start_ = 0; ///< the destination's acked cursor when the detour began
  caf::actor_clock::time_point resume_at_{}; ///< no shipping before this (route refused)
  bool resume_scheduled_ = false;
  link_status status_;
  std::deque<batch_in_flight> in_flight_;
  uint64_t next_seq_ = 0;
  uint64_t epoch_ = 0;               ///< bumped by each go-back, to ignore answers from before it
  bool waiting_ = false;             ///< a want is out, not yet answered
  uint64_t want_from_ = 0;           ///< the latest want: where the link stood
  messages::node_index want_to_ = 0; ///< and where it shipped
  bool started_ = false;             ///< the start cursor arrived from the leader
};

} // namespace

link_actor spawn_replication_link(caf::actor_system& sys, link_config cfg, leader_actor source,
                                  sink_actor destination, std::vector<sink_actor> detour_sinks) {
  return sys.spawn<link_impl>(std::move(cfg), std::move(source), std::move(destination),
                              std::move(detour_sinks));
}

} // namespace mlr::actors
