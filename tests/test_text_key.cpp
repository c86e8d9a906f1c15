// Text keys in the replica (core/replica_text.cpp): the editing traces through replicas
// that ship their logs to each other, state transfer, restarts from RocksDB, and writes of
// other types over a text key. The CRDT itself is tested in test_text.cpp.

#include "../bench/editing_traces.hpp"
#include "core/text.hpp"
#include "replica_mesh.hpp"
#include "storage/store.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <random>

#include <unistd.h>

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
  auto trace = testing::traces::load("automerge-paper");
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
  CHECK(n == 259778);
  for (size_t i = 0; i < 3; ++i)
    CHECK(text_at(m[i], "doc") == trace.end_content);
  CHECK(core::text::to_utf8(copy.doc) == trace.end_content);
  CHECK(m[0].stats().text_refused == 0);
  CHECK(m[1].stats().text_refused == 0);
}

TEST_CASE("text key: automerge-paper split round-robin across three replicas, each applying its "
          "share once it has received the edits before, gives endContent everywhere") {
  auto trace = testing::traces::load("automerge-paper");
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
  for (unsigned seed = 1; seed <= 3; ++seed) {
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
  auto dir =
    std::filesystem::temp_directory_path() / ("mlr-text-key-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  struct cleanup {
    std::filesystem::path p;
    ~cleanup() { std::filesystem::remove_all(p); }
  } gone{dir};
  core::replica_config cfg;
  cfg.self = 0;
  cfg.incarnation = 7;
  cfg.forward_to.resize(1);
  auto open = [&] {
    auto s = storage::open_rocksdb_store(dir.string());
    REQUIRE(s);
    return std::make_unique<core::replica>(cfg, std::move(*s));
  };
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
