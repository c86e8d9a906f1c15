// The native client gateway's requests that need a check or more than one step before the
// leader answers: resolver and topology changes (admin), conflict-feed pages, typed
// operations and reads, and watches.

#include "gateways/detail/client_state.hpp"
#include "resolvers/resolver.hpp"

#include <caf/actor_system.hpp>

namespace mlr::actors::detail {

std::string client_answer(uint64_t id, const messages::client_response& r) {
  return frame_bytes(
           messages::encode(messages::wire_header{messages::wire_kind::client_response, id})) +
         frame_bytes(messages::encode(r));
}

messages::client_response failure_response(errc code, std::string msg) {
  messages::client_response r;
  r.kind = messages::client_response::op::failure;
  r.fail = messages::failure{code, std::move(msg)};
  return r;
}

void drop_conn(self_ptr self, client_state& st, connection_handle hdl, bool close) {
  if (close)
    self->close(hdl);
  st.conns.erase(hdl);
  for (auto i = st.watches.begin(); i != st.watches.end();)
    if (i->second.hdl == hdl) {
      self->send(st.ctx.leader, unwatch_atom::value, i->first);
      i = st.watches.erase(i);
    } else {
      ++i;
    }
}

void reply_slot::operator()(const messages::client_response& r) const {
  auto* c = st->find(hdl, serial);
  if (!c)
    return;
  auto ready = c->replies.fill(seq, client_answer(id, r));
  c->flow.output_backlog += ready.size(); // until the next data_transferred_msg says
  if (c->flow.output_backlog > st->ctx.max_output_hard_bytes) {
    st->ctx.log.warn("closing client connection from {}: {} bytes of answers unread (the limit "
                     "is {})",
                     c->where, c->flow.output_backlog, st->ctx.max_output_hard_bytes);
    drop_conn(self, *st, hdl);
    return;
  }
  write_bytes(self, hdl, ready);
  c->flow.in_flight = c->replies.slots.size();
  if (c->flow.update(st->ctx))
    self->send(self, resume_atom::value, hdl.id(), serial);
}

void set_resolver(const reply_slot& answer, const std::string& where, const std::string& name) {
  auto make = resolvers::builtin_resolver(name);
  if (!make)
    return answer.fail(errc::invalid_argument, // (not echoed: the name may hold anything)
                       "unknown resolver name of " + std::to_string(name.size()) +
                         " bytes; use lww, multi, max or tags");
  auto log = answer.st->ctx.log;
  answer.self
    ->request(answer.st->ctx.leader, request_timeout, resolver_atom::value,
              resolver_swap{make, name})
    .then(
      [answer, where, name, log](uint32_t in_flight) {
        log.info("resolver set by admin client {}: now '{}', {} questions in flight go on with "
                 "the previous one",
                 where, name, in_flight);
        answer.written(std::to_string(in_flight));
      },
      [answer](caf::error& err) { answer.fail(from_caf(err).code, failure_text(err, true)); });
}

// A page of the conflict feed.
void conflicts(const reply_slot& answer, const messages::client_request& req,
               std::function<void(caf::error&)> on_error) {
  answer.self
    ->request(answer.st->ctx.leader, request_timeout, conflicts_atom::value, req.after,
              req.limit) // (the leader answers at most 1,000 records, about 4 MiB)
    .then(
      [answer](std::vector<conflict_record>& records) {
        messages::client_response r;
        r.kind = messages::client_response::op::conflicts;
        r.conflicts = std::move(records);
        answer(r);
      },
      std::move(on_error));
}

void set_topology(const reply_slot& answer, const std::string& where, const std::string& spec) {
  auto log = answer.st->ctx.log;
  answer.self->request(answer.st->ctx.leader, request_timeout, topology_atom::value, spec)
    .then(
      [answer, where, log](messages::dot& d) {
        log.info("topology set by admin client {}: accepted, epoch {}", where,
                 messages::to_string(d));
        answer.written(messages::to_string(d));
      },
      [answer, where, log](caf::error& err) {
        auto e = from_caf(err);
        log.warn("topology set by admin client {}: refused: {}", where, e.message);
        answer.fail(e.code, failure_text(err, true));
      });
}

// A typed write (answered by its number) or a typed read (answered by the value as its
// type renders it).
void forward_typed(const reply_slot& answer, const messages::client_request& req,
                   std::function<void(caf::error&)> on_error) {
  namespace typed = core::typed;
  auto self = answer.self;
  auto& leader = answer.st->ctx.leader;
  if (req.kind == messages::client_request::op::typed) {
    write_request w;
    w.key = req.key;
    w.op = req.typed_op;
    w.field = req.field;
    w.value = req.value;
    w.delta = req.delta;
    w.index = req.index;
    w.count = req.count;
    if (req.has_context) // checked when the request came in
      if (auto dots = messages::parse_context_token(req.context)) {
        w.has_context = true;
        w.context = std::move(*dots);
      }
    self->request(leader, request_timeout, typed_atom::value, std::vector<write_request>{w})
      .then(
        [answer](std::vector<int64_t>& replies) {
          messages::client_response r;
          r.kind = messages::client_response::op::number;
          r.number = replies.empty() ? 0 : replies.front();
          answer(r);
        },
        on_error);
    return;
  }
  self->request(leader, request_timeout, get_atom::value, req.key)
    .then(
      [answer](get_result& g) {
        messages::client_response r;
        r.kind = messages::client_response::op::typed;
        std::tie(r.type_name, r.items) = typed::render(g.siblings);
        if (r.type_name == "text") {
          r.items = {std::move(g.text)};
          r.context = messages::to_context_token(g.context.dots);
        }
        answer(r);
      },
      on_error);
}

// A watch: a leader subscription whose changes go to this connection, each as a response
// to the watch request, after the first answer ("watching").
void watch(const reply_slot& answer, client_conn& conn, const std::string& prefix) {
  auto st = answer.st;
  if (conn.watches >= max_watches_per_connection)
    return answer.fail(errc::too_large, "more than " + std::to_string(max_watches_per_connection) +
                                          " watches on one connection; watch a shorter prefix");
  if (prefix.size() > st->ctx.max_key_bytes)
    return answer.fail(errc::too_large, "the prefix is longer than a key may be (" +
                                          std::to_string(st->ctx.max_key_bytes) + " bytes)");
  ++conn.watches; // counted at once: pipelined watches do not all pass the check
  auto self = answer.self;
  self
    ->request(st->ctx.leader, request_timeout, watch_atom::value, prefix,
              caf::actor_cast<caf::actor>(self))
    .then(
      [answer, st, self](uint64_t id) {
        if (!st->find(answer.hdl, answer.serial)) {
          self->send(st->ctx.leader, unwatch_atom::value, id); // closed meanwhile
          return;
        }
        st->watches[id] = watch_stream{answer.hdl, answer.serial, answer.id};
        answer.written("watching");
      },
      [answer, st](caf::error& err) {
        if (auto* c = st->find(answer.hdl, answer.serial); c && c->watches > 0)
          --c->watches;
        answer.fail(from_caf(err).code, failure_text(err, false));
      });
}

} // namespace mlr::actors::detail
