// The acceptor: the listening socket and the other nodes' connections to this one
// (see peer_transport.hpp): the handshake of handshake.hpp, then requests handed to the
// local leader and the answers written back.
//
// An unproven connection is held on a short leash: it may send frames of a few KiB only,
// it is closed if it has not proved itself within the handshake timeout, and at most
// `max_unproven` are held at once. Nothing it sends reaches the leader, and nothing about
// this node is written to it, before its proof checks out. Afterwards the proven node
// index is the only sender, requester or reporter its messages may name.

#include "transport/detail/transport_detail.hpp"

#include "messages/codec.hpp"

#include <caf/response_promise.hpp>

#include <map>

namespace mlr::actors::detail {

using caf::io::connection_handle;
using messages::frame;
using messages::wire_header;
using messages::wire_kind;

namespace {

struct inbound {
  enum class stage { await_hello, await_proof, up } st = stage::await_hello;
  /// Unique per connection in this process: the OS reuses file descriptors, and with them
  /// CAF's connection handles, so an answer checks it still writes to the connection that
  /// asked.
  uint64_t serial = 0;
  std::unique_ptr<message_reader> reader;
  std::string peer_id;
  messages::node_index peer = messages::no_node;
  std::string transcript;
  std::string where;
  std::string host; ///< the remote address, for the per-host limit
  steady::time_point since;
  std::string refusal; ///< set when the handshake is refused; the connection then closes
};

struct acceptor_state {
  std::shared_ptr<const transport_config> cfg;
  leader_actor leader;
  std::map<connection_handle, inbound> conns;
  uint64_t next_serial = 0;
  acceptor_stats stats;
  steady::time_point last_flood_log;

  // The connection `hdl` if it is still the one numbered `serial`.
  inbound* find(connection_handle hdl, uint64_t serial) {
    auto i = conns.find(hdl);
    return i != conns.end() && i->second.serial == serial ? &i->second : nullptr;
  }
  size_t unproven(const std::string& from_host = {}) const {
    size_t n = 0;
    for (auto& [h, c] : conns)
      n += c.st != inbound::stage::up && (from_host.empty() || c.host == from_host);
    return n;
  }
  // The unproven connection that has waited longest.
  std::map<connection_handle, inbound>::iterator oldest_unproven() {
    auto best = conns.end();
    for (auto i = conns.begin(); i != conns.end(); ++i)
      if (i->second.st != inbound::stage::up &&
          (best == conns.end() || i->second.since < best->second.since))
        best = i;
    return best;
  }
};

// The kinds a proven peer may send, with the node index each must name.
std::optional<error> check_speaker(const inbound& c, const wire_header& h, const frame& payload,
                                   const transport_config& cfg) {
  messages::decode_limits limits;
  limits.max_frame_bytes = cfg.max_frame_bytes;
  result<messages::node_index> named = messages::node_index{0};
  const char* field = "";
  switch (h.kind) {
  case wire_kind::batch:
    named = messages::peek_batch_sender(payload, limits);
    field = "a batch from sender";
    break;
  case wire_kind::pull:
    named = messages::peek_pull_requester(payload, limits);
    field = "a pull for requester";
    break;
  case wire_kind::gossip:
  case wire_kind::heartbeat:
    named = messages::peek_ack_receiver(payload, limits);
    field = "the version vector of node";
    break;
  default:
    return error{errc::malformed_frame,
                 std::string("sent an unexpected ") + messages::to_string(h.kind)};
  }
  if (!named)
    return named.err();
  if (*named != c.peer)
    return error{errc::unknown_node, "node " + c.peer_id + " (index " + std::to_string(c.peer) +
                                       ") sent " + field + " " + std::to_string(*named) +
                                       ": a connection speaks only for its proven node"};
  return std::nullopt;
}

using self_ptr = acceptor_actor::broker_pointer;
using state_ptr = std::shared_ptr<acceptor_state>;
using conn_iter = std::map<connection_handle, inbound>::iterator;

// Marks the handshake refused; the data handler logs it, tells the peer, and closes the
// connection once the reader is no longer in use.
error refuse(inbound& c, const std::string& why) {
  c.refusal = why;
  return error{errc::invalid_argument, why};
}

void drop(self_ptr self, acceptor_state& st, conn_iter i) {
  self->close(i->first);
  st.conns.erase(i);
}

// Answers a request from the peer with what the leader replies, on the same connection.
template <class... Request>
void ask_leader(self_ptr self, const state_ptr& st, connection_handle hdl, uint64_t serial,
                uint64_t id, wire_kind answer_kind, Request... request) {
  self->request(st->leader, caf::infinite, request...)
    .then(
      [self, st, hdl, serial, id, answer_kind](frame& answer) {
        if (st->find(hdl, serial))
          write_message(self, hdl, answer_kind, id, answer);
      },
      [self, st, hdl, serial, id](caf::error& err) {
        if (st->find(hdl, serial)) {
          auto e = actors::from_caf(err);
          write_message(self, hdl, wire_kind::error, id,
                        messages::encode(messages::failure{e.code, e.message}));
        }
      });
}

std::optional<error> on_hello(self_ptr self, acceptor_state& st, connection_handle hdl, inbound& c,
                              const wire_header& h, const frame& payload) {
  if (h.kind != wire_kind::hello)
    return error{errc::malformed_frame,
                 std::string("sent ") + messages::to_string(h.kind) + " instead of a hello"};
  auto hello = messages::decode_hello(payload);
  if (!hello)
    return hello.err();
  auto version = check_hello(st.cfg->self, *hello);
  if (!version)
    return refuse(c, version.err().message);
  c.peer_id = hello->node_id;
  messages::hello_reply challenge;
  challenge.version = *version;
  challenge.nonce = random_nonce();
  auto reply = messages::encode(challenge);
  c.transcript = transcript(payload, reply);
  c.st = inbound::stage::await_proof;
  write_message(self, hdl, wire_kind::hello_reply, 0, reply);
  return std::nullopt;
}

std::optional<error> on_proof(self_ptr self, const state_ptr& st, connection_handle hdl, inbound& c,
                              const wire_header& h, const frame& payload) {
  if (h.kind != wire_kind::proof)
    return error{errc::malformed_frame,
                 std::string("sent ") + messages::to_string(h.kind) + " instead of its proof"};
  auto proof = messages::decode_proof(payload);
  if (!proof)
    return proof.err();
  auto& self_id = st->cfg->self;
  if (!same_proof(*proof, dialer_proof(self_id.secret, self_id.cluster, c.transcript)))
    return refuse(c, "its proof does not match: wrong cluster name or secret; check the "
                     "cluster file and --cluster-secret-file on both nodes");
  auto member = check_member(self_id, c.peer_id);
  if (!member)
    return refuse(c, member.err().message);
  c.peer = *member;
  c.st = inbound::stage::up;
  c.reader->set_max_frame_bytes(st->cfg->max_frame_bytes);
  ++st->stats.accepted;
  st->cfg->log.info("accepted node {} from {}", c.peer_id, c.where);
  // Only now does the peer learn who this node is and what it holds.
  messages::welcome w;
  w.node_id = self_id.node_id;
  w.incarnation = self_id.incarnation;
  auto serial = c.serial;
  auto proof_input = std::make_tuple(self_id.secret, self_id.cluster, c.transcript, *proof);
  self->request(st->leader, caf::infinite, report_atom::value)
    .then([self, st, hdl, serial, w, proof_input](frame& report) mutable {
      if (auto a = messages::decode_ack(report))
        w.applied = a->applied;
      auto& [secret, cluster, transcript, dialer] = proof_input;
      w.proof = acceptor_proof(secret, cluster, transcript, dialer, welcome_fields(w));
      if (st->find(hdl, serial))
        write_message(self, hdl, wire_kind::welcome, 0, messages::encode(w));
    });
  return std::nullopt;
}

std::optional<error> on_message(self_ptr self, const state_ptr& st, connection_handle hdl,
                                inbound& c, const wire_header& h, const frame& payload) {
  switch (c.st) {
  case inbound::stage::await_hello:
    return on_hello(self, *st, hdl, c, h, payload);
  case inbound::stage::await_proof:
    return on_proof(self, st, hdl, c, h, payload);
  case inbound::stage::up:
    break;
  }
  if (auto bad = check_speaker(c, h, payload, *st->cfg)) {
    if (bad->code == errc::unknown_node)
      ++st->stats.impersonations;
    return bad;
  }
  switch (h.kind) {
  case wire_kind::batch:
    ask_leader(self, st, hdl, c.serial, h.request_id, wire_kind::ack, batch_atom::value, payload);
    break;
  case wire_kind::pull:
    ask_leader(self, st, hdl, c.serial, h.request_id, wire_kind::pull_answer, pull_atom::value,
               payload);
    break;
  case wire_kind::gossip:
    self->send(st->leader, gossip_atom::value, payload);
    break;
  case wire_kind::heartbeat:
    self->send(st->leader, gossip_atom::value, payload);
    ask_leader(self, st, hdl, c.serial, h.request_id, wire_kind::heartbeat, report_atom::value);
    break;
  default:
    break; // check_speaker refused every other kind
  }
  return std::nullopt;
}

// A flood of connections that never prove themselves must neither grow the node nor lock
// real peers out: at most a quarter of the unproven slots per remote host (more from it are
// refused), and when all slots are taken the one that waited longest makes room (a peer
// proves itself within a round trip; a squatter does not).
void on_new_connection(self_ptr self, acceptor_state& st, connection_handle hdl) {
  auto host = self->remote_addr(hdl);
  auto flood_log = [&](const char* what) {
    ++st.stats.unproven_refused;
    if (ms_since(st.last_flood_log) > 1000) {
      st.last_flood_log = steady::now();
      st.cfg->log.warn("peer connections: {} ({} unproven, the limit is {}); {} so far", what,
                       st.unproven(), st.cfg->max_unproven, st.stats.unproven_refused);
    }
  };
  if (st.unproven(host) >= std::max<size_t>(1, st.cfg->max_unproven / 4)) {
    flood_log("too many unproven from one host, refusing the newest");
    self->close(hdl);
    return;
  }
  if (st.unproven() >= st.cfg->max_unproven) {
    flood_log("all unproven slots taken, closing the oldest");
    drop(self, st, st.oldest_unproven());
  }
  auto& c = st.conns[hdl];
  c = inbound{};
  c.serial = ++st.next_serial;
  c.reader = std::make_unique<message_reader>(st.cfg->unproven_frame_bytes);
  c.where = accept_connection(self, hdl);
  c.host = host;
  c.since = steady::now();
}

// A connection is closed for `err`: a refused handshake tells the peer why.
void close_for(self_ptr self, acceptor_state& st, conn_iter j, const error& err) {
  auto& c = j->second;
  if (!c.refusal.empty()) {
    ++st.stats.refused;
    st.stats.last_refusal = c.refusal;
    st.cfg->log.warn("refused connection from {}: {}", c.where, c.refusal);
    write_message(self, j->first, wire_kind::error, 0,
                  messages::encode(messages::failure{errc::invalid_argument, c.refusal}));
  } else {
    ++st.stats.bad_frames;
    st.stats.last_refusal = err.message;
    st.cfg->log.warn("closing connection from {}{}: {}", c.where,
                     c.peer_id.empty() || c.st != inbound::stage::up ? ""
                                                                     : " (node " + c.peer_id + ")",
                     err.message);
  }
  drop(self, st, j);
}

void on_data(self_ptr self, const state_ptr& st, const caf::io::new_data_msg& msg) {
  st->stats.bytes_received += msg.buf.size();
  auto i = st->conns.find(msg.handle);
  if (i == st->conns.end())
    return;
  auto hdl = msg.handle;
  auto serial = i->second.serial;
  auto err = i->second.reader->feed(msg.buf, [&](const wire_header& h, const frame& p) {
    auto* c = st->find(hdl, serial);
    if (!c)
      return std::optional<error>{};
    return on_message(self, st, hdl, *c, h, p);
  });
  if (!err)
    return;
  auto j = st->conns.find(hdl);
  if (j != st->conns.end() && j->second.serial == serial)
    close_for(self, *st, j, *err);
}

// Closes the connections that did not prove themselves within the handshake timeout.
void on_tick(self_ptr self, acceptor_state& st) {
  auto limit = st.cfg->handshake_timeout.count();
  for (auto i = st.conns.begin(); i != st.conns.end();) {
    auto& c = i->second;
    if (c.st == inbound::stage::up || ms_since(c.since) <= limit) {
      ++i;
      continue;
    }
    ++st.stats.handshake_timeouts;
    st.cfg->log.warn("closing connection from {}: no proof within the handshake timeout of {} ms",
                     c.where, limit);
    auto next = std::next(i);
    drop(self, st, i);
    i = next;
  }
}

} // namespace

acceptor_actor::behavior_type acceptor(acceptor_actor::broker_pointer self,
                                       std::shared_ptr<const transport_config> cfg,
                                       leader_actor leader, listen_promise opened) {
  auto st = std::make_shared<acceptor_state>();
  st->cfg = cfg;
  st->leader = leader;
  if (!open_listener(self, cfg->listen_host, cfg->listen_port, opened, "peers"))
    return no_behavior<acceptor_actor::behavior_type>();
  start_ticker<tick_atom>(self, std::chrono::milliseconds(200));
  return {
    [=](const caf::io::new_connection_msg& msg) { on_new_connection(self, *st, msg.handle); },
    [=](const caf::io::new_data_msg& msg) { on_data(self, st, msg); },
    [=](const caf::io::connection_closed_msg& msg) { st->conns.erase(msg.handle); },
    [=](const caf::io::acceptor_closed_msg&) {},
    [=](tick_atom) { on_tick(self, *st); },
    [=](status_atom) { return st->stats; },
    // A member added at runtime: its dials are accepted from now on.
    [=](member_atom, std::shared_ptr<const transport_config>& cfg) { st->cfg = cfg; },
  };
}

} // namespace mlr::actors::detail
