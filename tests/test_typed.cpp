// Typed keys on the CAF-free replica (core/typed.hpp): counters sum, a delete removes what
// it saw, sets are add-wins, map fields merge one by one, WRONGTYPE; then random concurrent
// operations at three nodes, with partitions, duplicates, reordering and empty restarts,
// checked against a sequential specification computed from each operation's causal past.

#include "core/typed.hpp"
#include "replica_mesh.hpp"
#include "storage/serialize.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <set>

using namespace mlr;
using namespace mlr::core;
using namespace mlr::testing;
using messages::dot;
using messages::op_kind;

namespace {

write_request op(op_kind k, const std::string& key, const std::string& field = {},
                 const std::string& value = {}, int64_t delta = 0) {
  write_request w;
  w.key = key;
  w.op = k;
  w.field = field;
  w.value = value;
  w.delta = delta;
  return w;
}
write_request incr(const std::string& key, int64_t d) {
  return op(op_kind::incr, key, {}, {}, d);
}
write_request sadd(const std::string& key, const std::string& e) {
  return op(op_kind::sadd, key, e);
}
write_request srem(const std::string& key, const std::string& e) {
  return op(op_kind::srem, key, e);
}
write_request del(const std::string& key) {
  return op(op_kind::del, key);
}

int64_t counter(replica& r, const std::string& key) {
  return typed::counter_value(r.versions(key));
}

void ship_all(mesh& m) {
  for (messages::node_index a = 0; a < m.size; ++a)
    for (messages::node_index b = 0; b < m.size; ++b)
      if (a != b)
        m.ship(a, b);
}

} // namespace

TEST_CASE("counter: increments at every node sum, and a duplicate batch counts once") {
  mesh m(3);
  m[0].write(incr("c", 5), m.now);
  m[1].write(incr("c", 7), m.now);
  m[2].write(incr("c", -2), m.now);
  m[0].write(incr("c", 1), m.now);
  auto got = m[0].fetch(1, 0, 100, 100);
  ship_all(m);
  m[1].receive(got.batch, m.now); // the same events again
  for (size_t i = 0; i < 3; ++i) {
    CHECK(counter(m[i], "c") == 11);
    CHECK(typed::type_of(m[i].versions("c")) == typed::key_type::counter);
  }
}

TEST_CASE("counter: a delete removes the increments it saw, concurrent ones survive") {
  mesh m(2);
  m[0].write(incr("c", 5), m.now);
  ship_all(m);
  m[1].write(del("c"), m.now);     // saw 5
  m[0].write(incr("c", 3), m.now); // concurrent with the delete
  CHECK(counter(m[1], "c") == 0);
  CHECK(typed::type_of(m[1].versions("c")) == typed::key_type::none);
  ship_all(m);
  CHECK(counter(m[0], "c") == 3);
  CHECK(counter(m[1], "c") == 3);
  CHECK(m[0].versions("c") == m[1].versions("c"));
  // Two concurrent deletes that saw the same increments take them away once.
  m[0].write(del("c"), m.now);
  m[1].write(del("c"), m.now);
  m[1].write(incr("c", 4), m.now);
  ship_all(m);
  CHECK(counter(m[0], "c") == 4);
  CHECK(counter(m[1], "c") == 4);
}

TEST_CASE("set: add wins over a concurrent remove, a remove takes what it saw") {
  mesh m(2);
  m[0].write(sadd("s", "x"), m.now);
  m[0].write(sadd("s", "y"), m.now);
  ship_all(m);
  m[0].write(srem("s", "x"), m.now); // saw x's tag
  m[1].write(sadd("s", "x"), m.now); // a new tag, concurrent
  m[1].write(srem("s", "y"), m.now);
  ship_all(m);
  for (size_t i = 0; i < 2; ++i)
    CHECK(typed::set_members(m[i].versions("s")) == std::vector<std::string>{"x"});
  m[0].write(srem("s", "x"), m.now); // now it saw both tags
  ship_all(m);
  CHECK(typed::set_members(m[1].versions("s")).empty());
  CHECK(m[1].versions("s").empty()); // nothing is kept for removed elements
}

TEST_CASE("map: fields written at two nodes both survive, counter fields sum") {
  mesh m(2);
  m[0].write(op(op_kind::hset, "h", "title", "standup"), m.now);
  ship_all(m);
  m[0].write(op(op_kind::hset, "h", "start", "9:00"), m.now);
  m[1].write(op(op_kind::hset, "h", "room", "4.01"), m.now);
  m[0].write(op(op_kind::hincr, "h", "likes", {}, 2), m.now);
  m[1].write(op(op_kind::hincr, "h", "likes", {}, 3), m.now);
  m[1].write(op(op_kind::hdel, "h", "title"), m.now);
  m[0].write(op(op_kind::hset, "h", "title", "retro"), m.now); // concurrent with the hdel
  ship_all(m);
  std::vector<std::pair<std::string, std::string>> want{
    {"likes", "5"}, {"room", "4.01"}, {"start", "9:00"}, {"title", "retro"}};
  CHECK(typed::hash_fields(m[0].versions("h")) == want);
  CHECK(typed::hash_fields(m[1].versions("h")) == want);
}

TEST_CASE("types: a write of another type is refused, SET and DEL work on every type") {
  mesh m(2);
  m[0].write(sadd("k", "x"), m.now);
  auto refused = typed::prepare(m[0].versions("k"), incr("k", 1), m[0].self()).refused;
  CHECK(refused.rfind("WRONGTYPE", 0) == 0);
  m[0].write(put("k", "plain"), m.now);
  CHECK(typed::type_of(m[0].versions("k")) == typed::key_type::string);
  CHECK(typed::string_value(m[0].versions("k")) == std::optional<std::string>("plain"));
  CHECK(typed::set_members(m[0].versions("k")).empty());
  m[0].write(del("k"), m.now);
  m[0].write(incr("k", 2), m.now);
  CHECK(counter(m[0], "k") == 2);
  CHECK(typed::prepare(m[0].versions("k"), incr("k", INT64_MAX), m[0].self()).refused ==
        "ERR increment or decrement would overflow");
}

TEST_CASE("types: concurrent writes of different types end with the later one everywhere") {
  mesh m(2);
  m[0].write(incr("k", 1), m.now);
  m.now += 10;
  m[1].write(sadd("k", "x"), m.now); // later
  ship_all(m);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(typed::type_of(m[i].versions("k")) == typed::key_type::set);
    CHECK(typed::set_members(m[i].versions("k")) == std::vector<std::string>{"x"});
  }
  CHECK(m[0].versions("k") == m[1].versions("k"));
  m[0].write(sadd("k", "y"), m.now); // the next write removes the counter it saw
  ship_all(m);
  CHECK(counter(m[1], "k") == 0);
  CHECK(typed::set_members(m[1].versions("k")) == std::vector<std::string>{"x", "y"});
}

TEST_CASE("typed state survives the store (log and key state round trip)") {
  mesh m(2);
  m[0].write(incr("c", 9), m.now);
  m[0].write(sadd("s", "x"), m.now);
  m[0].write(op(op_kind::hset, "h", "f", "v"), m.now);
  m[0].write(del("c"), m.now);
  auto& st = m[0].store();
  for (auto pos = st.log_begin(); pos < st.log_end(); ++pos) {
    auto back = storage::deserialize_log_entry(storage::serialize(*st.read(pos)));
    REQUIRE(back);
    CHECK(back->ev.op == st.read(pos)->ev.op);
    CHECK(back->ev.field == st.read(pos)->ev.field);
    CHECK(back->ev.total == st.read(pos)->ev.total);
    CHECK(back->ev.removed == st.read(pos)->ev.removed);
  }
  for (auto key : {"c", "s", "h"}) {
    auto back = storage::deserialize_versions(storage::serialize(m[0].versions(key)));
    REQUIRE(back);
    CHECK(*back == m[0].versions(key));
  }
}

namespace {

// One operation as issued, with what its origin had applied before it: the causal past
// that the specification reads.
struct issued {
  write_request w;
  dot id;
  messages::version_vector past;
  messages::hlc time;
};

bool observed(const issued& later, const issued& earlier) {
  return later.past.covers(earlier.id);
}

// Every key's expected value from the history alone.
struct spec {
  std::vector<issued> ops;

  int64_t counter(const std::string& key) const {
    int64_t sum = 0;
    for (auto& a : ops)
      if (a.w.key == key && a.w.op == op_kind::incr &&
          !removed(a, [](const issued& r) { return r.w.op == op_kind::del; }))
        sum += a.w.delta;
    return sum;
  }
  std::vector<std::string> members(const std::string& key) const {
    std::set<std::string> out;
    for (auto& a : ops)
      if (a.w.key == key && a.w.op == op_kind::sadd && !removed(a, [&](const issued& r) {
            return r.w.op == op_kind::del || (r.w.op == op_kind::srem && r.w.field == a.w.field);
          }))
        out.insert(a.w.field);
    return {out.begin(), out.end()};
  }
  std::vector<std::pair<std::string, std::string>> fields(const std::string& key) const {
    std::map<std::string, const issued*> regs;
    std::map<std::string, int64_t> counts;
    std::set<std::string> counted;
    // A field's value is replaced by any later write of the field that saw it, except
    // that increments add to a counter field.
    auto same_field = [](const issued& a) {
      return [&a](const issued& r) {
        if (r.w.op == op_kind::del)
          return true;
        if (r.w.field != a.w.field)
          return false;
        return !(a.w.op == op_kind::hincr && r.w.op == op_kind::hincr);
      };
    };
    for (auto& a : ops) {
      if (a.w.key != key || removed(a, same_field(a)))
        continue;
      if (a.w.op == op_kind::hset) {
        auto& best = regs[a.w.field];
        if (!best || std::make_pair(best->time, best->id) < std::make_pair(a.time, a.id))
          best = &a;
      } else if (a.w.op == op_kind::hincr) {
        counts[a.w.field] += a.w.delta;
        counted.insert(a.w.field);
      }
    }
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& [f, a] : regs)
      out.emplace_back(f, a->w.value);
    for (auto& f : counted)
      out.emplace_back(f, std::to_string(counts[f]));
    std::sort(out.begin(), out.end());
    return out;
  }

  // Some later operation on the same key, matching `touches`, saw `a`.
  template <class F> bool removed(const issued& a, F touches) const {
    for (auto& r : ops)
      if (&r != &a && r.w.key == a.w.key && observed(r, a) && touches(r))
        return true;
    return false;
  }
};

} // namespace

TEST_CASE("typed keys converge to the sequential specification under faults (2,000 seeds)") {
  for (uint32_t seed = 1; seed <= 2000; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
    mesh m(3, 5); // short logs: restarts catch up by state transfer too
    spec s;
    std::string elems[] = {"a", "b", "c"};
    std::string regs[] = {"f1", "f2"};
    std::string counters[] = {"n1", "n2"};
    for (int step = 0; step < 60; ++step) {
      m.now += 1 + pick(5);
      auto at = static_cast<messages::node_index>(pick(3));
      write_request w;
      switch (pick(9)) {
      case 0:
        w = incr("cnt", static_cast<int64_t>(pick(11)) - 5);
        break;
      case 1:
        w = del("cnt");
        break;
      case 2:
        w = sadd("set", elems[pick(3)]);
        break;
      case 3:
        w = srem("set", elems[pick(3)]);
        break;
      case 4:
        w = pick(4) == 0 ? del("set") : sadd("set", elems[pick(3)]);
        break;
      case 5:
        w = op(op_kind::hset, "map", regs[pick(2)], "v" + std::to_string(step));
        break;
      case 6:
        w = op(op_kind::hdel, "map", pick(2) ? regs[pick(2)] : counters[pick(2)]);
        break;
      case 7:
        w = op(op_kind::hincr, "map", counters[pick(2)], {}, static_cast<int64_t>(pick(7)) - 3);
        break;
      default: {
        // A fault: a partial, reordered or duplicated delivery, or an empty restart.
        auto from = static_cast<messages::node_index>(pick(3));
        auto to = static_cast<messages::node_index>((from + 1 + pick(2)) % 3);
        if (pick(3) == 0) {
          auto got = m[from].fetch(to, 0, 1000, 1000); // everything again, duplicates
          auto& evs = got.batch.events;
          std::shuffle(evs.begin(), evs.end(), rng); // reordered: the causal buffer waits
          m[to].receive(std::move(got.batch), m.now);
        } else if (pick(8) == 0) {
          m.settle(2); // what only this node holds would be lost with it
          m.restart_empty(from);
        } else {
          m.ship(from, to);
        }
        continue;
      }
      }
      if (!typed::prepare(m[at].versions(w.key), w, m[at].self()).refused.empty())
        continue;
      issued i{w, {}, m[at].applied(), {}};
      i.past.merge(m[at].retired()); // retired incarnations count as held
      i.id = m[at].write(w, m.now);
      for (auto& v : m[at].versions(w.key))
        if (v.id == i.id)
          i.time = v.time;
      s.ops.push_back(i);
    }
    m.settle(10);
    INFO("seed " << seed);
    auto show = [](const std::vector<std::pair<std::string, std::string>>& fs) {
      std::string out;
      for (auto& [f, v] : fs)
        out += f + "=" + v + " ";
      return out;
    };
    INFO("spec map: " << show(s.fields("map")));
    INFO("node 0 map: " << show(typed::hash_fields(m[0].versions("map"))));
    for (size_t n = 0; n < 3; ++n) {
      REQUIRE(typed::counter_value(m[n].versions("cnt")) == s.counter("cnt"));
      REQUIRE(typed::set_members(m[n].versions("set")) == s.members("set"));
      REQUIRE(typed::hash_fields(m[n].versions("map")) == s.fields("map"));
      for (auto key : {"cnt", "set", "map"})
        REQUIRE(m[n].versions(key) == m[0].versions(key));
    }
  }
}
