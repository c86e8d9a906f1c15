// Typed keys: preparing, applying and reading counters, sets and maps (typed.hpp).

#include "core/typed.hpp"

#include "core/detail/typed_impl.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

namespace mlr::core::typed {

using detail::live;
using detail::share_sum;
using detail::type_of;

using messages::counter_removal;
using messages::dot;
using messages::event;
using messages::op_kind;
using messages::value_kind;
using messages::version;

const char* name(key_type t) {
  switch (t) {
  case key_type::none:
    return "none";
  case key_type::string:
    return "string";
  case key_type::counter:
    return "counter";
  case key_type::set:
    return "set";
  case key_type::hash:
    return "hash";
  case key_type::text:
    return "text";
  }
  return "none";
}

key_type detail::type_of(value_kind k) {
  switch (k) {
  case value_kind::reg:
  case value_kind::merged:
    return key_type::string;
  case value_kind::counter:
    return key_type::counter;
  case value_kind::element:
    return key_type::set;
  case value_kind::field:
  case value_kind::field_counter:
    return key_type::hash;
  case value_kind::text:
    return key_type::text;
  case value_kind::text_op:
  case value_kind::text_snap:
    break; // kept under a key of its own, never among a key's versions
  }
  return key_type::none;
}

bool detail::live(const version& v) {
  return !is_share(v.kind) || read_share(v).live(v);
}

namespace {

// A context replaces every version whose origin incarnation it names at or above the
// version's counter: every earlier write of an origin is in the causal past of its later
// ones, and a context is part of its write's causal past, so this is the same rule at every
// node (DESIGN.md, "Hostile input"); it lets a context carry one dot per origin incarnation.
bool replaces(const std::vector<dot>& context, const dot& v) {
  return std::any_of(context.begin(), context.end(),
                     [&](const dot& d) { return d.origin == v.origin && d.counter >= v.counter; });
}

// Which versions (not shares) an operation replaces when its context names them: a
// register write or a delete replaces the whole key; a set or map operation its own
// element or field, and whatever of another type the origin saw (the key changes type).
bool in_scope(op_kind op, const std::string& field, const version& v) {
  switch (op) {
  case op_kind::sadd:
  case op_kind::srem:
    return type_of(v.kind) != key_type::set || v.field == field;
  case op_kind::hset:
  case op_kind::hdel:
  case op_kind::hincr:
    return type_of(v.kind) != key_type::hash || v.field == field;
  case op_kind::text_insert:
  case op_kind::text_delete:
    return type_of(v.kind) != key_type::text;
  default:
    return true; // put, del, clear; and incr (a counter has only shares)
  }
}

// Which counter shares an operation removes (the live ones the origin sees).
bool removes_share(op_kind op, const std::string& field, const version& v) {
  switch (op) {
  case op_kind::incr:
    return v.kind == value_kind::field_counter;
  case op_kind::hincr:
    return v.kind == value_kind::counter;
  case op_kind::hset:
  case op_kind::hdel:
    return v.kind == value_kind::counter || v.field == field;
  default:
    return true; // put, del, clear, sadd, srem
  }
}

value_kind share_kind(op_kind op) {
  return op == op_kind::hincr ? value_kind::field_counter : value_kind::counter;
}

version* find_share(std::vector<version>& vs, value_kind kind, const std::string& field,
                    const messages::source& origin) {
  for (auto& v : vs)
    if (v.kind == kind && v.field == field && v.id.origin == origin)
      return &v;
  return nullptr;
}

// The two halves of a share merge separately: the later increment (ties: the later time,
// since a removal that arrived first made the share without the increment's time), and
// the later removal.
void join_increment(version& s, uint64_t counter, uint64_t total, messages::hlc time) {
  auto sh = read_share(s);
  if (counter > s.id.counter) {
    s.id.counter = counter;
    s.time = time;
    sh.total = total;
  } else if (counter == s.id.counter && s.time < time) {
    s.time = time;
  }
  s.value = encode_share(sh);
}

void join_removal(version& s, uint64_t upto, uint64_t total) {
  auto sh = read_share(s);
  if (upto > sh.removed_upto) {
    sh.removed_upto = upto;
    sh.removed = total;
  }
  s.value = encode_share(sh);
}

void apply_removal(std::vector<version>& vs, const counter_removal& r) {
  auto kind = r.in_map ? value_kind::field_counter : value_kind::counter;
  auto* s = find_share(vs, kind, r.field, r.origin);
  if (!s) {
    vs.push_back(version{dot{r.origin, r.upto}, messages::hlc{0}, false,
                         encode_share(share{r.total, 0, 0}), kind, r.field});
    s = &vs.back();
  }
  join_increment(*s, r.upto, r.total, messages::hlc{0});
  join_removal(*s, r.upto, r.total);
}

} // namespace

uint64_t detail::share_sum(const std::vector<version>& vs, value_kind kind,
                           const std::string& field) {
  uint64_t sum = 0;
  for (auto& v : vs)
    if (v.kind == kind && v.field == field) {
      auto sh = read_share(v);
      sum += sh.total - sh.removed;
    }
  return sum;
}

namespace {

std::vector<dot> register_dots(const std::vector<version>& vs) {
  std::vector<dot> out;
  for (auto& v : vs)
    if (v.kind == value_kind::reg)
      out.push_back(v.id);
  std::sort(out.begin(), out.end());
  return out;
}

bool by_identity(const version& a, const version& b) {
  if (a.id != b.id)
    return a.id < b.id;
  if (a.kind != b.kind)
    return a.kind < b.kind;
  return a.field < b.field;
}

} // namespace

key_type type_of(op_kind op) {
  switch (op) {
  case op_kind::put:
  case op_kind::del:
    return key_type::string;
  case op_kind::incr:
    return key_type::counter;
  case op_kind::sadd:
  case op_kind::srem:
    return key_type::set;
  case op_kind::hset:
  case op_kind::hdel:
  case op_kind::hincr:
    return key_type::hash;
  case op_kind::text_insert:
  case op_kind::text_delete:
    return key_type::text;
  case op_kind::clear:
    return key_type::none;
  }
  return key_type::none;
}

key_type type_of(const std::vector<version>& vs) {
  // A register delete does not hide typed versions it did not see (observed-remove: what
  // it saw, it replaced); otherwise the latest live version decides.
  const version* reg = nullptr;
  const version* typed = nullptr;
  for (auto& v : vs) {
    auto& best = v.kind == value_kind::reg ? reg : typed;
    if (live(v) && (!best || messages::lww_before(*best, v)))
      best = &v;
  }
  if (typed && (!reg || reg->tombstone || messages::lww_before(*reg, *typed)))
    return type_of(typed->kind);
  return reg && !reg->tombstone ? key_type::string : key_type::none;
}

bool is_share(value_kind k) {
  return k == value_kind::counter || k == value_kind::field_counter;
}

share read_share(const version& v) {
  share s;
  if (v.value.size() == 24) {
    std::memcpy(&s.total, v.value.data(), 8);
    std::memcpy(&s.removed_upto, v.value.data() + 8, 8);
    std::memcpy(&s.removed, v.value.data() + 16, 8);
  }
  return s;
}

std::string encode_share(const share& s) {
  std::string out(24, '\0');
  std::memcpy(out.data(), &s.total, 8);
  std::memcpy(out.data() + 8, &s.removed_upto, 8);
  std::memcpy(out.data() + 16, &s.removed, 8);
  return out;
}

prepared prepare(const std::vector<version>& vs, const write_request& w,
                 const messages::source& self) {
  prepared p;
  p.op = w.op;
  auto shown = type_of(vs);
  auto wanted = type_of(w.op);
  if (w.op == op_kind::del && shown != key_type::string && shown != key_type::none)
    p.op = op_kind::clear;
  if (wanted != key_type::string && wanted != key_type::none && shown != key_type::none &&
      shown != wanted) {
    p.refused = "WRONGTYPE Operation against a key holding the wrong kind of value";
    return p;
  }
  std::vector<dot> context;
  for (auto& v : vs) {
    if (!is_share(v.kind)) {
      if (in_scope(p.op, w.field, v))
        context.push_back(v.id);
    } else if (removes_share(p.op, w.field, v) && live(v)) {
      auto sh = read_share(v);
      p.removed.push_back(counter_removal{v.field, v.id.origin, v.id.counter, sh.total,
                                          v.kind == value_kind::field_counter});
    }
  }
  p.context = messages::canonical_context(context);
  if (p.op == op_kind::incr || p.op == op_kind::hincr) {
    auto now = p.op == op_kind::incr ? counter_value(vs) : hash_counter(vs, w.field);
    int64_t next = 0;
    if (__builtin_add_overflow(now, w.delta, &next)) {
      p.refused = "ERR increment or decrement would overflow";
      return p;
    }
    auto field = p.op == op_kind::incr ? std::string() : w.field;
    uint64_t base = 0;
    for (auto& v : vs)
      if (v.kind == share_kind(p.op) && v.field == field && v.id.origin == self)
        base = read_share(v).total;
    p.total = base + static_cast<uint64_t>(w.delta);
  }
  return p;
}

std::vector<version> apply(const std::vector<version>& current, const event& e, bool& concurrent) {
  concurrent = false;
  bool register_write = e.op == op_kind::put || e.op == op_kind::del;
  std::vector<version> next;
  next.reserve(current.size() + 1);
  for (auto& v : current) {
    if (!is_share(v.kind)) {
      if (v.id == e.id)
        continue; // it came with a state transfer already: added again below
      if (in_scope(e.op, e.field, v) && replaces(e.context, v.id))
        continue;
      if (v.kind == value_kind::text && messages::is_text_op(e.op) && v.id.origin == e.id.origin)
        continue; // the origin's mark moves to this operation (causal: its later one)
      concurrent |= register_write && v.kind == value_kind::reg;
    }
    next.push_back(v);
  }
  for (auto& r : e.removed)
    apply_removal(next, r);
  switch (e.op) {
  case op_kind::put:
  case op_kind::del:
    next.push_back(version{e.id, e.time, e.op == op_kind::del, e.value, value_kind::reg, {}});
    break;
  case op_kind::sadd:
    next.push_back(version{e.id, e.time, false, {}, value_kind::element, e.field});
    break;
  case op_kind::hset:
    next.push_back(version{e.id, e.time, false, e.value, value_kind::field, e.field});
    break;
  case op_kind::incr:
  case op_kind::hincr: {
    auto kind = share_kind(e.op);
    auto field = e.op == op_kind::incr ? std::string() : e.field;
    if (auto* s = find_share(next, kind, field, e.id.origin))
      join_increment(*s, e.id.counter, e.total, e.time);
    else
      next.push_back(version{e.id, e.time, false, encode_share(share{e.total, 0, 0}), kind, field});
    break;
  }
  case op_kind::text_insert:
  case op_kind::text_delete:
    next.push_back(version{e.id, e.time, false, {}, value_kind::text, {}});
    break;
  default:
    break; // srem, hdel, clear add nothing
  }
  drop_stale_merge(current, next);
  std::sort(next.begin(), next.end(), by_identity);
  return next;
}

std::vector<version> join_shares(const std::vector<version>& a, const std::vector<version>& b) {
  std::vector<version> out;
  for (auto& v : a)
    if (is_share(v.kind))
      out.push_back(v);
  for (auto& v : b) {
    if (!is_share(v.kind))
      continue;
    if (auto* s = find_share(out, v.kind, v.field, v.id.origin)) {
      auto sh = read_share(v);
      join_increment(*s, v.id.counter, sh.total, v.time);
      join_removal(*s, sh.removed_upto, sh.removed);
    } else {
      out.push_back(v);
    }
  }
  return out;
}

std::optional<std::vector<version>>
with_merge(const std::vector<version>& vs, const std::vector<version>& inputs, std::string value) {
  if (inputs.size() < 2 || register_dots(vs) != register_dots(inputs))
    return std::nullopt;
  std::vector<version> out;
  for (auto& v : vs)
    if (v.kind != value_kind::merged)
      out.push_back(v);
  version m;
  m.kind = value_kind::merged;
  m.value = std::move(value);
  for (auto& v : inputs) {
    m.id = std::max(m.id, v.id);
    m.time = std::max(m.time, v.time);
  }
  out.push_back(std::move(m));
  std::sort(out.begin(), out.end(), by_identity);
  return out;
}

// A merged value stands for exactly the register versions it was computed from: when they
// change, it goes, and the resolver is asked again if several remain.
bool drop_stale_merge(const std::vector<version>& before, std::vector<version>& after) {
  auto is_merged = [](const version& v) { return v.kind == value_kind::merged; };
  if (std::none_of(after.begin(), after.end(), is_merged) ||
      register_dots(before) == register_dots(after))
    return false;
  after.erase(std::remove_if(after.begin(), after.end(), is_merged), after.end());
  return true;
}

bool needs_resolver(const std::vector<version>& vs) {
  return registers(vs).size() > 1 && !merged(vs);
}

const version* merged(const std::vector<version>& vs) {
  for (auto& v : vs)
    if (v.kind == value_kind::merged)
      return &v;
  return nullptr;
}

std::vector<version> shown_registers(const std::vector<version>& vs) {
  std::vector<version> out;
  if (auto* m = merged(vs)) {
    out.push_back(version{m->id, m->time, false, m->value, value_kind::reg, {}});
    return out;
  }
  for (auto& v : vs)
    if (v.kind == value_kind::reg && !v.tombstone)
      out.push_back(v);
  return out;
}

std::vector<version> registers(const std::vector<version>& vs) {
  std::vector<version> out;
  for (auto& v : vs)
    if (v.kind == value_kind::reg)
      out.push_back(v);
  return out;
}

} // namespace mlr::core::typed
