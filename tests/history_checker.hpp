#pragma once
// An invariant checker that also keeps the causal history, for simulation tests that
// compare every node with a sequential specification of what was written.

#include "invariant_checker.hpp"

#include <map>
#include <set>

namespace mlr::testing {

// The invariant checker, keeping every applied event too (the union over all nodes: each
// event is applied at least at its origin, and no incarnation loses its disk here).
class history_checker : public invariant_checker {
public:
  void on_apply(messages::node_index self, const messages::event& e, bool local) override {
    invariant_checker::on_apply(self, e, local);
    events_.emplace(e.id, e);
    auto& seen = seen_[self];
    if (local)
      past_.emplace(e.id, seen); // what its origin had applied when it wrote it
    seen.insert(e.id);
  }
  void on_state_transfer(messages::node_index self, const messages::version_vector& vv) override {
    invariant_checker::on_state_transfer(self, vv);
    for (auto& [d, e] : events_)
      if (vv.covers(d))
        seen_[self].insert(d);
  }
  /// (Called by sim_cluster::restart, which takes the checker's own type.)
  void on_restart(messages::node_index self, const messages::version_vector& applied,
                  const messages::version_vector& retired) {
    invariant_checker::on_restart(self, applied, retired);
    auto& seen = seen_[self];
    for (auto i = seen.begin(); i != seen.end();)
      i = applied.covers(*i) || retired.covers(*i) ? std::next(i) : seen.erase(i);
  }
  const std::map<messages::dot, messages::event>& events() const { return events_; }
  /// Per event, every event its origin had applied before it: its causal past as the test
  /// saw it, not as the implementation wrote it into the event's context.
  const std::map<messages::dot, std::set<messages::dot>>& pasts() const { return past_; }

private:
  std::map<messages::dot, messages::event> events_;
  std::map<messages::node_index, std::set<messages::dot>> seen_;
  std::map<messages::dot, std::set<messages::dot>> past_;
};

} // namespace mlr::testing
