#pragma once
// LogCabin-style invariant checking, run by every leader after every message it handles
// and before every event it applies:
// - no dot is applied twice at a node;
// - an event is applied only after its true causal past, which the checker records out of
//   band (what the origin had applied when it wrote), never from the wire deps;
// - version vectors never go backwards;
// - applied events and the log agree (each application appends exactly one entry).
// - a write's context is part of its causal past: every dot it names was applied (or
//   brought by a state transfer) before the write, at its origin and everywhere else.
// A state transfer makes a node hold events it never applied one by one: they count as
// its causal past from then on, and are never to be applied there again.
// It only records; tests assert on `violations()` from their own thread.

#include "core/replica.hpp"

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace mlr::testing {

class invariant_checker : public core::replica_observer {
public:
  void on_apply(messages::node_index self, const messages::event& e, bool local) override {
    auto& mine = applied_[self];
    auto& jumped = jumped_[self];
    if (mine.count(e.id))
      fail(self, "applied " + messages::to_string(e.id) + " twice");
    if (jumped.covers(e.id))
      fail(self, "applied " + messages::to_string(e.id) + ", which a state transfer brought");
    for (auto& d : e.context)
      if (!mine.count(d) && !jumped.covers(d)) {
        fail(self, "applied " + messages::to_string(e.id) + " before " + messages::to_string(d) +
                     ", which its context names");
        break;
      }
    if (local) {
      past_[e.id] = mine;
    } else {
      auto p = past_.find(e.id);
      if (p == past_.end()) {
        fail(self, "applied " + messages::to_string(e.id) + ", which nobody wrote");
      } else {
        for (auto& d : p->second)
          if (!mine.count(d) && !jumped.covers(d)) {
            fail(self, "applied " + messages::to_string(e.id) + " before " +
                         messages::to_string(d) + " from its causal past");
            break;
          }
      }
    }
    mine.insert(e.id);
    trace_ = trace_ * 1099511628211ull + (self + 1) * 31 + e.id.counter * 7 + e.id.origin.node;
    ++applications_;
  }

  void on_handled(const core::replica& r) override {
    auto self = r.self().node;
    auto& last = last_vv_[self];
    // Retiring an incarnation moves its entry from the vector to the retired table.
    for (auto& [src, counter] : last.entries())
      if (r.applied().get(src) < counter && r.retired().get(src) < counter) {
        fail(self, "version vector went backwards: " + messages::to_string(last) + " -> " +
                     messages::to_string(r.applied()) + ", retired " +
                     messages::to_string(r.retired()));
        break;
      }
    last = r.applied();
    auto n = applied_[self].size();
    // After a state transfer (or with retired incarnations) the vector also counts events
    // that were never applied here one by one.
    bool exact = jumped_[self].empty() && r.retired().empty();
    auto held = r.applied().total() + r.retired().total();
    if (r.log_end() != n || (exact ? r.applied().total() != n : held < n))
      fail(self, "log has " + std::to_string(r.log_end()) + " entries, version vector " +
                   std::to_string(r.applied().total()) + ", but " + std::to_string(n) +
                   " events were applied");
  }

  void on_state_transfer(messages::node_index self, const messages::version_vector& vv) override {
    jumped_[self].merge(vv);
  }

  /// Node `self` restarted with what its store kept (`applied`: its recovered version
  /// vector and retired table; empty after an empty restart): what it applied before and did not
  /// keep is no longer applied there, and may be applied again.
  void on_restart(messages::node_index self, const messages::version_vector& applied,
                  const messages::version_vector& retired) {
    auto& mine = applied_[self];
    for (auto i = mine.begin(); i != mine.end();)
      i = applied.covers(*i) || retired.covers(*i) ? std::next(i) : mine.erase(i);
    auto kept = applied;
    kept.merge(retired);
    jumped_[self].intersect(kept);
    last_vv_[self] = applied;
  }

  const std::vector<std::string>& violations() const { return violations_; }
  /// A fingerprint of every application in order: equal runs have equal traces.
  uint64_t trace() const { return trace_; }
  uint64_t applications() const { return applications_; }
  size_t writes() const { return past_.size(); }

private:
  void fail(messages::node_index node, const std::string& what) {
    if (violations_.size() < 20)
      violations_.push_back("node " + std::to_string(node) + ": " + what);
  }

  std::map<messages::dot, std::set<messages::dot>> past_;
  std::map<messages::node_index, std::set<messages::dot>> applied_;
  std::map<messages::node_index, messages::version_vector> last_vv_;
  std::map<messages::node_index, messages::version_vector> jumped_;
  std::vector<std::string> violations_;
  uint64_t trace_ = 1469598103934665603ull;
  uint64_t applications_ = 0;
};

inline std::string describe(const std::vector<std::string>& violations) {
  std::ostringstream out;
  for (auto& v : violations)
    out << "\n  " << v;
  return out.str();
}

} // namespace mlr::testing
