// The text CRDT (core/text.hpp) on its own: the real editing traces as the oracle, runs,
// non-interleaving, deletes of only what was seen, duplicates, hostile operations, and
// random concurrent editing with causal delivery in any order.

#include "bench/editing_traces.hpp"
#include "core/text.hpp"
#include "text_support.hpp"

#include <catch2/catch.hpp>

#include <deque>
#include <map>
#include <random>
#include <variant>

using namespace mlr;
using core::text::document;
using namespace testing::text_support;

TEST_CASE("text: automerge-paper applied edit by edit gives endContent, and so do its "
          "operations applied at a second replica, whose deltas rebuild the text") {
  auto trace = testing::traces::load("automerge-paper");
  REQUIRE(trace.txns.size() == 259778);
  document a;
  document b;
  std::u32string mirror;
  uint64_t edits = 0;
  for (auto& tx : trace.txns)
    for (auto& p : tx.patches) {
      ++edits;
      if (p.deleted > 0) {
        auto deltas = b.apply(a.erase(next_dot(0), p.position, p.deleted));
        REQUIRE(deltas);
        follow(mirror, *deltas);
      }
      if (!p.inserted.empty()) {
        auto deltas = b.apply(a.insert(next_dot(0), p.position, u32(p.inserted)));
        REQUIRE(deltas);
        follow(mirror, *deltas);
      }
    }
  CHECK(edits == 259778);
  CHECK(text_of(a) == trace.end_content);
  CHECK(text_of(b) == trace.end_content);
  CHECK(core::text::to_utf8(mirror) == trace.end_content);
  CHECK(a.length() == u32(trace.end_content).size());
  // Runs: 182,315 characters were typed one at a time; the items are the runs that the
  // edits left (each backspace splits one and leaves a tombstone), about one per 2.2.
  INFO("items " << a.items());
  CHECK(a.items() < 182315 / 2);
  CHECK(b.items() == a.items());
  // The encoded form: the same bytes at both, and a document decoded from them that is the
  // same document.
  auto bytes = a.encode();
  INFO("encoded " << bytes.size() << " bytes");
  CHECK(b.encode() == bytes);
  auto c = document::decode(bytes);
  REQUIRE(c);
  CHECK(text_of(*c) == trace.end_content);
  CHECK(c->encode() == bytes);
  CHECK(c->items() <= a.items());
}

TEST_CASE("text: characters typed one by one are one item (run-length), at the origin and "
          "where they are applied, and an edit inside splits it") {
  document a;
  document b;
  std::string typed = "Consecutive characters of one author are stored as one run.";
  for (size_t i = 0; i < typed.size(); ++i)
    REQUIRE(b.apply(a.insert(next_dot(0), i, u32(typed.substr(i, 1)))));
  CHECK(a.items() == 1);
  CHECK(b.items() == 1);
  REQUIRE(b.apply(a.insert(next_dot(1), 11, u32("!"))));
  CHECK(a.items() == 3);
  CHECK(b.items() == 3);
  CHECK(text_of(b) == "Consecutive! characters of one author are stored as one run.");
  CHECK(core::text::to_utf8(b.read(13, 10)) == "characters");
  CHECK(core::text::to_utf8(b.read(55, 100)) == " run.");
}

TEST_CASE("text: two people typing forward at one place never interleave") {
  for (int order = 0; order < 2; ++order) {
    document a;
    document b;
    b.apply(a.insert(next_dot(0), 0, u32("[]")));
    std::vector<op> from_a;
    std::vector<op> from_b;
    // Each types a word one character at a time, after the '[' (index 1, then on).
    std::string wa = "apples ";
    std::string wb = "bananas ";
    for (size_t i = 0; i < wa.size(); ++i)
      from_a.push_back(a.insert(next_dot(0), 1 + i, u32(wa.substr(i, 1))));
    for (size_t i = 0; i < wb.size(); ++i)
      from_b.push_back(b.insert(next_dot(1), 1 + i, u32(wb.substr(i, 1))));
    // Delivered one by one, alternating (or in blocks), the other way round per order.
    for (size_t i = 0; i < std::max(from_a.size(), from_b.size()); ++i) {
      if (order == 0 && i < from_a.size())
        REQUIRE(apply_op(b, from_a[i]));
      if (i < from_b.size())
        REQUIRE(apply_op(a, from_b[i]));
      if (order == 1 && i < from_a.size())
        REQUIRE(apply_op(b, from_a[i]));
    }
    CHECK(text_of(a) == text_of(b));
    auto t = text_of(a);
    INFO(t);
    CHECK((t == "[" + wa + wb + "]" || t == "[" + wb + wa + "]"));
  }
}

TEST_CASE("text: three people typing forward at one place while they hear each other "
          "at random moments never interleave (200 seeds)") {
  const std::vector<std::string> words{"apples ", "bananas ", "cherries "};
  for (unsigned seed = 1; seed <= 200; ++seed) {
    std::mt19937 rng(seed);
    std::vector<document> docs(3);
    auto base = docs[0].insert(next_dot(9), 0, u32("[]"));
    docs[1].apply(base);
    docs[2].apply(base);
    causal_net net(docs);
    std::vector<size_t> typed(3, 0);
    std::vector<std::optional<core::text::char_id>> last(3);
    for (bool more = true; more;) {
      more = false;
      for (size_t w = 0; w < 3; ++w) {
        if (typed[w] == words[w].size())
          continue;
        more = true;
        if (rng() % 2)
          continue;
        // The cursor stands after the last character this person typed.
        uint64_t at = last[w] ? *docs[w].index_of(*last[w]) + 1 : 1;
        auto o = docs[w].insert(next_dot(static_cast<uint32_t>(w)), at,
                                u32(words[w].substr(typed[w]++, 1)));
        last[w] = core::text::char_id{o.origin, o.first_seq};
        net.sent_by(w, o);
      }
      net.deliver(rng() % 3, rng); // some of it is heard
    }
    net.drain(rng);
    auto t = text_of(docs[0]);
    INFO("seed " << seed << ": " << t);
    CHECK(text_of(docs[1]) == t);
    CHECK(text_of(docs[2]) == t);
    for (auto& w : words)
      CHECK(t.find(w) != std::string::npos);
  }
}

TEST_CASE("text: a delete removes only what its author saw, and a concurrent insert inside the "
          "deleted range survives") {
  document a;
  document b;
  b.apply(a.insert(next_dot(0), 0, u32("hello world")));
  auto del = a.erase(next_dot(0), 0, 6);          // "world" at a
  auto ins = b.insert(next_dot(1), 3, u32("XY")); // "helXYlo world" at b
  REQUIRE(a.apply(ins));
  REQUIRE(b.apply(del));
  CHECK(text_of(a) == "XYworld");
  CHECK(text_of(b) == "XYworld");
}

TEST_CASE("text: an operation applied twice changes nothing, an unknown left, right or "
          "deleted character is refused and changes nothing, bad UTF-8 is refused") {
  document a;
  document b;
  auto first = a.insert(next_dot(0), 0, u32("abc"));
  REQUIRE(b.apply(first));
  auto again = b.apply(first);
  REQUIRE(again);
  CHECK(again->empty());
  auto del = a.erase(next_dot(0), 1, 1);
  REQUIRE(b.apply(del));
  REQUIRE(b.apply(del));
  CHECK(b.apply(del)->empty());
  CHECK(text_of(b) == "ac");

  auto bogus = first;
  bogus.first_seq = 100;
  bogus.left = core::text::char_id{replica(7), 3};
  CHECK_FALSE(b.apply(bogus));
  bogus.left.reset();
  bogus.right = core::text::char_id{replica(0), 99};
  CHECK_FALSE(b.apply(bogus));
  core::text::delete_op gone{next_dot(5), {core::text::id_range{replica(0), 1, 50}}};
  CHECK_FALSE(b.apply(gone)); // chars 3..50 were never inserted
  core::text::delete_op wraps{next_dot(5), {core::text::id_range{replica(0), UINT64_MAX, 2}}};
  CHECK_FALSE(b.apply(wraps));

  CHECK(text_of(b) == "ac");
  CHECK(b.length() == 2);

  // What no honest peer sends, each of which could place the run differently at replicas
  // whose runs are split differently: refused, nothing changed.
  auto c = first; // "abc" from replica 0 took seqs 0..2
  c.origin = replica(3);
  c.counter = 1;
  c.text = u32("zz");
  c.left = core::text::char_id{replica(0), 2};
  c.right = core::text::char_id{replica(0), 2}; // right is left
  CHECK_FALSE(b.apply(c));
  c.right = core::text::char_id{replica(0), 0}; // right before left
  CHECK_FALSE(b.apply(c));
  c.right.reset();
  c.first_seq = 1; // replica 3's first insert must take seq 0
  CHECK_FALSE(b.apply(c));
  c.first_seq = 0;
  c.text = std::u32string{U'z', static_cast<char32_t>(0x110000)};
  CHECK_FALSE(b.apply(c));
  c.text = std::u32string{U'z', static_cast<char32_t>(0xd800)};
  CHECK_FALSE(b.apply(c));
  c.text = u32("zz");
  REQUIRE(b.apply(c)); // replica 3's seqs 0..1, counter 1
  auto overlap = c;
  overlap.first_seq = 1; // seqs 1..4 overlap 0..1
  overlap.counter = 2;
  overlap.text = u32("wxyz");
  CHECK_FALSE(b.apply(overlap));
  overlap.first_seq = 2;
  overlap.counter = 1; // not above replica 3's last counter
  CHECK_FALSE(b.apply(overlap));
  overlap.counter = 2;
  CHECK(b.apply(overlap));
  CHECK(text_of(b) == "acwxyzzz"); // after c, like zz: the same origin, so before it

  CHECK_FALSE(core::text::from_utf8("\xc0\xaf"));         // overlong '/'
  CHECK_FALSE(core::text::from_utf8("\xed\xa0\x80"));     // a surrogate
  CHECK_FALSE(core::text::from_utf8("\xf4\x90\x80\x80")); // past U+10FFFF
  CHECK_FALSE(core::text::from_utf8("ab\xe2\x82"));       // cut short
  CHECK(core::text::from_utf8("h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80")->size() == 4);
  CHECK(core::text::to_utf8(u32("h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80")) ==
        "h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
}

namespace {

// Random concurrent editing at `n` replicas: inserts of short words (some with
// multi-byte characters) and deletes of up to 5 characters, at random places, heard at
// random moments.
// With `restore`, every 50 steps one replica is replaced by the document decoded from its
// encoded form (as a restart from it would), and at the end every replica must encode to
// the same bytes.
// With `collect`, every 25 steps one replica collects tombstones (those whose deletes every
// replica has applied, or all), and at the end all do: what they forgot must not change
// where anything goes.
size_t random_run(unsigned seed, size_t n, bool restore = false, bool collect = false) {
  std::mt19937 rng(seed);
  std::vector<document> docs(n);
  causal_net net(docs);
  const char* alphabet = "abcdefgh";
  size_t collected = 0;
  for (int step = 0; step < 400; ++step) {
    auto at = rng() % n;
    auto& d = docs[at];
    if (d.length() > 0 && rng() % 3 == 0) {
      auto i = rng() % d.length();
      net.sent_by(at, d.erase(next_dot(static_cast<uint32_t>(at)), i,
                              1 + rng() % std::min<uint64_t>(5, d.length() - i)));
    } else {
      std::string word;
      for (auto len = 1 + rng() % 4; len > 0; --len)
        word += std::string(1, alphabet[rng() % 8]);
      if (rng() % 5 == 0)
        word += "\xe2\x82\xac";
      net.sent_by(
        at, d.insert(next_dot(static_cast<uint32_t>(at)), rng() % (d.length() + 1), u32(word)));
    }
    net.deliver(rng() % n, rng);
    if (restore && step % 50 == 49) {
      auto k = rng() % n;
      auto bytes = docs[k].encode();
      auto back = document::decode(bytes);
      REQUIRE(back);
      REQUIRE(back->read() == docs[k].read());
      REQUIRE(back->encode() == bytes);
      docs[k] = std::move(*back);
    }
    if (collect && step % 25 == 24) {
      auto k = rng() % n;
      auto before = docs[k].read();
      // Stable deletes, or (every other time) all: placement is by ids, so even forgetting
      // deleters too early must not make replicas diverge (it only loses the past).
      bool all = rng() % 2 == 0;
      collected += docs[k].collect([&](auto& d) { return all || net.stable(d); });
      REQUIRE(docs[k].read() == before);
    }
  }
  net.drain(rng);
  if (collect) {
    auto items = docs[0].items();
    for (auto& d : docs)
      collected += d.collect([&](auto& d) { return net.stable(d); });
    CHECK(docs[0].items() <= items);
    CHECK(docs[0].tracked_tombstones() == 0);
  }
  if (restore) {
    auto bytes = docs[0].encode();
    for (size_t k = 1; k < n; ++k) {
      INFO("seed " << seed << " replica " << k);
      CHECK(docs[k].encode() == bytes);
    }
  }
  for (size_t k = 0; k < n; ++k) {
    INFO("seed " << seed << " replica " << k);
    CHECK(docs[k].read() == docs[0].read());
    CHECK(net.mirrors[k] == docs[k].read()); // remote deltas kept the editor's copy right
  }
  return collected;
}

} // namespace

TEST_CASE("text: random concurrent edits at 3 replicas, delivered causally in shuffled "
          "orders, converge (100 seeds)") {
  for (unsigned seed = 1; seed <= 100; ++seed)
    random_run(seed, 3);
}

TEST_CASE("text: replicas that collect stable tombstones at different moments converge with "
          "each other, and their editors' copies stay right (100 seeds)") {
  size_t collected = 0;
  for (unsigned seed = 1; seed <= 100; ++seed)
    collected += random_run(seed, 3, false, true);
  CHECK(collected > 1000);
}

TEST_CASE("text: replicas restored from their encoded form mid-run converge with the others, "
          "and converged replicas encode to the same bytes (100 seeds)") {
  for (unsigned seed = 1; seed <= 100; ++seed)
    random_run(seed, 3, true);
}

namespace {

bool covers(const core::text::version& have, const core::text::version& want) {
  for (auto& [origin, counter] : want) {
    auto h = have.find(origin);
    if (h == have.end() ? counter > 0 : h->second < counter)
      return false;
  }
  return true;
}

void join(core::text::version& into, const core::text::version& v) {
  for (auto& [origin, counter] : v)
    into[origin] = std::max(into[origin], counter);
}

// friendsforever at two replicas (one per agent) and a third: each transaction is applied
// at its agent's replica once its parents have arrived there, with its positions counted in
// the document its agent saw (the parents' version), although that replica may already
// hold more of the other agent's edits (`extra`: up to that many more delivered first).
std::vector<std::string> replay_friendsforever(unsigned seed, bool at_parents_version,
                                               bool restore = false) {
  auto trace = testing::traces::load("friendsforever");
  REQUIRE(trace.agents == 2);
  std::mt19937 rng(seed);
  std::vector<document> docs(3);
  std::vector<core::text::version> applied(3);
  struct pending {
    op what;
    messages::dot id;
  };
  std::vector<std::deque<pending>> inbox(3);
  auto deliver_one = [&](size_t to) {
    auto p = std::move(inbox[to].front());
    inbox[to].pop_front();
    REQUIRE(apply_op(docs[to], p.what));
    applied[to][p.id.origin] = p.id.counter;
  };
  std::vector<core::text::version> vv(trace.txns.size());
  std::vector<uint64_t> counter(2, 0);
  for (size_t t = 0; t < trace.txns.size(); ++t) {
    auto& tx = trace.txns[t];
    auto a = tx.agent;
    core::text::version v;
    for (auto p : tx.parents)
      join(v, vv.at(p));
    while (!covers(applied[a], v)) // the parents arrive (in the order they were made)
      deliver_one(a);
    for (auto extra = rng() % 4; extra > 0 && !inbox[a].empty(); --extra)
      deliver_one(a); // and perhaps more, which the agent had not seen
    auto origin = replica(static_cast<uint32_t>(a));
    for (auto& p : tx.patches) {
      auto edit = [&](auto&& make) {
        messages::dot id{origin, ++counter[a]};
        op o = make(id);
        v[origin] = applied[a][origin] = id.counter;
        for (size_t k = 0; k < 3; ++k)
          if (k != a)
            inbox[k].push_back(pending{o, id});
      };
      auto* at = at_parents_version ? &v : nullptr;
      if (p.deleted > 0)
        edit([&](auto& id) { return op{docs[a].erase(id, p.position, p.deleted, at)}; });
      if (!p.inserted.empty())
        edit([&](auto& id) { return op{docs[a].insert(id, p.position, u32(p.inserted), at)}; });
    }
    vv[t] = v;
    if (restore && t % 500 == 499) { // its replica restarts from the encoded form
      auto back = document::decode(docs[a].encode());
      REQUIRE(back);
      docs[a] = std::move(*back);
    }
  }
  std::vector<std::string> out;
  for (size_t k = 0; k < 3; ++k) {
    while (!inbox[k].empty())
      deliver_one(k);
    out.push_back(text_of(docs[k]));
  }
  CHECK(trace.end_content.size() > 1000);
  out.push_back(trace.end_content);
  return out;
}

} // namespace

TEST_CASE("text: friendsforever replayed by its two agents at two replicas, each edit at "
          "the version its agent saw, gives endContent there and at a third (3 seeds)") {
  for (unsigned seed = 1; seed <= 3; ++seed) {
    auto docs = replay_friendsforever(seed, true);
    INFO("seed " << seed);
    CHECK(docs[0] == docs[3]);
    CHECK(docs[1] == docs[3]);
    CHECK(docs[2] == docs[3]);
  }
}

TEST_CASE("text: friendsforever with each agent's replica restored from its encoded form every "
          "500 transactions, edits still placed at the version their agent saw") {
  auto docs = replay_friendsforever(1, true, true);
  CHECK(docs[0] == docs[3]);
  CHECK(docs[1] == docs[3]);
  CHECK(docs[2] == docs[3]);
}
