#include "sim_channel.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <deque>
#include <random>

namespace mlr::testing {

namespace {

using promise = caf::typed_response_promise<messages::frame>;

// One message in transit. `kind` is batch, pull (requests, answered through `rp`) or
// gossip (one-way).
struct parcel {
  caf::atom_value kind;
  messages::frame f;
  promise rp;
};

struct channel_state {
  actors::sink_actor dest;
  bool holding = false;
  bool holding_batches = false;
  bool cut = false;
  fault_config faults;
  std::mt19937_64 rng;
  std::deque<parcel> held;
  std::map<uint64_t, parcel> delayed;
  uint64_t next_id = 0;
  // Requests lost in the network: their promises are kept so that senders time out
  // instead of getting an immediate "broken promise".
  std::vector<promise> lost;
  channel_stats stats;

  bool chance(double p) { return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < p; }
};

using channel_pointer = channel_actor::stateful_pointer<channel_state>;

size_t events_in(const messages::frame& f) {
  auto b = messages::decode_batch(f);
  return b ? b->events.size() : 0;
}

void deliver(channel_pointer self, parcel p) {
  auto& st = self->state;
  ++st.stats.forwarded;
  if (p.kind == actors::gossip_atom::value) {
    self->send(st.dest, actors::gossip_atom::value, std::move(p.f));
    return;
  }
  auto on_answer = [self, rp = p.rp](messages::frame& answer) mutable {
    if (self->state.cut || self->state.chance(self->state.faults.drop)) {
      ++self->state.stats.dropped;
      self->state.lost.push_back(rp);
      return;
    }
    rp.deliver(std::move(answer));
  };
  auto on_error = [rp = p.rp](caf::error& err) mutable { rp.deliver(std::move(err)); };
  if (p.kind == actors::batch_atom::value) {
    st.stats.events += events_in(p.f);
    self->request(st.dest, caf::infinite, actors::batch_atom::value, std::move(p.f))
      .then(std::move(on_answer), std::move(on_error));
  } else {
    self->request(st.dest, caf::infinite, actors::pull_atom::value, std::move(p.f))
      .then(std::move(on_answer), std::move(on_error));
  }
}

// A message entering the channel: held, lost, delayed, duplicated or passed on.
void admit(channel_pointer self, parcel p) {
  auto& st = self->state;
  if (st.holding || (st.holding_batches && p.kind == actors::batch_atom::value)) {
    st.held.push_back(std::move(p));
    return;
  }
  if (st.cut || st.chance(st.faults.drop)) {
    ++st.stats.dropped;
    if (p.kind != actors::gossip_atom::value)
      st.lost.push_back(p.rp);
    return;
  }
  if (st.chance(st.faults.duplicate)) {
    ++st.stats.duplicated;
    // The copy's answer goes nowhere; the original's answer is the one the sender gets.
    if (p.kind == actors::gossip_atom::value)
      self->send(st.dest, actors::gossip_atom::value, p.f);
    else if (p.kind == actors::batch_atom::value)
      self->request(st.dest, caf::infinite, actors::batch_atom::value, p.f)
        .then([](messages::frame&) {}, [](caf::error&) {});
    else
      self->request(st.dest, caf::infinite, actors::pull_atom::value, p.f)
        .then([](messages::frame&) {}, [](caf::error&) {});
  }
  if (st.chance(st.faults.delay)) {
    ++st.stats.delayed;
    auto id = st.next_id++;
    auto ms =
      std::uniform_int_distribution<uint32_t>(1, std::max(1u, st.faults.max_delay_ms))(st.rng);
    st.delayed.emplace(id, std::move(p));
    self->delayed_send(self, std::chrono::milliseconds(ms), deliver_atom::value, id);
    return;
  }
  deliver(self, std::move(p));
}

channel_actor::behavior_type channel(channel_pointer self, actors::sink_actor dest, uint64_t seed) {
  // The channel outlives the leader it feeds (a node may restart behind it); the network
  // stops it.
  self->state.dest = std::move(dest);
  self->state.rng.seed(seed);
  return {
    [self](actors::batch_atom, messages::frame& f) {
      auto rp = self->make_response_promise<messages::frame>();
      admit(self, parcel{actors::batch_atom::value, std::move(f), rp});
      return rp;
    },
    [self](actors::pull_atom, messages::frame& f) {
      auto rp = self->make_response_promise<messages::frame>();
      admit(self, parcel{actors::pull_atom::value, std::move(f), rp});
      return rp;
    },
    [self](actors::gossip_atom, messages::frame& f) {
      admit(self, parcel{actors::gossip_atom::value, std::move(f), promise{}});
    },
    [self](hold_atom) { self->state.holding = true; },
    [self](hold_batches_atom) { self->state.holding_batches = true; },
    [self](release_atom) {
      self->state.holding = false;
      self->state.holding_batches = false;
      while (!self->state.held.empty()) {
        auto p = std::move(self->state.held.front());
        self->state.held.pop_front();
        admit(self, std::move(p));
      }
    },
    [self](cut_atom) { self->state.cut = true; },
    [self](heal_atom) { self->state.cut = false; },
    [self](faults_atom, fault_config cfg) { self->state.faults = cfg; },
    [self](retarget_atom, actors::sink_actor dest) { self->state.dest = std::move(dest); },
    [self](deliver_atom, uint64_t id) {
      auto i = self->state.delayed.find(id);
      if (i == self->state.delayed.end())
        return;
      auto p = std::move(i->second);
      self->state.delayed.erase(i);
      if (self->state.cut) {
        ++self->state.stats.dropped;
        if (p.kind != actors::gossip_atom::value)
          self->state.lost.push_back(p.rp);
        return;
      }
      deliver(self, std::move(p));
    },
    [self](actors::status_atom) { return self->state.stats; },
  };
}

} // namespace

channel_actor spawn_channel(caf::actor_system& sys, actors::sink_actor dest, uint64_t seed) {
  return sys.spawn(channel, std::move(dest), seed);
}

actors::sink_actor sim_network::sink(messages::node_index from, messages::node_index to,
                                     actors::leader_actor dest) {
  auto key = std::make_pair(from, to);
  auto i = channels_.find(key);
  if (i != channels_.end()) {
    caf::anon_send(i->second, retarget_atom::value, actors::sink_actor{dest});
    return i->second;
  }
  auto ch = spawn_channel(sys_, dest, seed_ * 1000003u + from * 1009u + to);
  channels_.emplace(key, ch);
  return ch;
}

sim_network::~sim_network() {
  for (auto& [pair, ch] : channels_)
    caf::anon_send_exit(ch, caf::exit_reason::user_shutdown);
}

channel_actor sim_network::at(messages::node_index from, messages::node_index to) const {
  return channels_.at(std::make_pair(from, to));
}

} // namespace mlr::testing
