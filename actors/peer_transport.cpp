#include "actors/peer_transport.hpp"

#include "actors/broker_util.hpp"
#include "actors/tcp_connect.hpp"
#include "messages/codec.hpp"

#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/io/broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/spawn_options.hpp>
#include <spdlog/spdlog.h>

#include <future>
#include <map>
#include <random>

#include <unistd.h>

// Only ever sent to this process's own acceptor; never serialized.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<const mlr::actors::transport_config>)

namespace mlr::actors {

using messages::frame;
using messages::wire_header;
using messages::wire_kind;
using steady = std::chrono::steady_clock;
using caf::io::connection_handle;

namespace {

int64_t ms_since(steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t).count();
}

void write_message(caf::io::broker* self, connection_handle hdl, wire_kind kind, uint64_t id,
                   const frame& payload) {
  auto header = messages::encode(wire_header{kind, id});
  self->write(hdl, header.bytes.size(), header.bytes.data());
  self->write(hdl, payload.bytes.size(), payload.bytes.data());
  self->flush(hdl);
}

// ---- dialer: this node's connection to one peer -----------------------------------------

using tick_atom_t = tick_atom;
using connected_atom = caf::atom_constant<caf::atom("connected")>;
using member_atom = caf::atom_constant<caf::atom("member")>;

struct dialer_state {
  std::shared_ptr<const transport_config> cfg;
  messages::node_index to = 0;
  leader_actor leader;
  enum class stage { down, connecting, handshaking, up } st = stage::down;
  connection_handle conn;
  std::unique_ptr<message_reader> reader;
  std::string nonce;
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
  uint64_t missing = 0;
  for (auto& [s, c] : st.own_applied.entries()) {
    auto theirs = st.peer.applied.get(s);
    if (c > theirs)
      missing += c - theirs;
  }
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

void go_down(caf::io::broker* self, dialer_state& st, const std::string& why) {
  bool was_up = st.st == dialer_state::stage::up;
  if (st.st == dialer_state::stage::handshaking || st.st == dialer_state::stage::up)
    self->close(st.conn);
  st.st = dialer_state::stage::down;
  st.peer.up = false;
  st.peer.version = 0;
  if (why != st.peer.last_error || was_up)
    spdlog::warn("peer {}: {}", peer_where(st), why);
  st.peer.last_error = why;
  for (auto& [id, rp] : st.pending)
    if (rp.pending())
      rp.deliver(make_error(errc::timeout, "connection to peer " + peer_name(st) + " lost"));
  st.pending.clear();
  st.backlog = 0;
  // Exponential backoff with jitter (0.5x-1.5x), so peers do not reconnect in lockstep.
  st.backoff = std::min(st.cfg->backoff_max,
                        std::max(st.cfg->backoff_min, st.backoff * 2));
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  st.next_attempt = steady::now() + std::chrono::milliseconds(static_cast<int64_t>(
                                      static_cast<double>(st.backoff.count()) * jitter(st.rng)));
}

// Connects on a detached thread (see tcp_connect.hpp); the socket comes back as a
// `connected` message.
void try_connect(caf::io::broker* self, dialer_state& st) {
  st.st = dialer_state::stage::connecting;
  st.stage_since = steady::now();
  auto a = st.cfg->addresses[st.to];
  auto timeout = st.cfg->peer_timeout;
  auto dialer = caf::actor_cast<caf::actor>(self);
  self->spawn<caf::detached>([dialer, a, timeout](caf::event_based_actor* helper) {
    auto r = tcp_connect(a.host, a.port, timeout);
    helper->send(dialer, connected_atom::value, r.fd, r.error);
  });
}

// The connect finished: adopt the socket and say hello.
void on_connected(caf::io::broker* self, dialer_state& st, int fd, const std::string& err) {
  if (st.st != dialer_state::stage::connecting) {
    if (fd >= 0)
      ::close(fd);
    return;
  }
  if (fd < 0) {
    st.st = dialer_state::stage::down;
    go_down(self, st, "cannot connect: " + err);
    return;
  }
  st.conn = self->add_scribe(fd);
  st.reader = std::make_unique<message_reader>(st.cfg->max_frame_bytes);
  self->configure_read(st.conn, caf::io::receive_policy::at_most(64 * 1024));
  self->ack_writes(st.conn, true);
  st.st = dialer_state::stage::handshaking;
  st.stage_since = steady::now();
  st.nonce = random_nonce();
  messages::hello h;
  h.cluster = st.cfg->self.cluster;
  h.node_id = st.cfg->self.node_id;
  h.incarnation = st.cfg->self.incarnation;
  h.min_version = st.cfg->self.min_version;
  h.max_version = st.cfg->self.max_version;
  h.applied = st.own_applied;
  h.nonce = st.nonce;
  write_message(self, st.conn, wire_kind::hello, 0, messages::encode(h));
}

// Tells the local leader what the peer has applied, as if the peer had gossiped it.
void report_to_leader(caf::io::broker* self, dialer_state& st,
                      const messages::version_vector& vv) {
  st.peer.applied = vv;
  update_lag(st);
  messages::ack a;
  a.receiver = st.to;
  a.applied = vv;
  self->send(st.leader, gossip_atom::value, messages::encode(a));
}

std::optional<error> on_dialer_message(caf::io::broker* self, dialer_state& st,
                                       const wire_header& h, const frame& payload) {
  st.last_heard = steady::now();
  if (st.st == dialer_state::stage::handshaking) {
    if (h.kind == wire_kind::error) {
      auto f = messages::decode_failure(payload);
      return error{errc::invalid_argument,
                   "refused our connection: " + (f ? f->message : std::string("(unreadable)"))};
    }
    if (h.kind != wire_kind::hello_reply)
      return error{errc::malformed_frame, std::string("sent ") + messages::to_string(h.kind) +
                                            " before completing the handshake"};
    auto r = messages::decode_hello_reply(payload);
    if (!r)
      return r.err();
    if (r->node_id != peer_name(st))
      return error{errc::unknown_node, "answered as node '" + r->node_id + "', expected '" +
                                         peer_name(st) + "'"};
    if (r->cluster != st.cfg->self.cluster)
      return error{errc::invalid_argument, "belongs to cluster '" + r->cluster + "'"};
    if (!same_proof(r->proof, acceptor_proof(st.cfg->self.secret, st.nonce, r->nonce)))
      return error{errc::invalid_argument,
                   "wrong cluster secret: its proof does not match ours; check "
                   "--cluster-secret-file on both nodes"};
    if (r->version < st.cfg->self.min_version || r->version > st.cfg->self.max_version)
      return error{errc::invalid_argument, "chose protocol version " +
                                             std::to_string(r->version) + ", which we do not speak"};
    write_message(self, st.conn, wire_kind::proof, 0,
                  messages::encode_proof(dialer_proof(st.cfg->self.secret, r->nonce, st.nonce)));
    st.st = dialer_state::stage::up;
    st.peer.up = true;
    st.peer.version = r->version;
    st.peer.last_error.clear();
    ++st.peer.connects;
    st.backoff = std::chrono::milliseconds(0);
    spdlog::info("peer {}: connected, protocol version {}", peer_where(st), r->version);
    report_to_leader(self, st, r->applied);
    return std::nullopt;
  }
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

caf::behavior dialer(caf::io::broker* self, std::shared_ptr<const transport_config> cfg,
                     messages::node_index to, leader_actor leader) {
  auto st = std::make_shared<dialer_state>();
  st->cfg = cfg;
  st->to = to;
  st->leader = leader;
  st->peer.id = cfg->self.members[to];
  st->backoff = std::chrono::milliseconds(0);
  st->next_attempt = steady::now();
  self->send(self, tick_atom::value);
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
    [=](connected_atom, int fd, const std::string& err) { on_connected(self, *st, fd, err); },
    [=](tick_atom) {
      self->delayed_send(self, st->cfg->heartbeat_interval, tick_atom::value);
      switch (st->st) {
        case dialer_state::stage::down:
          if (steady::now() >= st->next_attempt)
            try_connect(self, *st);
          break;
        case dialer_state::stage::connecting:
          break; // the connect gives up by itself after the peer timeout
        case dialer_state::stage::handshaking:
          if (ms_since(st->stage_since) > st->cfg->peer_timeout.count())
            go_down(self, *st, "handshake timed out after " +
                                 std::to_string(st->cfg->peer_timeout.count()) + " ms");
          break;
        case dialer_state::stage::up:
          if (ms_since(st->last_heard) > st->cfg->peer_timeout.count()) {
            go_down(self, *st, "down: silent for " + std::to_string(ms_since(st->last_heard)) +
                                 " ms");
            break;
          }
          messages::ack a;
          a.receiver = st->cfg->self_index;
          a.applied = st->own_applied;
          write_message(self, st->conn, wire_kind::heartbeat, ++st->next_id,
                        messages::encode(a));
          break;
      }
    },
    [=](const caf::io::new_data_msg& msg) {
      if (st->st == dialer_state::stage::down || st->st == dialer_state::stage::connecting ||
          msg.handle != st->conn)
        return;
      st->peer.bytes_received += msg.buf.size();
      auto err = st->reader->feed(msg.buf, [&](const wire_header& h, const frame& payload) {
        return on_dialer_message(self, *st, h, payload);
      });
      if (err)
        go_down(self, *st, err->message);
    },
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

// ---- acceptor: the other nodes' connections to this one -------------------------------

struct inbound {
  enum class stage { await_hello, await_proof, up } st = stage::await_hello;
  std::unique_ptr<message_reader> reader;
  std::string peer_id;
  std::string dialer_nonce;
  std::string nonce;
  std::string where;
  std::string refusal; ///< set when the handshake is refused; the connection then closes
};

struct acceptor_state {
  std::shared_ptr<const transport_config> cfg;
  leader_actor leader;
  std::map<connection_handle, inbound> conns;
  acceptor_stats stats;
};

caf::behavior acceptor(caf::io::broker* self, std::shared_ptr<const transport_config> cfg,
                       leader_actor leader,
                       listen_promise opened) {
  auto st = std::make_shared<acceptor_state>();
  st->cfg = cfg;
  st->leader = leader;
  if (!open_listener(self, cfg->listen_host, cfg->listen_port, opened, "peers"))
    return {};

  // Marks the handshake refused; the data handler logs it and closes the connection
  // once the reader is no longer in use.
  auto refuse = [](inbound& c, const std::string& why) {
    c.refusal = why;
    return error{errc::invalid_argument, why};
  };

  // Answers a request from the peer with what the leader replies.
  auto ask_leader = [self, st](connection_handle hdl, uint64_t id, wire_kind answer_kind,
                               auto... request) {
    self->request(st->leader, caf::infinite, request...)
      .then(
        [self, st, hdl, id, answer_kind](frame& answer) {
          if (st->conns.count(hdl))
            write_message(self, hdl, answer_kind, id, answer);
        },
        [self, st, hdl, id](caf::error& err) {
          if (st->conns.count(hdl))
            write_message(self, hdl, wire_kind::error, id,
                          messages::encode(messages::failure{
                            static_cast<errc>(err.code()), self->system().render(err)}));
        });
  };

  auto on_message = [self, st, refuse, ask_leader](connection_handle hdl, inbound& c,
                                                   const wire_header& h,
                                                   const frame& payload) -> std::optional<error> {
    switch (c.st) {
      case inbound::stage::await_hello: {
        if (h.kind != wire_kind::hello)
          return error{errc::malformed_frame, std::string("sent ") + messages::to_string(h.kind) +
                                                " instead of a hello"};
        auto hello = messages::decode_hello(payload);
        if (!hello)
          return hello.err();
        auto version = check_hello(st->cfg->self, *hello);
        if (!version)
          return refuse(c, "node '" + hello->node_id + "': " + version.err().message);
        c.peer_id = hello->node_id;
        c.dialer_nonce = hello->nonce;
        c.nonce = random_nonce();
        c.st = inbound::stage::await_proof;
        messages::hello_reply r;
        r.cluster = st->cfg->self.cluster;
        r.node_id = st->cfg->self.node_id;
        r.incarnation = st->cfg->self.incarnation;
        r.version = *version;
        r.nonce = c.nonce;
        r.proof = acceptor_proof(st->cfg->self.secret, c.dialer_nonce, c.nonce);
        // The reply carries our version vector; the leader fills it in.
        self->request(st->leader, caf::infinite, report_atom::value)
          .then([self, st, hdl, r](frame& report) mutable {
            if (auto a = messages::decode_ack(report))
              r.applied = a->applied;
            if (st->conns.count(hdl))
              write_message(self, hdl, wire_kind::hello_reply, 0, messages::encode(r));
          });
        // Tell the leader what the dialer has applied.
        auto idx = std::find(st->cfg->self.members.begin(), st->cfg->self.members.end(),
                             hello->node_id) -
                   st->cfg->self.members.begin();
        messages::ack a;
        a.receiver = static_cast<messages::node_index>(idx);
        a.applied = hello->applied;
        self->send(st->leader, gossip_atom::value, messages::encode(a));
        return std::nullopt;
      }
      case inbound::stage::await_proof: {
        if (h.kind != wire_kind::proof)
          return error{errc::malformed_frame, std::string("sent ") + messages::to_string(h.kind) +
                                                " instead of its proof"};
        auto proof = messages::decode_proof(payload);
        if (!proof)
          return proof.err();
        if (!same_proof(*proof, dialer_proof(st->cfg->self.secret, c.nonce, c.dialer_nonce)))
          return refuse(c, "node '" + c.peer_id +
                             "': wrong cluster secret (its proof does not match); check "
                             "--cluster-secret-file on both nodes");
        c.st = inbound::stage::up;
        ++st->stats.accepted;
        spdlog::info("accepted node {} from {}", c.peer_id, c.where);
        return std::nullopt;
      }
      case inbound::stage::up:
        switch (h.kind) {
          case wire_kind::batch:
            ask_leader(hdl, h.request_id, wire_kind::ack, batch_atom::value, payload);
            return std::nullopt;
          case wire_kind::pull:
            ask_leader(hdl, h.request_id, wire_kind::pull_answer, pull_atom::value, payload);
            return std::nullopt;
          case wire_kind::gossip:
            self->send(st->leader, gossip_atom::value, payload);
            return std::nullopt;
          case wire_kind::heartbeat:
            self->send(st->leader, gossip_atom::value, payload);
            ask_leader(hdl, h.request_id, wire_kind::heartbeat, report_atom::value);
            return std::nullopt;
          default:
            return error{errc::malformed_frame,
                         std::string("sent an unexpected ") + messages::to_string(h.kind)};
        }
    }
    return std::nullopt;
  };

  return {
    [=](const caf::io::new_connection_msg& msg) {
      auto& c = st->conns[msg.handle];
      c.reader = std::make_unique<message_reader>(st->cfg->max_frame_bytes);
      c.where = accept_connection(self, msg.handle);
    },
    [=](const caf::io::new_data_msg& msg) {
      st->stats.bytes_received += msg.buf.size();
      auto i = st->conns.find(msg.handle);
      if (i == st->conns.end())
        return;
      auto hdl = msg.handle;
      auto err = i->second.reader->feed(msg.buf, [&](const wire_header& h, const frame& p) {
        auto j = st->conns.find(hdl);
        if (j == st->conns.end())
          return std::optional<error>{};
        return on_message(hdl, j->second, h, p);
      });
      if (err) {
        auto j = st->conns.find(hdl);
        if (j == st->conns.end())
          return;
        auto& c = j->second;
        if (!c.refusal.empty()) {
          ++st->stats.refused;
          st->stats.last_refusal = c.refusal;
          spdlog::warn("refused connection from {}: {}", c.where, c.refusal);
          write_message(self, hdl, wire_kind::error, 0,
                        messages::encode(messages::failure{errc::invalid_argument, c.refusal}));
        } else {
          ++st->stats.bad_frames;
          st->stats.last_refusal = err->message;
          spdlog::warn("closing connection from {}{}: {}", c.where,
                       c.peer_id.empty() ? "" : " (node " + c.peer_id + ")", err->message);
        }
        self->close(hdl);
        st->conns.erase(j);
      }
    },
    [=](const caf::io::connection_closed_msg& msg) { st->conns.erase(msg.handle); },
    [=](const caf::io::acceptor_closed_msg&) {},
    [=](status_atom) { return st->stats; },
    // A member added at runtime: its dials are accepted from now on.
    [=](member_atom, std::shared_ptr<const transport_config>& cfg) { st->cfg = cfg; },
  };
}

} // namespace

result<transport> start_transport(caf::actor_system& sys, transport_config cfg,
                                  leader_actor leader) {
  auto shared = std::make_shared<const transport_config>(std::move(cfg));
  auto opened = std::make_shared<std::promise<result<uint16_t>>>();
  auto port_future = opened->get_future();
  transport t;
  t.acceptor = sys.middleman().spawn_broker(acceptor, shared, leader, opened);
  if (port_future.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
    return error{errc::timeout, "the listening socket did not open within 10 s"};
  auto port = port_future.get();
  if (!port)
    return port.err();
  t.port = *port;
  t.cfg = shared;
  auto n = shared->self.members.size();
  t.dialers.resize(n);
  t.sinks.resize(n);
  for (messages::node_index i = 0; i < n; ++i) {
    if (i == shared->self_index)
      continue;
    t.dialers[i] = sys.middleman().spawn_broker(dialer, shared, i, leader);
    t.sinks[i] = caf::actor_cast<sink_actor>(t.dialers[i]);
  }
  return t;
}

sink_actor add_peer(caf::actor_system& sys, transport& t, leader_actor leader,
                    const std::string& name, peer_address where) {
  auto next = std::make_shared<transport_config>(*t.cfg);
  auto i = std::find(next->self.members.begin(), next->self.members.end(), name);
  if (i != next->self.members.end()) { // known already
    auto idx = static_cast<size_t>(i - next->self.members.begin());
    return idx < t.sinks.size() ? t.sinks[idx] : sink_actor{};
  }
  auto index = static_cast<messages::node_index>(next->self.members.size());
  next->self.members.push_back(name);
  next->addresses.push_back(std::move(where));
  t.cfg = next;
  caf::anon_send(t.acceptor, member_atom::value, t.cfg);
  t.dialers.push_back(sys.middleman().spawn_broker(dialer, t.cfg, index, leader));
  t.sinks.push_back(caf::actor_cast<sink_actor>(t.dialers.back()));
  spdlog::info("member {} added at runtime: dialing {}:{}", name, t.cfg->addresses[index].host,
               t.cfg->addresses[index].port);
  return t.sinks.back();
}

} // namespace mlr::actors
