#include "actors/replication_link.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <deque>

namespace mlr::actors {

namespace {

class link_impl : public link_actor::base {
public:
  link_impl(caf::actor_config& ac, link_config cfg, leader_actor source, sink_actor dest)
    : link_actor::base(ac), cfg_(cfg), source_(std::move(source)), dest_(std::move(dest)) {
    status_.from = cfg_.from;
    status_.to = cfg_.to;
  }

  behavior_type make_behavior() override {
    // The link lives and dies with its source leader.
    link_to(source_);
    // Start where the destination last acknowledged (0 for a fresh log), then ship.
    request(source_, caf::infinite, subscribe_atom::value, cfg_.to).then([this](uint64_t start) {
      status_.sent_cursor = std::max(status_.sent_cursor, start);
      status_.acked_cursor = std::max(status_.acked_cursor, start);
      started_ = true;
      pump();
    });
    return {
      [this](log_grew_atom) { pump(); },
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
    dest_ = nullptr;
  }

private:
  struct batch_in_flight {
    uint64_t seq;
    uint64_t end; ///< source log position after this batch
    bool acked = false;
  };

  // Fetches and ships while the window has room and the log has entries for us.
  void pump() {
    if (!started_ || fetching_ || in_flight_.size() >= cfg_.window)
      return;
    fetching_ = true;
    auto epoch = epoch_;
    request(source_, caf::infinite, fetch_atom::value, cfg_.to, status_.sent_cursor,
            cfg_.max_batch_events)
      .then([this, epoch](fetch_result& r) {
        fetching_ = false;
        if (epoch != epoch_) { // a retransmit restarted the cursor meanwhile
          pump();
          return;
        }
        status_.sent_cursor = r.next;
        if (r.count > 0)
          ship(std::move(r));
        else if (in_flight_.empty())
          status_.acked_cursor = r.next; // nothing for us in between
        if (r.next < r.log_end)
          pump();
      });
  }

  void ship(fetch_result r) {
    auto seq = ++next_seq_;
    in_flight_.push_back(batch_in_flight{seq, r.next});
    ++status_.batches_sent;
    status_.events_sent += r.count;
    auto epoch = epoch_;
    request(dest_, cfg_.ack_timeout, batch_atom::value, std::move(r.batch))
      .then([this, seq](messages::frame& ack_frame) { on_ack(seq, ack_frame); },
            [this, seq, epoch](caf::error&) {
              if (epoch == epoch_)
                go_back(seq);
            });
  }

  void on_ack(uint64_t seq, const messages::frame& ack_frame) {
    for (auto& b : in_flight_)
      if (b.seq == seq)
        b.acked = true;
    auto acked_before = status_.acked_cursor;
    while (!in_flight_.empty() && in_flight_.front().acked) {
      status_.acked_cursor = in_flight_.front().end;
      in_flight_.pop_front();
    }
    if (status_.acked_cursor > acked_before)
      send(source_, cursor_atom::value, cfg_.to, status_.acked_cursor);
    ++status_.acks;
    if (auto a = messages::decode_ack(ack_frame))
      status_.remote_applied = std::move(a->applied);
    pump();
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
    status_.sent_cursor = status_.acked_cursor;
    pump();
  }

  link_config cfg_;
  leader_actor source_;
  sink_actor dest_;
  link_status status_;
  std::deque<batch_in_flight> in_flight_;
  uint64_t next_seq_ = 0;
  uint64_t epoch_ = 0; ///< bumped by each go-back, to ignore answers from before it
  bool fetching_ = false;
  bool started_ = false; ///< the start cursor arrived from the leader
};

} // namespace

link_actor spawn_replication_link(caf::actor_system& sys, link_config cfg, leader_actor source,
                                  sink_actor destination) {
  return sys.spawn<link_impl>(cfg, std::move(source), std::move(destination));
}

} // namespace mlr::actors
