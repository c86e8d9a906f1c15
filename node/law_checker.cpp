#include "node/law_checker.hpp"

#include "core/replica.hpp"
#include "core/typed.hpp"
#include "storage/store.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>

namespace mlr::node {

namespace {

using messages::dot;
using messages::version;
using resolvers::resolution;

std::string show(const version& v) {
  return "(n" + std::to_string(v.id.origin.node) + "." + std::to_string(v.id.counter) +
         " t=" + std::to_string(v.time.value) + " " +
         (v.tombstone ? std::string("delete") : "'" + v.value + "'") + ")";
}

std::string show(const std::vector<version>& vs) {
  std::string out = "{";
  for (auto& v : vs)
    out += (out.size() > 1 ? " " : "") + show(v);
  return out + "}";
}

// What a read shows: the live values, sorted (a selection's tombstones show nothing).
std::string shown(const std::vector<version>& vs) {
  std::vector<std::string> values;
  for (auto& v : vs)
    if (!v.tombstone)
      values.push_back("'" + v.value + "'");
  std::sort(values.begin(), values.end());
  if (values.empty())
    return "(deleted)";
  std::string out;
  for (auto& v : values)
    out += (out.empty() ? "" : " ") + v;
  return out;
}

std::string show(const resolution& r) {
  if (r.merge)
    return "merge '" + r.value + "'";
  std::string out = "keep";
  for (auto& d : r.keep)
    out += " n" + std::to_string(d.origin.node) + "." + std::to_string(d.counter);
  return out;
}

std::string default_value(std::mt19937_64& rng) {
  static const char* words[] = {"a", "b", "c", "a,b", "b,c", "7", "-3", "12.5", "x,a", ""};
  return words[rng() % (sizeof(words) / sizeof(words[0]))];
}

class checker {
public:
  checker(const resolvers::resolver_factory& make, const law_options& o)
      : o_(o), rng_(o.seed), self_(sys_) {
    for (auto& r : instances_)
      r = make(sys_);
  }
  ~checker() {
    for (auto& r : instances_)
      caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
  }

  law_report run() {
    law_report rep;
    for (rep.trials = 1; rep.trials <= o_.trials; ++rep.trials) {
      auto set = random_set();
      if (!trial(set, rep))
        return rep;
    }
    rep.trials = o_.trials;
    return rep;
  }

private:
  std::vector<version> random_set() {
    auto span = std::max<size_t>(o_.max_versions, 2) - 1;
    size_t n = 2 + rng_() % span;
    std::vector<version> out;
    for (size_t i = 0; i < n; ++i) {
      version v;
      v.id =
        dot{messages::source{static_cast<messages::node_index>(i), 1 + rng_() % 2}, 1 + rng_() % 5};
      v.time = messages::hlc{1000 + rng_() % 4}; // ties happen
      v.tombstone = rng_() % 6 == 0;
      if (!v.tombstone)
        v.value = o_.value ? o_.value(rng_) : default_value(rng_);
      out.push_back(std::move(v));
    }
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.id < b.id; });
    return out;
  }

  // The resolver's answer, checked for validity; none (and `failure` set) otherwise.
  std::optional<resolution> ask(size_t instance, std::vector<version> vs, bool sorted = true) {
    if (sorted)
      std::sort(vs.begin(), vs.end(), [](auto& a, auto& b) { return a.id < b.id; });
    std::optional<resolution> got;
    self_
      ->request(instances_[instance], o_.timeout, resolvers::resolve_atom::value,
                std::string("law-check"), vs)
      .receive([&](resolution& r) { got = std::move(r); },
               [&](caf::error& e) { failure_ = "the resolver failed: " + sys_.render(e); });
    if (!got) {
      failure_law_ = "valid";
      failure_ += " on " + show(vs);
      return std::nullopt;
    }
    if (!got->merge) {
      std::sort(got->keep.begin(), got->keep.end());
      bool subset =
        !got->keep.empty() && std::all_of(got->keep.begin(), got->keep.end(), [&](auto& d) {
          return std::any_of(vs.begin(), vs.end(), [&](auto& v) { return v.id == d; });
        });
      if (!subset) {
        failure_law_ = "valid";
        failure_ = "on " + show(vs) + " the resolver answered " + show(*got) +
                   ": a selection must keep a non-empty subset of its input";
        return std::nullopt;
      }
    }
    return got;
  }

  // The versions an answer leaves: those kept, or the merged value (dot and HLC the
  // latest of the inputs, as the replica stores it).
  static std::vector<version> view(const std::vector<version>& in, const resolution& r) {
    std::vector<version> out;
    if (r.merge) {
      version m;
      m.value = r.value;
      for (auto& v : in) {
        m.id = std::max(m.id, v.id);
        m.time = std::max(m.time, v.time);
      }
      out.push_back(m);
      return out;
    }
    for (auto& v : in)
      if (std::binary_search(r.keep.begin(), r.keep.end(), v.id))
        out.push_back(v);
    return out;
  }

  // Resolves `vs` by a random grouping; `how` describes it.
  std::optional<std::vector<version>> fold(const std::vector<version>& vs, std::string& how) {
    if (vs.size() == 1) {
      how = show(vs.front());
      return vs;
    }
    std::vector<version> a, b;
    for (auto& v : vs)
      (rng_() % 2 ? a : b).push_back(v);
    if (a.empty() || b.empty()) {
      a.assign(vs.begin(), vs.begin() + 1);
      b.assign(vs.begin() + 1, vs.end());
    }
    std::string how_a, how_b;
    auto fa = fold(a, how_a);
    auto fb = fold(b, how_b);
    if (!fa || !fb)
      return std::nullopt;
    fa->insert(fa->end(), fb->begin(), fb->end());
    how = "[" + how_a + " + " + how_b + "]";
    if (fa->size() < 2)
      return fa;
    auto r = ask(rng_() % 2, *fa);
    if (!r)
      return std::nullopt;
    std::sort(fa->begin(), fa->end(), [](auto& x, auto& y) { return x.id < y.id; });
    return view(*fa, *r);
  }

  bool fail(law_report& rep, std::string law, std::string what) {
    rep.ok = false;
    rep.law = std::move(law);
    rep.counterexample = std::move(what);
    return false;
  }
  bool failed_ask(law_report& rep) { return fail(rep, failure_law_, failure_); }

  bool trial(const std::vector<version>& set, law_report& rep) {
    auto whole = ask(0, set);
    if (!whole)
      return failed_ask(rep);
    auto outcome = view(set, *whole);
    // order: shuffled input, another instance.
    auto shuffled = set;
    std::shuffle(shuffled.begin(), shuffled.end(), rng_);
    auto again = ask(1, shuffled, /*sorted=*/false);
    if (!again)
      return failed_ask(rep);
    if (!(*again == *whole))
      return fail(rep, "order",
                  "on " + show(set) + " one instance answered " + show(*whole) +
                    ", and another, given the same versions as " + show(shuffled) + ", answered " +
                    show(*again));
    // grouping
    std::string how;
    auto grouped = fold(set, how);
    if (!grouped)
      return failed_ask(rep);
    if (shown(*grouped) != shown(outcome))
      return fail(rep, "grouping",
                  "resolving " + show(set) + " at once shows " + shown(outcome) +
                    ", but resolving it grouped as " + how + " shows " + shown(*grouped));
    // idempotent
    std::vector<version> extra;
    for (auto& v : set)
      if (rng_() % 2 &&
          std::none_of(outcome.begin(), outcome.end(), [&](auto& o) { return o.id == v.id; }))
        extra.push_back(v);
    if (!extra.empty()) {
      auto with = outcome;
      with.insert(with.end(), extra.begin(), extra.end());
      auto r = ask(0, with);
      if (!r)
        return failed_ask(rep);
      std::sort(with.begin(), with.end(), [](auto& x, auto& y) { return x.id < y.id; });
      auto twice = view(with, *r);
      if (shown(twice) != shown(outcome))
        return fail(rep, "idempotent",
                    "resolving " + show(set) + " shows " + shown(outcome) +
                      ", but resolving that outcome " + show(outcome) +
                      " again with versions it covers, " + show(extra) + ", shows " + shown(twice));
    }
    return replicas(set, rep);
  }

  // The real replica code: each replica writes one version; they exchange them in random
  // orders and answer conflicts at random moments, some late.
  // A mesh of `n` replicas with memory stores.
  static std::vector<std::unique_ptr<core::replica>> mesh(messages::node_index n) {
    std::vector<std::unique_ptr<core::replica>> rs;
    for (messages::node_index i = 0; i < n; ++i) {
      core::replica_config cfg;
      cfg.self = i;
      cfg.incarnation = 1 + i;
      cfg.forward_to.resize(n);
      for (messages::node_index j = 0; j < n; ++j)
        if (j != i)
          cfg.forward_to[i].push_back(j);
      rs.push_back(std::make_unique<core::replica>(cfg, storage::make_memory_store()));
    }
    return rs;
  }

  // Every replica shows the same value for `key`, and it is what resolving the versions
  // they hold shows.
  bool agree(const std::vector<std::unique_ptr<core::replica>>& rs, const std::string& key,
             const std::vector<version>& set, law_report& rep) {
    auto first = shown(core::typed::shown_registers(rs[0]->versions(key)));
    for (size_t i = 1; i < rs.size(); ++i) {
      auto here = shown(core::typed::shown_registers(rs[i]->versions(key)));
      if (here != first)
        return fail(rep, "replicas",
                    std::to_string(rs.size()) + " replicas each wrote one of " + show(set) +
                      " and exchanged them: n0 shows " + first + ", n" + std::to_string(i) +
                      " shows " + here);
    }
    auto regs = core::typed::registers(rs[0]->versions(key));
    auto expected = regs.size() < 2 ? shown(regs) : std::string();
    if (regs.size() >= 2) {
      auto r = ask(0, regs);
      if (!r)
        return failed_ask(rep);
      expected = shown(view(regs, *r));
    }
    if (first != expected)
      return fail(rep, "replicas",
                  "replicas that exchanged " + show(set) + " show " + first +
                    ", but resolving the versions they hold, " + show(regs) + ", shows " +
                    expected);
    return true;
  }

  bool replicas(const std::vector<version>& set, law_report& rep) {
    auto n = static_cast<messages::node_index>(set.size());
    auto rs = mesh(n);
    const std::string key = "law-check";
    uint64_t now = 1'000'000;
    for (messages::node_index i = 0; i < n; ++i) {
      core::write_request w;
      w.key = key;
      w.op = set[i].tombstone ? messages::op_kind::del : messages::op_kind::put;
      w.value = set[i].value;
      rs[i]->write(w, now + rng_() % 3);
    }
    std::vector<std::pair<messages::node_index, core::conflict>> pending;
    auto take = [&](messages::node_index i) {
      for (auto& c : rs[i]->take_ready().conflicts)
        pending.emplace_back(i, std::move(c));
    };
    std::map<std::pair<messages::node_index, messages::node_index>, uint64_t> cursors;
    auto ship = [&](messages::node_index a, messages::node_index b) {
      auto& cur = cursors[{a, b}];
      auto got = rs[a]->fetch(b, cur, 1u << 20, 1u << 20);
      cur = got.next;
      bool moved = !got.batch.events.empty();
      if (moved) {
        rs[b]->receive(std::move(got.batch), now);
        take(b);
      }
      return moved;
    };
    auto answer = [&](size_t which) {
      auto [node, c] = pending[which];
      pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(which));
      auto r = ask(node % 2, c.versions);
      if (!r)
        return false;
      if (r->merge)
        rs[node]->merge(c, r->value);
      else
        rs[node]->resolve(c, r->keep);
      take(node);
      return true;
    };
    for (messages::node_index i = 0; i < n; ++i)
      take(i);
    for (uint64_t step = 0; step < uint64_t{4} * n * n; ++step) {
      if (!pending.empty() && rng_() % 3 == 0) {
        if (!answer(rng_() % pending.size()))
          return failed_ask(rep);
        continue;
      }
      auto a = static_cast<messages::node_index>(rng_() % n);
      auto b = static_cast<messages::node_index>(rng_() % n);
      if (a != b)
        ship(a, b);
    }
    for (int round = 0; round < 100; ++round) {
      bool moved = false;
      for (messages::node_index a = 0; a < n; ++a)
        for (messages::node_index b = 0; b < n; ++b)
          if (a != b)
            moved |= ship(a, b);
      while (!pending.empty()) {
        moved = true;
        if (!answer(rng_() % pending.size()))
          return failed_ask(rep);
      }
      if (!moved)
        break;
    }
    return agree(rs, key, set, rep);
  }

  law_options o_;
  std::mt19937_64 rng_;
  caf::actor_system_config cfg_;
  caf::actor_system sys_{cfg_};
  caf::scoped_actor self_;
  resolvers::resolver_actor instances_[2];
  std::string failure_;
  std::string failure_law_;
};

} // namespace

law_report check_resolver_laws(const resolvers::resolver_factory& make, const law_options& o) {
  checker c(make, o);
  return c.run();
}

} // namespace mlr::node
