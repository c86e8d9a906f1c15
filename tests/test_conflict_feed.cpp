// The conflict feed in the core (DESIGN.md, "Convergent data types"): every outcome the
// shell reports (a selection, a merge, a failure) is a record with the inputs whole, the
// resolver's name and the time, numbered from 1, paged by sequence number, kept in the
// store across a reopen, and trimmed to its count and byte bounds, oldest first.

#include "core/replica.hpp"
#include "storage/store.hpp"

#include <filesystem>

#include <catch2/catch.hpp>

using namespace mlr;
using namespace mlr::core;

namespace {

replica_config feed_config(messages::node_index self, size_t records = 10000,
                           size_t bytes = 64u << 20) {
  replica_config cfg;
  cfg.self = self;
  cfg.incarnation = 100 + self;
  cfg.forward_to.resize(2);
  cfg.forward_to[self].push_back(1 - self);
  cfg.conflict_feed_records = records;
  cfg.conflict_feed_bytes = bytes;
  return cfg;
}

write_request put(const std::string& k, const std::string& v) {
  return write_request{k, messages::op_kind::put, v, false, {}};
}

// A conflict at `a`: both nodes write `key` concurrently and `a` receives b's version.
conflict meet(replica& a, replica& b, const std::string& key, const std::string& va,
              const std::string& vb, uint64_t now) {
  a.write(put(key, va), now);
  b.write(put(key, vb), now + 1);
  a.receive(b.fetch(a.self().node, 0, 1u << 20, 64u << 20).batch, now + 2);
  auto ready = a.take_ready();
  REQUIRE(ready.conflicts.size() == 1);
  return ready.conflicts.front();
}

std::vector<uint64_t> seqs(const std::vector<conflict_record>& rs) {
  std::vector<uint64_t> out;
  for (auto& r : rs)
    out.push_back(r.seq);
  return out;
}

} // namespace

TEST_CASE("conflict feed: each outcome is a numbered record with its inputs whole, the resolver "
          "and the time, paged by sequence number and kept across a reopen (RocksDB)") {
  auto dir = std::string("test_conflict_feed.db");
  std::filesystem::remove_all(dir);
  {
    auto store = storage::open_rocksdb_store(dir);
    REQUIRE(store);
    replica a(feed_config(0), std::move(*store));
    replica b(feed_config(1), storage::make_memory_store());
    auto c1 = meet(a, b, "colour", "red", "blue", 1000);
    auto c2 = meet(a, b, "tags", "x", "y", 2000);
    auto c3 = meet(a, b, "broken", "p", "q", 3000);
    a.resolve(c1, {c1.versions[1].id}, decided_by{"lww", 1700000000123});
    a.merge(c2, "x,y", decided_by{"tags", 1700000000456});
    a.unresolved(c3, "resolver failed: timeout", decided_by{"max", 1700000000789});
    CHECK(a.take_ready().commit); // the records go with the outcomes' commit
    REQUIRE(a.mutable_store().commit(true));

    auto all = a.conflicts(0, 10);
    REQUIRE(seqs(all) == std::vector<uint64_t>{1, 2, 3});
    CHECK(all[0].key == "colour");
    CHECK(all[0].resolver == "lww");
    CHECK(all[0].at_ms == 1700000000123);
    CHECK(all[0].versions == c1.versions); // whole: dots, clocks and values
    CHECK(all[0].versions.size() == 2);
    CHECK(all[0].kept == std::vector<messages::dot>{c1.versions[1].id});
    CHECK(std::string(all[0].outcome()) == "selected");
    CHECK(std::string(all[1].outcome()) == "merged");
    CHECK(all[1].value == "x,y");
    CHECK(all[1].kept == all[1].inputs());
    CHECK(std::string(all[2].outcome()) == "unresolved");
    CHECK(all[2].reason == "resolver failed: timeout");
    CHECK(all[2].kept.size() == 2);
    CHECK(seqs(a.conflicts(1, 1)) == std::vector<uint64_t>{2});
    CHECK(seqs(a.conflicts(2, 10)) == std::vector<uint64_t>{3});
    CHECK(a.conflicts(3, 10).empty());
    CHECK(a.conflicts(UINT64_MAX, 10).empty()); // a client may send any number
    CHECK(a.conflicts(0, 0).empty());
  }
  {
    auto store = storage::open_rocksdb_store(dir);
    REQUIRE(store);
    replica a(feed_config(0), std::move(*store));
    auto all = a.conflicts(0, 10);
    REQUIRE(seqs(all) == std::vector<uint64_t>{1, 2, 3}); // what was committed survives
    CHECK(all[1].value == "x,y");
    CHECK(all[0].versions.at(0).value == "red");
    auto other = feed_config(1);
    other.incarnation = 999; // a new b: its first dots are new to a
    replica b(other, storage::make_memory_store());
    auto c4 = meet(a, b, "after", "1", "2", 9000);
    a.resolve(c4, {c4.versions[0].id}, decided_by{"lww", 1});
    CHECK(seqs(a.conflicts(3, 10)) == std::vector<uint64_t>{4}); // numbering goes on
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE(
  "conflict feed: trimmed to its record count and its bytes, oldest first, and large inputs "
  "are cut to 1 KiB each and flagged") {
  SECTION("by count") {
    replica a(feed_config(0, 3), storage::make_memory_store());
    replica b(feed_config(1), storage::make_memory_store());
    for (int i = 0; i < 5; ++i) {
      auto c = meet(a, b, "k" + std::to_string(i), "a", "b", 1000 * (i + 1));
      a.resolve(c, {c.versions[0].id}, decided_by{"lww", 0});
    }
    CHECK(seqs(a.conflicts(0, 10)) == std::vector<uint64_t>{3, 4, 5});
    CHECK(a.conflict_feed_range() == std::make_pair(uint64_t{3}, uint64_t{6}));
    CHECK(a.conflicts(0, 10).front().key == "k2");
  }
  SECTION("by bytes") {
    // 64 KiB of records; inputs of 2 x 1,500 bytes stay whole (under 64 KiB / 16).
    replica a(feed_config(0, 10000, 64u << 10), storage::make_memory_store());
    replica b(feed_config(1), storage::make_memory_store());
    for (int i = 0; i < 60; ++i) {
      auto c = meet(a, b, "k" + std::to_string(i), std::string(1500, 'a'), std::string(1500, 'b'),
                    1000 * (i + 1));
      a.resolve(c, {c.versions[0].id}, decided_by{"lww", 0});
    }
    auto kept = a.conflicts(0, 1000, SIZE_MAX);
    REQUIRE(!kept.empty());
    CHECK(kept.size() < 60);
    CHECK(kept.size() >= 15);     // about 3 KiB each: the bound, not far below it
    CHECK(kept.back().seq == 60); // the newest stays
    CHECK(kept.front().seq == 60 - kept.size() + 1);
    CHECK_FALSE(kept.back().values_cut);
    CHECK(kept.back().versions[0].value.size() == 1500);
  }
  SECTION("a record whose inputs exceed a sixteenth of the bytes keeps 1 KiB of each") {
    replica a(feed_config(0, 10000, 1u << 20), storage::make_memory_store());
    replica b(feed_config(1), storage::make_memory_store());
    auto c = meet(a, b, "big", std::string(100000, 'a'), std::string(100000, 'b'), 1000);
    a.merge(c, std::string(150000, 'm'), decided_by{"tags", 0});
    auto r = a.conflicts(0, 10);
    REQUIRE(r.size() == 1);
    CHECK(r[0].values_cut);
    CHECK(r[0].versions[0].value.size() == 1024);
    CHECK(r[0].value.size() == 1024);
  }
  SECTION("zero records: none kept") {
    replica a(feed_config(0, 0), storage::make_memory_store());
    replica b(feed_config(1), storage::make_memory_store());
    auto c = meet(a, b, "k", "a", "b", 1000);
    a.resolve(c, {c.versions[0].id});
    CHECK(a.conflicts(0, 10).empty());
  }
}

TEST_CASE("conflict feed: a page stops at its byte budget but always carries one record") {
  replica a(feed_config(0), storage::make_memory_store());
  replica b(feed_config(1), storage::make_memory_store());
  for (int i = 0; i < 4; ++i) {
    auto c = meet(a, b, "k" + std::to_string(i), std::string(10000, 'a'), "b", 1000 * (i + 1));
    a.resolve(c, {c.versions[0].id});
  }
  CHECK(a.conflicts(0, 10, 1).size() == 1);
  CHECK(a.conflicts(0, 10, 25000).size() == 2);
  CHECK(a.conflicts(0, 10).size() == 4);
}

TEST_CASE("conflict feed: a failing question retried is one record, the feed's state is rebuilt "
          "from its records if unreadable, and zero records drops what an earlier run kept") {
  auto dir = std::string("test_conflict_feed_state.db");
  std::filesystem::remove_all(dir);
  auto other = feed_config(1);
  {
    auto store = storage::open_rocksdb_store(dir);
    REQUIRE(store);
    replica a(feed_config(0), std::move(*store));
    replica b(other, storage::make_memory_store());
    auto c = meet(a, b, "stuck", "p", "q", 1000);
    a.unresolved(c, "resolver failed: timeout");
    a.unresolved(c, "resolver failed: timeout"); // the retry a second later
    CHECK(a.conflicts(0, 10).size() == 1);
    a.resolve(c, {c.versions[0].id});
    CHECK(a.conflicts(0, 10).size() == 2);
    a.mutable_store().put_meta("conflict_feed", "not numbers");
    a.take_ready();
    REQUIRE(a.mutable_store().commit(true));
  }
  {
    auto store = storage::open_rocksdb_store(dir);
    REQUIRE(store);
    replica a(feed_config(0), std::move(*store));
    CHECK(a.conflict_feed_range() == std::make_pair(uint64_t{1}, uint64_t{3}));
    other.incarnation = 1234;
    replica b(other, storage::make_memory_store());
    auto c = meet(a, b, "next", "x", "y", 5000);
    a.resolve(c, {c.versions[0].id});
    CHECK(seqs(a.conflicts(0, 10)) == std::vector<uint64_t>{1, 2, 3}); // no number reused
    a.take_ready();
    REQUIRE(a.mutable_store().commit(true));
  }
  {
    auto store = storage::open_rocksdb_store(dir);
    REQUIRE(store);
    replica a(feed_config(0, 0), std::move(*store));
    other.incarnation = 5678;
    replica b(other, storage::make_memory_store());
    auto c = meet(a, b, "more", "x", "y", 9000);
    a.resolve(c, {c.versions[0].id});
    CHECK(a.conflicts(0, 10).empty());
  }
  std::filesystem::remove_all(dir);
}
