// The text document's encoded form (document::encode/decode) against hostile bytes, and
// tombstone collection (document::collect) case by case; the randomized and trace runs of
// both are in test_text.cpp.

#include "core/text.hpp"
#include "text_support.hpp"

#include <catch2/catch.hpp>

using namespace mlr;
using core::text::document;
using namespace testing::text_support;

namespace {

std::string varints(std::initializer_list<uint64_t> vs) {
  std::string out;
  for (auto v : vs) {
    for (; v >= 0x80; v >>= 7)
      out.push_back(static_cast<char>(v | 0x80));
    out.push_back(static_cast<char>(v));
  }
  return out;
}

} // namespace

TEST_CASE("text: decode refuses bytes encode did not write, and damaged bytes never crash it or "
          "give a document that is not one") {
  document a;
  document b;
  REQUIRE(b.apply(a.insert(next_dot(0), 0, u32("hello world"))));
  REQUIRE(a.apply(b.insert(next_dot(1), 5, u32(", dear \xe2\x82\xac"))));
  REQUIRE(b.apply(a.erase(next_dot(0), 0, 2)));
  document c = b;
  REQUIRE(a.apply(c.erase(next_dot(2), 3, 4))); // an origin that only deletes
  auto bytes = a.encode();
  REQUIRE(document::decode(bytes));
  CHECK(text_of(*document::decode(bytes)) == text_of(a));
  for (size_t n = 0; n < bytes.size(); ++n)
    CHECK_FALSE(document::decode(bytes.substr(0, n)));
  CHECK_FALSE(document::decode(bytes + "x"));
  size_t refused = 0;
  size_t tried = 0;
  for (size_t i = 0; i < bytes.size(); ++i)
    for (int v : {0x00, 0x01, 0x7f, 0x80, 0xff, (bytes[i] ^ 1) & 0xff}) {
      auto damaged = bytes;
      damaged[i] = static_cast<char>(v);
      if (damaged == bytes)
        continue;
      ++tried;
      auto d = document::decode(damaged);
      if (!d) {
        ++refused;
        continue;
      }
      // What decodes is a document: it reads, and survives its own round trip.
      CHECK(d->read().size() == d->length());
      auto again = document::decode(d->encode());
      REQUIRE(again);
      CHECK(again->read() == d->read());
    }
  INFO(refused << " of " << tried << " damaged forms refused");
  CHECK(refused > tried / 2);

  // Hand-made forms (origins, each origin's runs of inserts, items, text, deletes). One
  // origin whose 2^32 - 1 characters were typed one at a time and deleted at once: a few
  // bytes, decoded without expanding anything.
  std::string head = std::string("mlrT\x01", 5) + varints({1, 7, 9});
  const uint64_t del = uint64_t{1} << 34; // the delete's counter, zigzag-coded: 2^33
  const auto tombstone = varints({1, 1, 0, 0, UINT32_MAX}) + varints({0});
  auto huge = head + varints({1, 0, 2, 1, 1, UINT32_MAX}) + tombstone +
              varints({1, 2, 0, del, 0, 0, UINT32_MAX});
  auto d = document::decode(huge);
  REQUIRE(d);
  CHECK(d->length() == 0);
  CHECK(d->items() == 1);
  CHECK(d->next_seq(messages::source{7, 9}) == UINT32_MAX);
  CHECK(document::decode(d->encode()));
  // ... but not one insert more than there are characters,
  CHECK_FALSE(document::decode(head + varints({1, 0, 2, 1, 1, uint64_t{UINT32_MAX} + 1}) +
                               tombstone + varints({1, 2, 0, del, 0, 0, UINT32_MAX})));
  // nor 2^40 backspaces in a few bytes (each costs a deleter in memory),
  CHECK_FALSE(document::decode(head + varints({1, 0, 2, 1, 1, UINT32_MAX}) + tombstone +
                               varints({1, uint64_t{1} << 41, 0, del, 0, 0, 1, 1, 2})));
  // nor a delete of a visible character. (A tombstone no delete names is a collected one.)
  const auto one = varints({1, 0, 2, 0, 0, 1});
  CHECK(document::decode(head + one + varints({1, 1, 0, 0, 1}) + varints({0, 0})));
  CHECK_FALSE(document::decode(head + one + varints({1, 0, 0, 0, 1}) + varints({1, 'a'}) +
                               varints({1, 2, 0, 4, 0, 0, 1})));
  // More items than the bytes could hold; a visible item without its text; origins out of
  // order; an origin left after its item.
  CHECK_FALSE(document::decode(head + varints({0, 1000000, 0, 0, 0, 1})));
  CHECK_FALSE(
    document::decode(head + varints({1, 0, 2, 1, 1, 3}) + varints({1, 0, 0, 0, 3}) + varints({0})));
  CHECK_FALSE(document::decode(std::string("mlrT\x01", 5) + varints({2, 7, 9, 7, 8, 0, 0, 0})));
  const auto runs = varints({1, 0, 2, 1, 1, 2});
  CHECK_FALSE(document::decode(head + runs + varints({2, 0, 0, 0, 1, 2 | 32, 0, 1, 0, 1}) +
                               varints({2, 'a', 'b', 0})));
  // (the same with the left origin the previous item's character: a document "ab")
  auto ab = document::decode(head + runs + varints({2, 0, 0, 0, 1, 2 | 4 | 32, 0, 1}) +
                             varints({2, 'a', 'b', 0}));
  REQUIRE(ab);
  CHECK(text_of(*ab) == "ab");
}

TEST_CASE("text: a collected tombstone keeps its ids for inserts that name it, and an edit at a "
          "version before its delete counts it as deleted") {
  document a;
  document b;
  auto typed = a.insert(next_dot(0), 0, u32("hello world"));
  REQUIRE(b.apply(typed));
  document c = a; // never collects
  core::text::version before{{replica(0), typed.counter}};
  std::vector<core::text::delete_op> dels; // "hello " backspaced: six deletes
  for (uint64_t i = 6; i-- > 0;)
    dels.push_back(a.erase(next_dot(0), i, 1));
  for (auto& d : dels)
    REQUIRE(c.apply(d));
  CHECK(c.items() == 7);
  // b, not having the deletes yet, types after "hello ": its origins are now tombstones.
  auto x = b.insert(next_dot(1), 6, u32("X"));
  for (auto& d : dels)
    REQUIRE(b.apply(d));
  CHECK(a.collect([](auto&) { return true; }) > 0);
  CHECK(a.tracked_tombstones() == 0);
  CHECK(a.items() == 2); // the six tombstones are one run of ids
  REQUIRE(a.apply(x));
  REQUIRE(c.apply(x));
  CHECK(text_of(a) == "Xworld");
  CHECK(text_of(b) == "Xworld");
  CHECK(text_of(c) == "Xworld");
  // At the version before the delete, index 6 is the 'w' where the delete is still known;
  // where it was collected, "hello " no longer counts, and index 6 is the end.
  c.erase(next_dot(0), 6, 1, &before);
  a.erase(next_dot(0), 6, 1, &before);
  CHECK(text_of(c) == "Xorld");
  CHECK(text_of(a) == "Xworld");
}

TEST_CASE("text: review cases: an origin that only deleted leaves the encoding once its "
          "deletes are collected, a long burst of backspaces decodes, and a late delete "
          "leaves a collected tombstone whole") {
  // A replica rebuilt from its encoded form while a deleting-only origin's deletes were
  // still known must, once they are collected, write what a replica never rebuilt writes.
  document a;
  a.insert(next_dot(0), 0, u32("hello world"));
  document b = a;
  document c = a;
  auto del = c.erase(next_dot(2), 0, 6); // replica 2 only deletes
  REQUIRE(a.apply(del));
  REQUIRE(b.apply(del));
  auto rebuilt = document::decode(a.encode());
  REQUIRE(rebuilt);
  a = std::move(*rebuilt);
  a.collect([](auto&) { return true; });
  b.collect([](auto&) { return true; });
  CHECK(a.encode() == b.encode());

  // 1,000 keystrokes, then 1,000 backspaces: a few bytes that name 1,000 deleters.
  document typist;
  for (uint64_t i = 0; i < 1000; ++i)
    typist.insert(next_dot(0), i, u32("x"));
  for (uint64_t i = 1000; i-- > 0;)
    typist.erase(next_dot(0), i, 1);
  auto bytes = typist.encode();
  CHECK(bytes.size() < 100);
  auto back = document::decode(bytes);
  REQUIRE(back);
  CHECK(back->length() == 0);
  CHECK(back->encode() == bytes);
  CHECK_FALSE(document::decode(bytes, 999)); // the caller's bound holds
  CHECK(document::decode(bytes, 1000));

  // A delete that had not seen a collected one names part of it: nothing is split.
  document x;
  x.insert(next_dot(0), 0, u32("abcdef"));
  document y = x;
  x.erase(next_dot(0), 2, 2); // "cd"
  x.collect([](auto&) { return true; });
  auto items = x.items();
  auto late = y.erase(next_dot(1), 3, 1); // "d", concurrently
  REQUIRE(x.apply(late));
  CHECK(x.items() == items);
  CHECK(text_of(x) == "abef");
}
