#include "sim_channel.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <deque>

namespace mlr::testing {

namespace {

struct channel_state {
  actors::sink_actor dest;
  bool holding = false;
  std::deque<std::pair<messages::frame, caf::typed_response_promise<messages::frame>>> queue;
};

using channel_pointer = channel_actor::stateful_pointer<channel_state>;

void forward(channel_pointer self, messages::frame f,
             caf::typed_response_promise<messages::frame> rp) {
  self->request(self->state.dest, caf::infinite, actors::batch_atom::value, std::move(f))
    .then([rp](messages::frame& ack) mutable { rp.deliver(std::move(ack)); },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
}

channel_actor::behavior_type channel(channel_pointer self, actors::sink_actor dest) {
  // The channel lives and dies with the leader it feeds.
  self->link_to(dest);
  self->state.dest = std::move(dest);
  return {
    [self](actors::batch_atom, messages::frame& f) {
      auto rp = self->make_response_promise<messages::frame>();
      if (self->state.holding)
        self->state.queue.emplace_back(std::move(f), rp);
      else
        forward(self, std::move(f), rp);
      return rp;
    },
    [self](hold_atom) { self->state.holding = true; },
    [self](release_atom) {
      self->state.holding = false;
      while (!self->state.queue.empty()) {
        auto [f, rp] = std::move(self->state.queue.front());
        self->state.queue.pop_front();
        forward(self, std::move(f), rp);
      }
    },
  };
}

} // namespace

channel_actor spawn_channel(caf::actor_system& sys, actors::sink_actor dest) {
  return sys.spawn(channel, std::move(dest));
}

} // namespace mlr::testing
