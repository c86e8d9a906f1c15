// The dialer: this node's connection to one peer (see peer_transport.hpp): connect with a
// timeout on a helper thread, handshake, heartbeats, down/up with backoff, and requests
// forwarded to the peer with their answers delivered back.

#include "transport/detail/transport_detail.hpp"

#include "messages/codec.hpp"
#include "transport/detail/tcp_connect.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/spawn_options.hpp>

#include <map>
#include <random>

namespace mlr::actors::detail {

using caf::io::connection_handle;
using messages::frame;
using messages::wire_header;
using messages::wire_kind;

namespace {

struct dialer_state {
  std::shared_ptr<const transport_config> cfg;
  messages::node_index to = 0;
  leader_actor leader;
  enum class stage { down, connecting, handshaking, up } st = stage::down;
  connection_handle conn;
  std::unique_ptr<message_reader> reader;
  frame hello;            // the exact bytes sent: half of the transcript
  std::string transcript; // set once the challenge arrived
  std::string proof;      // this node's proof, which the acceptor's covers
  std::map<uint64_t, caf::response_promise> pending;
  uint64_t next_id = 0;
  messages::version_vector own_applied;
  peer_state peer;
  steady::time_point last_heard;
  steady::time_point stage_since;
  steady::time_point next_attempt;
  std::chrono::milliseconds backoff{0};
  uint64_t backlog = 0;
  std::optional<steady::time_point> behind_since;
  std::mt19937_64 rng{std::random_device{}()};
};

// Lag: what we applied that the peer has not, and since when it has been behind.
void update_lag(dialer_state& st) {
  auto missing = st.own_applied.missing_from(st.peer.applied);
  st.peer.lag_events = missing;
  if (missing == 0)
    st.behind_since.reset();
  else if (!st.behind_since)
    st.behind_since = steady::now();
  st.peer.lag_ms = st.behind_since ? ms_since(*st.behind_since) : 0;
}

const std::string& peer_name(const dialer_state& st) {
  return st.cfg->self.members[st.to];
}

std::string peer_where(const dialer_state& st) {
  auto& a = st.cfg->addresses[st.to];
  return peer_name(st) + " at " + a.host + ":" + std::to_string(a.port);
}

void go_down(dialer_actor::broker_pointer self, dialer_state& st, const std::string& why) {
  bool was_up = st.st == dialer_state::stage::up;
  if (st.st == dialer_state::stage::handshaking || st.st == dialer_state::stage::up)
    self->close(st.conn);
  st.st = dialer_state::stage::down;
  st.peer.up = false;
  st.peer.version = 0;
  if (why != st.peer.last_error || was_up)
    st.cfg->log.warn("peer {}: {}", peer_where(st), why);
  st.peer.last_error = why;
  for (auto& [id, rp] : st.pending)
    if (rp.pending())
      rp.deliver(make_error(errc::timeout, "connection to peer " + peer_name(st) + " lost"));
  st.pending.clear();
  st.backlog = 0;
  // Exponential backoff with jitter (0.5x-1.5x), so peers do not reconnect in lockstep.
  st.backoff = std::min(st.cfg->backoff_max, std::max(st.cfg->backoff_min, st.backoff * 2));
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  st.next_attempt = steady::now() + std::chrono::milliseconds(static_cast<int64_t>(
                                      static_cast<double>(st.backoff.count()) * jitter(st.rng)));
}

// Connects on a detached thread (see tcp_connect.hpp); the socket comes back as a
// `connected` message.
void try_connect(dialer_actor::broker_pointer self, dialer_state& st) {
  st.st = dialer_state::stage::connecting;
  st.stage_since = steady::now();
  auto a = st.cfg->addresses[st.to];
  auto timeout = st.cfg->peer_timeout;
  auto dialer = caf::actor_cast<dialer_actor>(self);
  self->spawn<caf::detached>([dialer, a, timeout](caf::event_based_actor* helper) {
    helper->send(dialer, connected_atom::value,
                 std::make_shared<connect_result>(tcp_connect(a.host, a.port, timeout)));
  });
}

// The connect finished: adopt the socket and say hello.
void on_connected(dialer_actor::broker_pointer self, dialer_state& st, connect_result& r) {
  if (st.st != dialer_state::stage::connecting)
    return; // r closes the socket
  if (!r.fd) {
    st.st = dialer_state::stage::down;
    go_down(self, st, "cannot connect: " + r.error);
    return;
  }
  st.conn = self->add_scribe(r.fd.release());
  // Until the peer proved itself, only handshake-sized frames are taken from it.
  st.reader = std::make_unique<message_reader>(st.cfg->unproven_frame_bytes);
  st.transcript.clear();
  st.proof.clear();
  self->configure_read(st.conn, caf::io::receive_policy::at_most(64 * 1024));
  self->ack_writes(st.conn, true);
  st.st = dialer_state::stage::handshaking;
  st.stage_since = steady::now();
  messages::hello h;
  h.node_id = st.cfg->self.node_id;
  h.min_version = st.cfg->self.min_version;
  h.max_version = st.cfg->self.max_version;
  h.nonce = random_nonce();
  st.hello = messages::encode(h);
  write_message(self, st.conn, wire_kind::hello, 0, st.hello);
}

// Tells the local leader what the peer has applied, as if the peer had gossiped it.
void report_to_leader(dialer_actor::broker_pointer self, dialer_state& st,
                      const messages::version_vector& vv) {
  st.peer.applied = vv;
  update_lag(st);
  messages::ack a;
  a.receiver = st.to;
  a.applied = vv;
  self->send(st.leader, gossip_atom::value, messages::encode(a));
}

// The handshake, dialer side (handshake.hpp): prove ourselves against the challenge, then
// check the acceptor's proof and identity in its welcome.
std::optional<error> on_handshake_message(dialer_actor::broker_pointer self, dialer_state& st,
                                          const wire_header& h, const frame& payload) {
  if (h.kind == wire_kind::error) {
    auto f = messages::decode_failure(payload);
    return error{errc::invalid_argument,
                 "refused our connection: " + (f ? f->message : std::string("(unreadable)"))};
  }
  auto& self_id = st.cfg->self;
  if (st.transcript.empty()) {
    if (h.kind != wire_kind::hello_reply)
      return error{errc::malformed_frame,
                   std::string("sent ") + messages::to_string(h.kind) + " instead of a challenge"};
    auto r = messages::decode_hello_reply(payload);
    if (!r)
      return r.err();
    if (r->version < self_id.min_version || r->version > self_id.max_version)
      return error{errc::invalid_argument, "chose protocol version " + std::to_string(r->version) +
                                             ", which we do not speak"};
    if (r->nonce.size() != 32)
      return error{errc::invalid_argument, "its challenge nonce has " +
                                             std::to_string(r->nonce.size()) +
                                             " bytes instead of 32"};
    st.peer.version = r->version;
    st.transcript = transcript(st.hello, payload);
    st.proof = dialer_proof(self_id.secret, self_id.cluster, st.transcript);
    write_message(self, st.conn, wire_kind::proof, 0, messages::encode_proof(st.proof));
    // The welcome carries the acceptor's vector (32 bytes a source): more than the 4 KiB an
    // unproven peer may send otherwise. It is bounded still, and checked against its proof.
    st.reader->set_max_frame_bytes(1u << 20);
    return std::nullopt;
  }
  if (h.kind != wire_kind::welcome)
    return error{errc::malformed_frame, std::string("sent ") + messages::to_string(h.kind) +
                                          " before completing the handshake"};
  auto w = messages::decode_welcome(payload);
  if (!w)
    return w.err();
  if (!same_proof(w->proof, acceptor_proof(self_id.secret, self_id.cluster, st.transcript, st.proof,
                                           welcome_fields(*w))))
    return error{errc::invalid_argument,
                 "its proof does not match: wrong cluster name or secret; check the cluster "
                 "file and --cluster-secret-file on both nodes"};
  if (w->node_id != peer_name(st))
    return error{errc::unknown_node,
                 "answered as node '" + w->node_id + "', expected '" + peer_name(st) + "'"};
  st.st = dialer_state::stage::up;
  st.reader->set_max_frame_bytes(st.cfg->max_frame_bytes);
  st.peer.up = true;
  st.peer.last_error.clear();
  ++st.peer.connects;
  st.backoff = std::chrono::milliseconds(0);
  st.cfg->log.info("peer {}: connected, protocol version {}", peer_where(st), st.peer.version);
  report_to_leader(self, st, w->applied);
  // Our own vector, at once (the acceptor hands it to its leader as gossip).
  messages::ack a;
  a.receiver = st.cfg->self_index;
  a.applied = st.own_applied;
  write_message(self, st.conn, wire_kind::heartbeat, ++st.next_id, messages::encode(a));
  return std::nullopt;
}

std::optional<error> on_dialer_message(dialer_actor::broker_pointer self, dialer_state& st,
                                       const wire_header& h, const frame& payload) {
  st.last_heard = steady::now();
  if (st.st == dialer_state::stage::handshaking)
    return on_handshake_message(self, st, h, payload);
  // Answers and reports name the node they come from: only the proven peer.
  auto named = h.kind == wire_kind::pull_answer ? messages::peek_batch_sender(payload)
               : h.kind == wire_kind::ack || h.kind == wire_kind::heartbeat
                 ? messages::peek_ack_receiver(payload)
                 : result<messages::node_index>(st.to);
  if (!named)
    return named.err();
  if (*named != st.to)
    return error{errc::unknown_node, std::string("sent a ") + messages::to_string(h.kind) +
                                       " naming node " + std::to_string(*named) +
                                       "; a connection speaks only for its proven node"};
  switch (h.kind) {
  case wire_kind::ack:
  case wire_kind::pull_answer: {
    if (h.kind == wire_kind::ack)
      if (auto a = messages::decode_ack(payload)) {
        st.peer.applied.merge(a->applied); // acks carry the receiver's vector: fresher lag
        update_lag(st);
      }
    auto i = st.pending.find(h.request_id);
    if (i != st.pending.end()) {
      i->second.deliver(payload);
      st.pending.erase(i);
    }
    return std::nullopt;
  }
  case wire_kind::error: {
    auto i = st.pending.find(h.request_id);
    if (i != st.pending.end()) {
      auto f = messages::decode_failure(payload);
      i->second.deliver(f ? make_error(f->code, f->message)
                          : make_error(errc::malformed_frame, "unreadable failure"));
      st.pending.erase(i);
    }
    return std::nullopt;
  }
  case wire_kind::heartbeat: {
    if (auto a = messages::decode_ack(payload))
      report_to_leader(self, st, a->applied);
    return std::nullopt;
  }
  default:
    return error{errc::malformed_frame,
                 std::string("sent an unexpected ") + messages::to_string(h.kind)};
  }
}

// Dials when it is time, gives up a handshake or a silent peer after the peer timeout, and
// sends the heartbeat (this node's version vector) while up.
void on_tick(dialer_actor::broker_pointer self, dialer_state& st) {
  switch (st.st) {
  case dialer_state::stage::down:
    if (steady::now() >= st.next_attempt)
      try_connect(self, st);
    break;
  case dialer_state::stage::connecting:
    break; // the connect gives up by itself after the peer timeout
  case dialer_state::stage::handshaking:
    if (ms_since(st.stage_since) > st.cfg->peer_timeout.count())
      go_down(self, st,
              "handshake timed out after " + std::to_string(st.cfg->peer_timeout.count()) + " ms");
    break;
  case dialer_state::stage::up: {
    if (ms_since(st.last_heard) > st.cfg->peer_timeout.count()) {
      go_down(self, st, "down: silent for " + std::to_string(ms_since(st.last_heard)) + " ms");
      break;
    }
    messages::ack a;
    a.receiver = st.cfg->self_index;
    a.applied = st.own_applied;
    write_message(self, st.conn, wire_kind::heartbeat, ++st.next_id, messages::encode(a));
    break;
  }
  }
}

void on_data(dialer_actor::broker_pointer self, dialer_state& st,
             const caf::io::new_data_msg& msg) {
  if (st.st == dialer_state::stage::down || st.st == dialer_state::stage::connecting ||
      msg.handle != st.conn)
    return;
  st.peer.bytes_received += msg.buf.size();
  auto err = st.reader->feed(msg.buf, [&](const wire_header& h, const frame& payload) {
    return on_dialer_message(self, st, h, payload);
  });
  if (err)
    go_down(self, st, err->message);
}

} // namespace

dialer_actor::behavior_type dialer(dialer_actor::broker_pointer self,
                                   std::shared_ptr<const transport_config> cfg,
                                   messages::node_index to, leader_actor leader) {
  auto st = std::make_shared<dialer_state>();
  st->cfg = cfg;
  st->to = to;
  st->leader = leader;
  st->peer.id = cfg->self.members[to];
  st->backoff = std::chrono::milliseconds(0);
  st->next_attempt = steady::now();
  self->send(self, tick_atom::value);
  start_ticker<tick_atom>(self, cfg->heartbeat_interval);
  auto forward = [self, st](wire_kind kind, const frame& payload) -> caf::result<frame> {
    // Known down: say so now (before taking the response over), so links can detour.
    if (st->st != dialer_state::stage::up)
      return caf::result<frame>(make_error(errc::peer_down, "peer " + peer_name(*st) + " is down"));
    auto rp = self->make_response_promise();
    if (st->backlog > st->cfg->max_write_backlog)
      return caf::delegated<frame>{}; // lost in the network: the sender times out
    auto id = ++st->next_id;
    st->pending.emplace(id, rp);
    write_message(self, st->conn, kind, id, payload);
    return caf::delegated<frame>{};
  };
  return {
    [=](batch_atom, const frame& f) { return forward(wire_kind::batch, f); },
    [=](pull_atom, const frame& f) { return forward(wire_kind::pull, f); },
    [=](gossip_atom, const frame& f) {
      if (auto a = messages::decode_ack(f)) {
        st->own_applied = a->applied;
        update_lag(*st);
      }
      if (st->st == dialer_state::stage::up && st->backlog <= st->cfg->max_write_backlog)
        write_message(self, st->conn, wire_kind::gossip, 0, f);
    },
    [=](connected_atom, const std::shared_ptr<connect_result>& r) { on_connected(self, *st, *r); },
    [=](tick_atom) { on_tick(self, *st); },
    [=](const caf::io::new_data_msg& msg) { on_data(self, *st, msg); },
    [=](const caf::io::data_transferred_msg& msg) {
      if (msg.handle == st->conn)
        st->backlog = msg.remaining;
    },
    [=](const caf::io::connection_closed_msg& msg) {
      if (st->st != dialer_state::stage::down && msg.handle == st->conn) {
        st->st = dialer_state::stage::handshaking; // so go_down does not close it twice
        self->close(st->conn);
        go_down(self, *st, "connection closed by the peer");
      }
    },
    [=](status_atom) {
      update_lag(*st);
      auto p = st->peer;
      p.silent_ms = st->peer.connects > 0 ? ms_since(st->last_heard) : -1;
      return p;
    },
  };
}

} // namespace mlr::actors::detail
