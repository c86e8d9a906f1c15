#pragma once
// Where each event a node holds sits in its replication log, by dot: what lets a pull
// answer find events without scanning the log. Per source, positions are kept in runs of
// consecutive counters (a state transfer makes a source's counters jump), and entries for
// events that left the log are dropped with it, so the index is as large as the log, not
// as the history (it used to keep 8 bytes per event ever applied).

#include "messages/dot.hpp"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <vector>

namespace mlr::core {

class position_index {
public:
  static constexpr uint64_t not_in_log = UINT64_MAX;

  /// Records that dot `d` sits at log position `pos`. A source's dots come in counter
  /// order, at increasing positions; a counter that jumps starts a new run.
  void set(const messages::dot& d, uint64_t pos) {
    auto& runs = by_source_[d.origin];
    if (!runs.empty()) {
      auto& last = runs.back();
      auto next = last.first + last.pos.size();
      if (d.counter == next) {
        last.pos.push_back(pos);
        return;
      }
      if (d.counter < next) { // already indexed: replace (re-indexing at recovery)
        for (auto& r : runs)
          if (d.counter >= r.first && d.counter < r.first + r.pos.size()) {
            r.pos[d.counter - r.first] = pos;
            return;
          }
        return; // older than what is kept: that part of the log is gone
      }
    }
    runs.push_back(run{d.counter, {pos}});
  }

  /// The position of `d`, or not_in_log when it is not (or no longer) in the log.
  uint64_t find(const messages::dot& d) const {
    auto i = by_source_.find(d.origin);
    if (i == by_source_.end())
      return not_in_log;
    auto& runs = i->second;
    auto r = std::upper_bound(runs.begin(), runs.end(), d.counter,
                              [](uint64_t c, const run& x) { return c < x.first; });
    if (r == runs.begin())
      return not_in_log;
    --r;
    return d.counter < r->first + r->pos.size() ? r->pos[d.counter - r->first] : not_in_log;
  }

  /// Forgets every position before `log_begin` (the log was compacted up to there).
  void drop_before(uint64_t log_begin) {
    for (auto s = by_source_.begin(); s != by_source_.end();) {
      auto& runs = s->second;
      while (!runs.empty()) {
        auto& r = runs.front();
        while (!r.pos.empty() && r.pos.front() < log_begin) {
          r.pos.pop_front();
          ++r.first;
        }
        if (!r.pos.empty())
          break;
        runs.erase(runs.begin());
      }
      s = runs.empty() ? by_source_.erase(s) : std::next(s);
    }
  }

  void erase(const messages::source& s) { by_source_.erase(s); }

  /// Positions held, in all.
  size_t entries() const {
    size_t n = 0;
    for (auto& [s, runs] : by_source_)
      for (auto& r : runs)
        n += r.pos.size();
    return n;
  }

private:
  struct run {
    uint64_t first = 0;       ///< counter of pos.front()
    std::deque<uint64_t> pos; ///< positions of counters first, first + 1, ...
  };
  std::map<messages::source, std::vector<run>> by_source_;
};

} // namespace mlr::core
