#pragma once
// Shared by the text CRDT's tests (test_text.cpp, test_text_encode.cpp): replicas' ids and
// operation dots, UTF-8 helpers, operations as a variant, an editor's copy kept from
// deltas, and causal broadcast between documents.

#include "core/text.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <variant>
#include <vector>

namespace mlr::testing::text_support {

using core::text::document;

inline messages::source replica(uint32_t n) {
  return messages::source{n, 1000 + n};
}

// The next operation dot of replica n (counters only grow, across all documents).
inline messages::dot next_dot(uint32_t n) {
  static std::map<uint32_t, uint64_t> counters;
  return messages::dot{replica(n), ++counters[n]};
}

inline std::u32string u32(const std::string& s) {
  auto t = core::text::from_utf8(s);
  REQUIRE(t);
  return *t;
}

inline std::string text_of(const document& d) {
  return core::text::to_utf8(d.read());
}

using op = std::variant<core::text::insert_op, core::text::delete_op>;

inline std::optional<std::vector<core::text::delta>> apply_op(document& d, const op& o) {
  return std::visit([&](auto& x) { return d.apply(x); }, o);
}

// An editor's copy of the text, kept only from the deltas a document reports.
inline void follow(std::u32string& mirror, const std::vector<core::text::delta>& ds) {
  for (auto& d : ds) {
    REQUIRE(d.index <= mirror.size());
    if (d.insert)
      mirror.insert(d.index, d.text);
    else
      mirror.erase(d.index, d.count);
  }
}

// Causal broadcast between n replicas: each operation carries its origin's vector (how
// many operations of each replica it came after); a replica applies one once it has
// applied everything it depends on. Deliveries are picked by the seed.
inline messages::dot dot_of(const op& o) {
  if (auto* i = std::get_if<core::text::insert_op>(&o))
    return messages::dot{i->origin, i->counter};
  return std::get<core::text::delete_op>(o).id;
}

struct causal_net {
  struct sent {
    size_t origin;
    std::vector<uint64_t> deps;
    op what;
  };
  explicit causal_net(std::vector<document>& d)
      : docs(d), seen(d.size(), std::vector<uint64_t>(d.size(), 0)), inbox(d.size()),
        mirrors(d.size()), applied(d.size()) {
    for (size_t k = 0; k < d.size(); ++k)
      mirrors[k] = d[k].read();
  }

  // After a local edit at `origin` (already applied there).
  void sent_by(size_t origin, op o) {
    sent s{origin, seen[origin], std::move(o)};
    ++seen[origin][origin];
    note_applied(origin, s.what);
    mirrors[origin] = docs[origin].read(); // the editor's copy follows its own edit
    for (size_t k = 0; k < docs.size(); ++k)
      if (k != origin)
        inbox[k].push_back(s);
  }

  // Applies some of what `to` may apply now, in a shuffled order (each skipped with
  // probability 1/4 per pass); remote deltas keep `to`'s editor copy.
  void deliver(size_t to, std::mt19937& rng) {
    std::shuffle(inbox[to].begin(), inbox[to].end(), rng);
    for (bool progress = true; progress;) {
      progress = false;
      for (auto it = inbox[to].begin(); it != inbox[to].end(); ++it) {
        bool ready = seen[to][it->origin] == it->deps[it->origin];
        for (size_t k = 0; k < docs.size() && ready; ++k)
          ready = k == it->origin || seen[to][k] >= it->deps[k];
        if (!ready || rng() % 4 == 0)
          continue;
        auto deltas = apply_op(docs[to], it->what);
        REQUIRE(deltas);
        follow(mirrors[to], *deltas);
        ++seen[to][it->origin];
        note_applied(to, it->what);
        inbox[to].erase(it);
        progress = true;
        break;
      }
    }
  }

  void drain(std::mt19937& rng) {
    for (int round = 0; round < 1000; ++round)
      for (size_t k = 0; k < docs.size(); ++k)
        deliver(k, rng);
    for (auto& in : inbox)
      REQUIRE(in.empty());
  }

  void note_applied(size_t at, const op& o) {
    auto d = dot_of(o);
    applied[at][d.origin] = std::max(applied[at][d.origin], d.counter);
  }
  // Applied at every replica (an origin's operations arrive in order).
  bool stable(const messages::dot& d) const {
    return std::all_of(applied.begin(), applied.end(), [&](const core::text::version& v) {
      auto i = v.find(d.origin);
      return i != v.end() && i->second >= d.counter;
    });
  }

  std::vector<document>& docs;
  std::vector<std::vector<uint64_t>> seen;
  std::vector<std::vector<sent>> inbox;
  std::vector<std::u32string> mirrors;
  std::vector<core::text::version> applied;
};

} // namespace mlr::testing::text_support
