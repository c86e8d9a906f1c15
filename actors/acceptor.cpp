// The acceptor: the listening socket and the other nodes' connections to this one
// (see peer_transport.hpp): handshake, then requests handed to the local leader and the
// answers written back.

#include "actors/transport_detail.hpp"

#include "messages/codec.hpp"

#include <caf/response_promise.hpp>
#include <spdlog/spdlog.h>

#include <map>

namespace mlr::actors::detail {

using messages::frame;
using messages::wire_header;
using messages::wire_kind;
using caf::io::connection_handle;

namespace {


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

} // namespace

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

} // namespace mlr::actors::detail
