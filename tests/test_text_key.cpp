// Text keys in the replica (core/replica_text.cpp): the editing traces through replicas
// that ship their logs to each other, state transfer, restarts from RocksDB, and writes of
// other types over a text key. The CRDT itself is tested in test_text.cpp.

#include "../bench/editing_traces.hpp"
#include "core/text.hpp"
#include "messages/codec.hpp"
#include "messages/detail/capnp_io.hpp"
#include "messages/mlr.capnp.h"
#include "replica_mesh.hpp"
#include "storage/serialize.hpp"
#include "storage/store.hpp"
#include "temp_dirs.hpp"
#include "trace_share.hpp"

#include <catch2/catch.hpp>

#include <random>

using namespace mlr;
using testing::mesh;

namespace {

core::write_request insert(const std::string& key, uint64_t index, const std::string& text) {
  core::write_request w;
  w.key = key;
  w.op = messages::op_kind::text_insert;
  w.index = index;
  w.value = text;
  return w;
}

core::write_request erase(const std::string& key, uint64_t index, uint64_t count) {
  core::write_request w;
  w.key = key;
  w.op = messages::op_kind::text_delete;
  w.index = index;
  w.count = count;
  return w;
}

// An editor's view: the dots of the operations it had seen (one per origin, the highest).
core::write_request at(core::write_request w, const messages::version_vector& seen) {
  w.has_context = true;
  for (auto& [origin, counter] : seen.entries())
    w.context.push_back(messages::dot{origin, counter});
  return w;
}

std::string text_at(core::replica& r, const std::string& key) {
  auto t = r.read_text(key);
  return t ? t->text : "<not text>";
}

// Applies a trace patch at replica `r` (its position in the document `seen` shows, when
// given): the delete, then the insert, as the traces mean them.
void apply_patch(core::replica& r, const testing::traces::patch& p, uint64_t now,
                 const messages::version_vector* seen = nullptr) {
  if (p.deleted > 0) {
    auto w = erase("doc", p.position, p.deleted);
    r.write(seen ? at(w, *seen) : w, now);
  }
  if (!p.inserted.empty()) {
    auto w = insert("doc", p.position, p.inserted);
    r.write(seen ? at(w, *seen) : w, now);
  }
  r.take_ready();
}

// Keeps a copy of the document from the edits a replica reports, as an editor would.
struct mirror {
  std::u32string doc;
  void take(core::replica& r) {
    for (auto& c : r.take_ready().changes)
      for (auto& e : c.edits) {
        if (e.insert)
          doc.insert(e.index, *core::text::from_utf8(e.text));
        else
          doc.erase(e.index, e.count);
      }
  }
};

} // namespace

TEST_CASE("text key: automerge-paper applied at one replica of three, shipped as it goes, gives "
          "endContent at every replica and in a copy kept from one replica's edits") {
  auto trace = testing::sanitized_share(testing::traces::load("automerge-paper"), 10);
  mesh m(3);
  m[1].report_changes(true);
  mirror copy;
  size_t n = 0;
  for (auto& tx : trace.txns)
    for (auto& p : tx.patches) {
      apply_patch(m[0], p, m.now);
      if (++n % 5000 == 0) {
        m.ship(0, 1);
        copy.take(m[1]);
      }
    }
  m.settle(3);
  copy.take(m[1]);
  CHECK(n >= 259778 / 10);
  for (size_t i = 0; i < 3; ++i)
    CHECK(text_at(m[i], "doc") == trace.end_content);
  CHECK(core::text::to_utf8(copy.doc) == trace.end_content);
  CHECK(m[0].stats().text_refused == 0);
  CHECK(m[1].stats().text_refused == 0);
  // Once every replica held the deletes, each forgot their deleters (stability, as
  // collect_garbage found it). Editing goes on: at two replicas, without hearing each
  // other, then heard.
  for (size_t i = 0; i < 3; ++i)
    CHECK(m[i].stats().text_tombstones_collected > 0);
  auto want = *core::text::from_utf8(trace.end_content);
  m[2].write(erase("doc", 100, 10), ++m.now);
  m[1].write(insert("doc", 50, "mlr"), ++m.now);
  m[2].write(insert("doc", 100, "collected"), ++m.now);
  want.erase(100, 10);
  want.insert(100, U"collected");
  want.insert(50, U"mlr");
  m.settle(3);
  for (size_t i = 0; i < 3; ++i)
    CHECK(text_at(m[i], "doc") == core::text::to_utf8(want));
}

TEST_CASE("text key: automerge-paper split round-robin across three replicas, each applying its "
          "share once it has received the edits before, gives endContent everywhere") {
  auto trace = testing::sanitized_share(testing::traces::load("automerge-paper"), 10);
  mesh m(3);
  size_t n = 0;
  for (auto& tx : trace.txns)
    for (auto& p : tx.patches) {
      auto k = static_cast<messages::node_index>(n++ % 3);
      for (messages::node_index from = 0; from < 3; ++from)
        if (from != k)
          m.ship(from, k);
      apply_patch(m[k], p, m.now);
    }
  m.settle(3);
  for (size_t i = 0; i < 3; ++i)
    CHECK(text_at(m[i], "doc") == trace.end_content);
}

TEST_CASE("text key: friendsforever by its two agents at two replicas, each transaction once its "
          "parents arrived, at the version they make, gives endContent there and at a third") {
  auto trace = testing::traces::load("friendsforever");
  REQUIRE(trace.agents == 2);
#ifdef MLR_SANITIZED
  const unsigned seeds = 1; // (the Release run does all three)
#else
  const unsigned seeds = 3;
#endif
  for (unsigned seed = 1; seed <= seeds; ++seed) {
    INFO("seed " << seed);
    std::mt19937 rng(seed);
    mesh m(3);
    std::vector<messages::version_vector> made(trace.txns.size()); // what each txn saw and did
    for (size_t t = 0; t < trace.txns.size(); ++t) {
      auto& tx = trace.txns[t];
      auto a = static_cast<messages::node_index>(tx.agent);
      auto other = static_cast<messages::node_index>(1 - a);
      messages::version_vector v;
      for (auto p : tx.parents)
        v.merge(made.at(p));
      if (!m[a].applied().covers(v) || rng() % 3 == 0)
        m.ship(other, a); // the parents arrive, and perhaps more the agent had not seen
      REQUIRE(m[a].applied().covers(v));
      for (auto& p : tx.patches) {
        apply_patch(m[a], p, m.now, &v);
        v.advance(messages::dot{m[a].self(), m[a].applied().get(m[a].self())});
      }
      made[t] = v;
    }
    m.settle(3);
    for (size_t i = 0; i < 3; ++i)
      CHECK(text_at(m[i], "doc") == trace.end_content);
  }
}

TEST_CASE("text key: a replica restarted from its RocksDB directory, and one filled by state "
          "transfer, hold the same document, and a delete of the key removes what it saw") {
  auto dir = testing::temp_dirs::instance().make();
  core::replica_config cfg;
  cfg.self = 0;
  cfg.incarnation = 7;
  cfg.forward_to.resize(1);
  auto open = [&] { return testing::rocksdb_replica(dir, cfg); };
  std::string expect;
  {
    auto r = open();
    r->write(insert("doc", 0, "héllo wörld"), 1000);
    r->write(erase("doc", 5, 1), 1001);
    r->write(insert("doc", 5, ", dear "), 1002);
    r->write(insert("other", 0, "x"), 1003);
    expect = text_at(*r, "doc");
    CHECK(expect == "héllo, dear wörld");
    auto ready = r->take_ready();
    REQUIRE(r->mutable_store().commit(true));
    r->committed(true);
  }
  auto r = open();
  CHECK(text_at(*r, "doc") == expect);
  CHECK(r->stats().text_loaded == 1);
  CHECK(text_at(*r, "other") == "x");

  // A delete of the key takes away what it saw; what is typed later starts afresh, here and
  // after a restart.
  core::write_request del;
  del.key = "doc";
  del.op = messages::op_kind::del;
  r->write(del, 2000);
  CHECK_FALSE(r->read_text("doc"));
  r->write(insert("doc", 0, "new"), 2001);
  CHECK(text_at(*r, "doc") == "new");
  r->take_ready();
  REQUIRE(r->mutable_store().commit(true));
  r.reset();
  r = open();
  CHECK(text_at(*r, "doc") == "new");
}

TEST_CASE("text key: a replica that restarted empty gets the documents by state transfer, and "
          "edits made there later converge") {
  mesh m(3, /*retention*/ 50, /*chunk_keys*/ 64);
  for (int i = 0; i < 300; ++i)
    m[i % 2].write(insert("doc", static_cast<uint64_t>(i), std::string(1, char('a' + i % 26))),
                   m.now);
  m.settle(5);
  auto before = text_at(m[0], "doc");
  CHECK(before.size() == 300);
  m.restart_empty(2);
  m.settle(20);
  CHECK(m[2].stats().transfers_received >= 1);
  CHECK(text_at(m[2], "doc") == before);
  m[2].write(erase("doc", 0, 10), m.now);
  m[0].write(insert("doc", 300, "!"), m.now);
  m.settle(5);
  for (size_t i = 0; i < 3; ++i)
    CHECK(text_at(m[i], "doc") == before.substr(10) + "!");
}

TEST_CASE("text key: text operations survive the wire codec and the log record, and the decoder "
          "refuses ranges and ids no honest node sends") {
  messages::source a{0, 5}, b{1, 9};
  messages::event ins;
  ins.id = messages::dot{a, 3};
  ins.key = "doc";
  ins.op = messages::op_kind::text_insert;
  ins.value = "h\xc3\xa9";
  auto t = std::make_shared<messages::text_payload>();
  t->first_seq = 7;
  t->left = messages::text_ref{b, 2};
  t->right = messages::text_ref{a, 6};
  ins.text = t;
  messages::event del = ins;
  del.id.counter = 4;
  del.op = messages::op_kind::text_delete;
  del.value.clear();
  auto r = std::make_shared<messages::text_payload>();
  r->ranges = {messages::text_range{b, 1, 2}, messages::text_range{a, 0, 5}};
  del.text = r;
  messages::event_batch batch;
  batch.events = {ins, del};
  auto back = messages::decode_batch(messages::encode(batch));
  REQUIRE(back);
  REQUIRE(back->events.size() == 2);
  CHECK(back->events[0].op == messages::op_kind::text_insert);
  CHECK(back->events[0].value == ins.value);
  REQUIRE(back->events[0].text);
  CHECK(*back->events[0].text == *t);
  REQUIRE(back->events[1].text);
  CHECK(*back->events[1].text == *r);
  for (auto& e : {ins, del}) {
    storage::log_entry entry;
    entry.ev = e;
    auto again = storage::deserialize_log_entry(storage::serialize(entry));
    REQUIRE(again);
    REQUIRE(again->ev.text);
    CHECK(*again->ev.text == *e.text);
    CHECK(again->ev.op == e.op);
  }

  // Built by hand, below the encoder: each is refused with what is wrong.
  auto refused = [](auto fill) {
    capnp::MallocMessageBuilder msg;
    auto root = msg.initRoot<mlr::wire::EventBatch>();
    auto sources = root.initSources(1);
    sources[0].setNode(0);
    sources[0].setIncarnation(5);
    auto ev = root.initEvents(1)[0];
    ev.setSource(0);
    ev.setCounter(3);
    fill(ev);
    auto out = messages::decode_batch(messages::detail::to_frame(msg));
    REQUIRE_FALSE(out);
    return out.err().message;
  };
  CHECK(refused([](auto ev) { ev.initTextDelete(1)[0].setSource(0); }).find("length 0") !=
        std::string::npos);
  CHECK(refused([](auto ev) {
          auto x = ev.initTextDelete(1)[0];
          x.setSource(1);
          x.setLen(1);
        }).find("source 1") != std::string::npos);
  CHECK(refused([](auto ev) {
          auto x = ev.initTextDelete(1)[0];
          x.setSeq(uint64_t{1} << 48);
          x.setLen(1);
        }).find("seq 281474976710656") != std::string::npos);
  CHECK(refused([](auto ev) {
          auto x = ev.initTextInsert();
          x.setText(messages::detail::as_bytes("a"));
          x.initLeft().setSource(4);
        }).find("refers to source 4 but the table has 1") != std::string::npos);
  CHECK(refused([](auto ev) {
          auto x = ev.initTextInsert();
          x.setFirstSeq(uint64_t{1} << 60);
        }).find("starts at seq") != std::string::npos);
}

TEST_CASE("text key: an operation no honest peer sends (an unknown left, text that is not UTF-8, "
          "overlapping ranges) "
          "is applied as a no-op everywhere, counted, and the document goes on") {
  mesh m(2);
  m[0].write(insert("doc", 0, "abc"), m.now);
  m.ship(0, 1);
  auto forged = [&](uint64_t counter, std::string value, std::optional<messages::text_ref> left) {
    messages::event e;
    e.id = messages::dot{messages::source{0, 99}, counter};
    e.key = "doc";
    e.op = messages::op_kind::text_insert;
    e.value = std::move(value);
    auto t = std::make_shared<messages::text_payload>();
    t->left = left;
    e.text = t;
    return e;
  };
  messages::event_batch b;
  b.sender = 0;
  auto overlapping = forged(3, "", std::nullopt); // two ranges over one character
  overlapping.op = messages::op_kind::text_delete;
  auto ranges = std::make_shared<messages::text_payload>();
  auto first = m[0].self();
  ranges->ranges = {messages::text_range{first, 0, 2}, messages::text_range{first, 1, 1}};
  overlapping.text = ranges;
  b.events = {forged(1, "x", messages::text_ref{messages::source{0, 42}, 0}),
              forged(2, "\xff", std::nullopt), overlapping};
  m[1].receive(b, m.now);
  CHECK(m[1].stats().text_refused == 3);
  CHECK(text_at(m[1], "doc") == "abc");
  m[1].write(insert("doc", 3, "d"), m.now);
  m.settle(3);
  CHECK(text_at(m[0], "doc") == "abcd");
  CHECK(text_at(m[1], "doc") == "abcd");
  CHECK(m[0].stats().text_refused == 3); // it pulled them from node 1: refused the same way
}

TEST_CASE("text key: a restart replays the operations in a causal order even when a clock ran "
          "ahead and the key was deleted in between") {
  auto dir = testing::temp_dirs::instance().make();
  auto config = [](messages::node_index self, uint64_t incarnation) {
    core::replica_config cfg;
    cfg.self = self;
    cfg.incarnation = incarnation;
    cfg.forward_to.resize(2);
    cfg.forward_to[self].push_back(1 - self);
    return cfg;
  };
  auto open_b = [&] { return testing::rocksdb_replica(dir, config(1, 8)); };
  uint64_t now = 10'000'000;
  core::replica p(config(0, 7), storage::make_memory_store());
  p.write(insert("doc", 0, "abc"), now + 600'000); // its clock runs 10 minutes ahead
  auto b = open_b();
  auto got = p.fetch(1, 0, 100, 100);
  b->receive(std::move(got.batch), now); // b's clock follows it only so far
  core::write_request del;
  del.key = "doc";
  del.op = messages::op_kind::del;
  b->write(del, now + 1);
  // Typed before the first character, now a tombstone, but stamped earlier than its insert.
  b->write(insert("doc", 0, "new"), now + 2);
  CHECK(text_at(*b, "doc") == "new");
  b->take_ready();
  REQUIRE(b->mutable_store().commit(true));
  b.reset();
  b = open_b();
  CHECK(text_at(*b, "doc") == "new");
  CHECK(b->stats().text_refused == 0);
  b->write(insert("doc", 3, "er"), now + 3);
  CHECK(text_at(*b, "doc") == "newer");
}
