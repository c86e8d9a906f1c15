// The node's blocking API: each call asks the leader and waits for its answer.

#include "node/detail/node_impl.hpp"

#include "core/typed.hpp"

#include <caf/event_based_actor.hpp>

namespace mlr::node {

uint16_t node::peer_port() const {
  return impl_->net ? impl_->net->port : 0;
}
uint16_t node::client_port() const {
  return impl_->client_port;
}
uint16_t node::resp_port() const {
  return impl_->resp_port;
}
uint64_t node::incarnation() const {
  return impl_->incarnation;
}
const std::string& node::where() const {
  return impl_->where;
}

result<messages::dot> node::put(const std::string& key, const std::string& value) {
  return impl_->ask<messages::dot>(actors::put_atom::value, key, value);
}

result<messages::dot> node::put(const std::string& key, const std::string& value,
                                const std::vector<messages::dot>& context) {
  return impl_->ask<messages::dot>(actors::put_atom::value, key, value,
                                   actors::causal_context{context});
}

result<messages::dot> node::del(const std::string& key) {
  return impl_->ask<messages::dot>(actors::del_atom::value, key);
}

result<read_result> node::get(const std::string& key) {
  auto r = impl_->ask<actors::get_result>(actors::get_atom::value, key);
  if (!r)
    return r.err();
  return read_result{std::move(r->siblings), std::move(r->context.dots)};
}

result<int64_t> node::typed(messages::op_kind op, const std::string& key, const std::string& field,
                            const std::string& value, int64_t delta) {
  core::write_request w;
  w.key = key;
  w.op = op;
  w.field = field;
  w.value = value;
  w.delta = delta;
  if (op == messages::op_kind::put || op == messages::op_kind::del ||
      op == messages::op_kind::clear)
    return error{errc::invalid_argument,
                 "typed() takes incr, sadd, srem, hset, hdel or hincr; use put() or del()"};
  if (messages::is_text_op(op))
    return error{errc::invalid_argument, "typed() does not edit text; use text_insert() or "
                                         "text_delete()"};
  auto r = impl_->ask<std::vector<int64_t>>(actors::typed_atom::value,
                                            std::vector<core::write_request>{w});
  if (!r)
    return r.err();
  return r->empty() ? 0 : r->front();
}

result<uint64_t> node::watch(const std::string& prefix,
                             std::function<void(const change&)> on_change,
                             std::function<void(const std::string&)> on_dropped) {
  auto leader = impl_->leader;
  auto who = impl_->sys->spawn(
    [on_change, on_dropped, leader](caf::event_based_actor* self) -> caf::behavior {
      return {
        [=](actors::change_atom, uint64_t id, const std::vector<change>& cs) {
          uint64_t bytes = 0;
          for (auto& c : cs) {
            on_change(c);
            bytes += core::change_bytes(c);
          }
          self->send(leader, actors::watch_ack_atom::value, id, static_cast<uint64_t>(cs.size()),
                     bytes);
        },
        [=](actors::change_atom, uint64_t, const std::string& why) {
          if (on_dropped)
            on_dropped(why);
          self->quit();
        },
      };
    });
  auto id = impl_->ask<uint64_t>(actors::watch_atom::value, prefix, who);
  if (!id) {
    caf::anon_send_exit(who, caf::exit_reason::user_shutdown);
    return id.err();
  }
  impl_->watchers[*id] = who;
  return *id;
}

void node::unwatch(uint64_t id) {
  auto i = impl_->watchers.find(id);
  if (i == impl_->watchers.end())
    return;
  caf::anon_send(impl_->leader, actors::unwatch_atom::value, id);
  caf::anon_send_exit(i->second, caf::exit_reason::user_shutdown);
  impl_->watchers.erase(i);
}

result<uint32_t> node::set_resolver(const std::string& name) {
  auto make = resolvers::builtin_resolver(name);
  if (!make)
    return error{errc::invalid_argument,
                 "unknown resolver '" + name + "'; use lww, multi, max or tags"};
  auto r = impl_->ask<uint32_t>(actors::resolver_atom::value, actors::resolver_swap{make, name});
  if (r)
    impl_->opts.resolver = name;
  return r;
}

result<std::vector<conflict_record>> node::conflicts(uint64_t after, uint32_t limit) {
  return impl_->ask<std::vector<conflict_record>>(actors::conflicts_atom::value, after, limit);
}

result<typed_value> node::read(const std::string& key) {
  auto r = impl_->ask<actors::get_result>(actors::get_atom::value, key);
  if (!r)
    return r.err();
  auto [type, items] = core::typed::render(r->siblings);
  if (type == "text")
    items = {std::move(r->text)};
  return typed_value{std::move(type), std::move(items)};
}

namespace {

core::write_request text_write(messages::op_kind op, const std::string& key, uint64_t index,
                               const std::vector<messages::dot>* context) {
  core::write_request w;
  w.key = key;
  w.op = op;
  w.index = index;
  if (context) {
    w.has_context = true;
    w.context = *context;
  }
  return w;
}

} // namespace

result<uint64_t> node::text_length_after(const core::write_request& w) {
  auto r = impl_->ask<std::vector<int64_t>>(actors::typed_atom::value,
                                            std::vector<core::write_request>{w});
  if (!r)
    return r.err();
  return r->empty() ? 0 : static_cast<uint64_t>(r->front());
}

result<uint64_t> node::text_insert(const std::string& key, uint64_t index, const std::string& text,
                                   const std::vector<messages::dot>* context) {
  auto w = text_write(messages::op_kind::text_insert, key, index, context);
  w.value = text;
  return text_length_after(w);
}

result<uint64_t> node::text_delete(const std::string& key, uint64_t index, uint64_t count,
                                   const std::vector<messages::dot>* context) {
  auto w = text_write(messages::op_kind::text_delete, key, index, context);
  w.count = count;
  return text_length_after(w);
}

result<text_value> node::text_read(const std::string& key) {
  auto r = impl_->ask<actors::get_result>(actors::get_atom::value, key);
  if (!r)
    return r.err();
  auto t = core::typed::type_of(r->siblings);
  if (t != core::typed::key_type::text && t != core::typed::key_type::none)
    return error{errc::refused,
                 "WRONGTYPE Operation against a key holding the wrong kind of value"};
  return text_value{std::move(r->text), r->text_length, std::move(r->context.dots)};
}

} // namespace mlr::node
