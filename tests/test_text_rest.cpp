// Text documents at rest (core/replica_text_snapshot.cpp): the snapshot record that replaces
// a document's stable operation records, a restart from it, a state transfer that carries
// it, and snapshot records no honest peer sends; and documents evicted from memory.

#include "../bench/editing_traces.hpp"
#include "core/text.hpp"
#include "replica_mesh.hpp"
#include "storage/serialize.hpp"
#include "storage/store.hpp"
#include "temp_dirs.hpp"
#include "trace_share.hpp"

#include <catch2/catch.hpp>

#include <map>

using namespace mlr;
using testing::mesh;

namespace {

core::write_request insert(uint64_t index, const std::string& text,
                           const std::string& key = "doc") {
  core::write_request w;
  w.key = key;
  w.op = messages::op_kind::text_insert;
  w.index = index;
  w.value = text;
  return w;
}

core::write_request erase(uint64_t index, uint64_t count) {
  core::write_request w;
  w.key = "doc";
  w.op = messages::op_kind::text_delete;
  w.index = index;
  w.count = count;
  return w;
}

std::string text_of(core::replica& r) {
  auto t = r.read_text("doc");
  return t ? t->text : "<not text>";
}

// What a replica keeps for its documents: the records below text_op_prefix, their bytes,
// and whether one is a snapshot record.
struct at_rest {
  size_t records = 0, bytes = 0, snapshots = 0;
};
at_rest rest_of(const storage::store& s) {
  at_rest out;
  s.for_each_prefix(core::text_op_prefix, [&](const std::string& k, auto& vs) {
    for (auto& v : vs) {
      out.bytes += k.size() + v.value.size();
      out.snapshots += v.kind == messages::value_kind::text_snap ? 1 : 0;
      out.records += v.kind == messages::value_kind::text_op ? 1 : 0;
    }
  });
  return out;
}

// A replica of node `self` over a copy of `from`'s key state, without its metadata: it
// holds no operation, so a rebuild replays no record and the document comes from the
// snapshot record alone.
std::unique_ptr<core::replica> over_copy(const storage::store& from, messages::node_index self,
                                         size_t nodes) {
  auto s = storage::make_memory_store();
  from.for_each([&](const std::string& k, auto& vs) { s->assign(k, vs); });
  core::replica_config cfg;
  cfg.self = self;
  cfg.incarnation = 999;
  cfg.forward_to.resize(nodes);
  return std::make_unique<core::replica>(cfg, std::move(s));
}

// Types `n` edits at nodes 0 and 1 of `m` in turn (inserts, and a delete every third).
void type_at_two(mesh& m, int n) {
  for (int i = 0; i < n; ++i) {
    auto& r = m[static_cast<size_t>(i % 2)];
    auto len = r.read_text("doc") ? r.read_text("doc")->length : 0;
    if (i % 3 == 2 && len > 4)
      r.write(erase(len / 2, 2), ++m.now);
    else
      r.write(insert(len / 3, std::string(1 + i % 3, static_cast<char>('a' + i % 26))), ++m.now);
    r.take_ready();
    if (i % 50 == 49)
      m.settle(1);
  }
  m.settle(4);
}

// What a snapshot record's value covers (its first vector).
messages::version_vector covers_of(const std::string& value) {
  uint64_t n = 0;
  for (int i = 0; i < 4; ++i)
    n = n << 8 | static_cast<unsigned char>(value[static_cast<size_t>(i)]);
  auto vv = storage::deserialize_version_vector(value.substr(4, n));
  REQUIRE(vv);
  return *vv;
}

// A snapshot record's value with its first vector (what it covers) replaced.
std::string with_covers(const std::string& value, const messages::version_vector& covers) {
  uint64_t n = 0;
  for (int i = 0; i < 4; ++i)
    n = n << 8 | static_cast<unsigned char>(value[static_cast<size_t>(i)]);
  auto bytes = storage::serialize(covers);
  std::string out;
  for (int i = 3; i >= 0; --i)
    out.push_back(static_cast<char>((bytes.size() >> (8 * i)) & 0xff));
  return out + bytes + value.substr(4 + n);
}

} // namespace

TEST_CASE("text at rest: after automerge-paper at three replicas each keeps a snapshot record "
          "and few operation records, and a replica loading that state holds endContent") {
  auto trace = testing::sanitized_share(testing::traces::load("automerge-paper"), 10);
  mesh m(3);
  size_t n = 0;
  for (auto& tx : trace.txns)
    for (auto& p : tx.patches) {
      if (p.deleted > 0)
        m[0].write(erase(p.position, p.deleted), ++m.now);
      if (!p.inserted.empty())
        m[0].write(insert(p.position, p.inserted), ++m.now);
      m[0].take_ready();
      if (++n % 2000 == 0)
        m.settle(1);
    }
  m.settle(4);
  for (size_t i = 0; i < 3; ++i) {
    INFO("replica " << i);
    CHECK(text_of(m[i]) == trace.end_content);
    auto rest = rest_of(m[i].store());
    WARN("replica " << i << ": " << rest.records << " operation records and " << rest.snapshots
                    << " snapshot record, " << rest.bytes << " bytes at rest for "
                    << m[i].read_text("doc")->length << " characters; "
                    << m[i].stats().text_records_dropped << " records dropped");
    CHECK(rest.snapshots == 1);
    CHECK(m[i].stats().text_snapshots > 0);
    // What is still kept: operations applied since the last snapshot, at most a few
    // thresholds' worth (the last ones are not stable when it is written).
    CHECK(rest.records <= 3 * 1024);
    CHECK(m[i].stats().text_records_dropped + rest.records >= n);
    auto copy = over_copy(m[i].store(), static_cast<messages::node_index>(i), 3);
    CHECK(text_of(*copy) == trace.end_content);
    CHECK(copy->stats().text_loaded == 1);
    CHECK(copy->stats().text_refused == 0);
  }
}

TEST_CASE("text at rest: a replica restarted from RocksDB after its snapshot record holds the "
          "same document, and what it typed after the snapshot survives the next restart") {
  auto dir = testing::temp_dirs::instance().make();
  core::replica_config cfg;
  cfg.self = 0;
  cfg.incarnation = 7;
  cfg.forward_to.resize(1);
  cfg.text_compact_after = 16;
  auto open = [&] { return testing::rocksdb_replica(dir, cfg); };
  auto commit = [](core::replica& r) {
    r.take_ready();
    REQUIRE(r.mutable_store().commit(true));
    r.committed(true);
  };
  std::u32string want;
  uint64_t now = 1000;
  auto r = open();
  for (int i = 0; i < 400; ++i) {
    if (i % 4 == 3) {
      r->write(erase(want.size() / 2, 3), ++now);
      want.erase(want.size() / 2, 3);
    } else {
      r->write(insert(want.size() / 3, "xé"), ++now);
      want.insert(want.size() / 3, U"xé");
    }
    if (i % 20 == 0)
      r->collect_garbage(now);
    commit(*r);
  }
  r->collect_garbage(now);
  commit(*r);
  CHECK(r->stats().text_snapshots > 0);
  CHECK(r->stats().text_records_dropped > 300);
  auto rest = rest_of(r->store());
  CHECK(rest.snapshots == 1);
  CHECK(rest.records < 100);
  r.reset();
  r = open();
  CHECK(text_of(*r) == core::text::to_utf8(want));
  // Typed after the snapshot: kept as records, replayed over the snapshot at the next start.
  r->write(insert(0, "after"), ++now);
  want.insert(0, U"after");
  commit(*r);
  r.reset();
  r = open();
  CHECK(text_of(*r) == core::text::to_utf8(want));
  CHECK(r->stats().text_refused == 0);
}

TEST_CASE("text at rest: a replica that restarted empty takes the snapshot record by state "
          "transfer (the sender dropped its stable records), and edits after it converge") {
  mesh m(3, /*retention*/ 50, /*chunk_keys*/ 64, /*text_compact_after*/ 32);
  type_at_two(m, 1200);
  auto before = text_of(m[0]);
  CHECK(m[0].stats().text_records_dropped > 500);
  m.restart_empty(2);
  m.settle(20);
  CHECK(m[2].stats().transfers_received >= 1);
  CHECK(text_of(m[2]) == before);
  CHECK(m[2].stats().text_refused == 0);
  CHECK(rest_of(m[2].store()).snapshots == 1);
  m[2].write(erase(0, 10), m.now);
  m[0].write(insert(5, "!"), m.now);
  m.settle(5);
  for (size_t i = 0; i < 3; ++i)
    CHECK(text_of(m[i]) == text_of(m[0]));
  CHECK(text_of(m[0]).size() == before.size() - 10 + 1);
}

TEST_CASE("text at rest: a state transfer's snapshot record that is damaged, names dropped "
          "records it does not cover, or covers more than the sender holds, is refused, the "
          "transfer abandoned, and an honest one later gives the document") {
  for (int damage = 0; damage < 3; ++damage) {
    mesh m(3, 50, 64, 32);
    type_at_two(m, 600);
    m.restart_empty(2);
    size_t tampered = 0;
    for (int k = 0; k < 300; ++k) {
      m.now += 100;
      m.gossip();
      auto plan = m[2].plan_pull(m.now, true);
      if (!plan)
        continue;
      auto answer = m.nodes[plan->holder]->serve_pull(plan->request, m.now);
      if (answer.chunk)
        for (auto& [key, vs] : answer.chunk->keys)
          for (auto& v : vs)
            if (v.kind == messages::value_kind::text_snap) {
              ++tampered;
              if (damage == 0)
                v.value.resize(v.value.size() / 2);
              else if (damage == 1) // covering nothing, yet naming the dropped records
                v.value = with_covers(v.value, messages::version_vector{});
              else { // claiming far more of node 0 than the chunk says the sender holds
                auto more = covers_of(v.value);
                more.advance(messages::dot{more.entries().front().first, 1ull << 60});
                v.value = with_covers(v.value, more);
              }
            }
      m[2].receive_pulled(std::move(answer), m.now);
    }
    INFO("damage " << damage);
    CHECK(tampered >= 2); // refused, abandoned, asked again
    CHECK(m[2].stats().text_refused >= tampered);
    CHECK(m[2].stats().transfers_received == 0);
    CHECK(rest_of(m[2].store()).snapshots == 0);
    // An honest transfer then gives it the document.
    m.settle(20);
    CHECK(m[2].stats().transfers_received >= 1);
    CHECK(text_of(m[2]) == text_of(m[0]));
    CHECK(rest_of(m[2].store()).snapshots == 1);
  }
}

TEST_CASE("text in memory: documents beyond the bound are evicted at garbage collection, least "
          "recently used first, and read back whole from the store") {
  core::replica_config cfg;
  cfg.self = 0;
  cfg.incarnation = 3;
  cfg.forward_to.resize(1);
  cfg.text_compact_after = 8;
  cfg.text_loaded_items = 3 * 64; // three small documents
  core::replica r(cfg, storage::make_memory_store());
  uint64_t now = 1000;
  std::map<std::string, std::string> want;
  for (int round = 0; round < 20; ++round)
    for (int d = 0; d < 10; ++d) {
      auto key = "d" + std::to_string(d);
      r.write(insert(0, std::to_string(round % 10), key), ++now);
      want[key].insert(0, std::to_string(round % 10));
      r.take_ready();
      if (d == 9)
        r.collect_garbage(now);
    }
  r.collect_garbage(now);
  CHECK(r.loaded_texts() <= 3);
  CHECK(r.stats().text_evicted >= 7);
  CHECK(r.stats().text_snapshots > 0);
  for (auto& [key, text] : want) {
    auto got = r.read_text(key);
    REQUIRE(got);
    CHECK(got->text == text);
  }
  CHECK(r.loaded_texts() == 10); // until the next collection
  r.read_text("d3");             // used last: it stays, and is not rebuilt at the next read
  r.collect_garbage(now);
  CHECK(r.loaded_texts() <= 3);
  auto loaded = r.stats().text_loaded;
  CHECK(r.read_text("d3")->text == want["d3"]);
  CHECK(r.stats().text_loaded == loaded);
  CHECK(r.read_text("d0")->text == want["d0"]);
  CHECK(r.stats().text_loaded == loaded + 1);
  // One document over the bound by itself, used last: it stays, the others go.
  std::string big;
  for (int i = 0; i < 250; ++i) { // each at the front: an item of its own
    r.write(insert(0, i % 2 ? "a" : "b", "big"), ++now);
    big.insert(0, i % 2 ? "a" : "b");
  }
  r.take_ready();
  r.collect_garbage(now);
  CHECK(r.loaded_texts() == 1);
  loaded = r.stats().text_loaded;
  CHECK(r.read_text("big")->text == big);
  CHECK(r.stats().text_loaded == loaded);
}
