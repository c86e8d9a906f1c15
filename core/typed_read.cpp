// Reading typed keys, and what their writes answer (typed.hpp).

#include "core/detail/typed_impl.hpp"
#include "core/typed.hpp"

#include <map>
#include <set>

namespace mlr::core::typed {

using detail::live;
using detail::share_sum;
using messages::op_kind;
using messages::value_kind;
using messages::version;

int64_t counter_value(const std::vector<version>& vs) {
  return static_cast<int64_t>(share_sum(vs, value_kind::counter, {}));
}

std::vector<std::string> set_members(const std::vector<version>& vs) {
  if (type_of(vs) != key_type::set)
    return {};
  std::set<std::string> members;
  for (auto& v : vs)
    if (v.kind == value_kind::element)
      members.insert(v.field);
  return {members.begin(), members.end()};
}

bool set_contains(const std::vector<version>& vs, const std::string& element) {
  if (type_of(vs) != key_type::set)
    return false;
  return std::any_of(vs.begin(), vs.end(), [&](const version& v) {
    return v.kind == value_kind::element && v.field == element;
  });
}

std::vector<std::pair<std::string, std::string>> hash_fields(const std::vector<version>& vs) {
  if (type_of(vs) != key_type::hash)
    return {};
  std::map<std::string, const version*> latest; // per field: its latest live version
  for (auto& v : vs)
    if ((v.kind == value_kind::field || v.kind == value_kind::field_counter) && live(v)) {
      auto& best = latest[v.field];
      if (!best || messages::lww_before(*best, v))
        best = &v;
    }
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [field, v] : latest) {
    if (v->kind == value_kind::field)
      out.emplace_back(field, v->value);
    else
      out.emplace_back(field, std::to_string(static_cast<int64_t>(
                                share_sum(vs, value_kind::field_counter, field))));
  }
  return out;
}

std::optional<std::string> hash_get(const std::vector<version>& vs, const std::string& field) {
  for (auto& [f, value] : hash_fields(vs))
    if (f == field)
      return value;
  return std::nullopt;
}

int64_t hash_counter(const std::vector<version>& vs, const std::string& field) {
  return static_cast<int64_t>(share_sum(vs, value_kind::field_counter, field));
}

std::pair<std::string, std::vector<std::string>> render(const std::vector<version>& vs) {
  auto t = type_of(vs);
  std::vector<std::string> items;
  if (t == key_type::string)
    items.push_back(*string_value(vs));
  else if (t == key_type::counter)
    items.push_back(std::to_string(counter_value(vs)));
  else if (t == key_type::set)
    items = set_members(vs);
  for (auto& [f, v] : hash_fields(vs)) {
    items.push_back(f);
    items.push_back(v);
  }
  return {name(t), std::move(items)};
}

std::optional<std::string> string_value(const std::vector<version>& vs) {
  if (type_of(vs) != key_type::string)
    return std::nullopt;
  if (auto* m = merged(vs))
    return m->value;
  const version* best = nullptr;
  for (auto& v : vs)
    if (v.kind == value_kind::reg && (!best || messages::lww_before(*best, v)))
      best = &v;
  if (!best || best->tombstone)
    return std::nullopt;
  return best->value;
}

change describe(const messages::event& e, const std::vector<version>& after) {
  change c;
  c.key = e.key;
  c.id = e.id;
  c.type = name(type_of(after));
  switch (e.op) {
  case op_kind::put:
    c.event = "set";
    c.value = e.value;
    break;
  case op_kind::del:
  case op_kind::clear:
    c.event = "del";
    break;
  case op_kind::incr:
    c.event = "incrby";
    c.value = std::to_string(counter_value(after));
    break;
  case op_kind::sadd:
  case op_kind::srem:
    c.event = e.op == op_kind::sadd ? "sadd" : "srem";
    c.field = e.field;
    break;
  case op_kind::hset:
    c.event = "hset";
    c.field = e.field;
    c.value = e.value;
    break;
  case op_kind::hdel:
    c.event = "hdel";
    c.field = e.field;
    break;
  case op_kind::hincr:
    c.event = "hincrby";
    c.field = e.field;
    c.value = std::to_string(hash_counter(after, e.field));
    break;
  case op_kind::text_insert:
    c.event = "text.insert";
    break;
  case op_kind::text_delete:
    c.event = "text.del";
    break;
  }
  return c;
}

change describe_state(const std::string& key, const char* event,
                      const std::vector<version>& after) {
  change c;
  c.key = key;
  c.event = event;
  auto t = type_of(after);
  c.type = name(t);
  if (t == key_type::string)
    c.value = string_value(after).value_or("");
  else if (t == key_type::counter)
    c.value = std::to_string(counter_value(after));
  for (auto& v : after)
    c.id = std::max(c.id, v.id);
  return c;
}

int64_t reply(const std::vector<version>& before, const std::vector<version>& after,
              const write_request& w) {
  switch (w.op) {
  case op_kind::incr:
    return counter_value(after);
  case op_kind::hincr:
    return hash_counter(after, w.field);
  case op_kind::sadd:
    return set_contains(before, w.field) ? 0 : 1;
  case op_kind::srem:
    return set_contains(before, w.field) ? 1 : 0;
  case op_kind::hset:
    return hash_get(before, w.field) ? 0 : 1;
  case op_kind::hdel:
    return hash_get(before, w.field) ? 1 : 0;
  case op_kind::del:
  case op_kind::clear:
    return type_of(before) != key_type::none ? 1 : 0;
  case op_kind::put:
  case op_kind::text_insert:
  case op_kind::text_delete:
    return 0; // the replica answers a text write (its document's new length)
  }
  return 0;
}

} // namespace mlr::core::typed
