#include "core/causal_buffer.hpp"

namespace mlr::core {

bool causal_buffer::ready(const messages::event& e, const messages::version_vector& applied,
                          const messages::version_vector& retired) {
  // After a retired incarnation's final counter, its next event follows that counter.
  if (std::max(applied.get(e.id.origin), retired.get(e.id.origin)) + 1 != e.id.counter)
    return false;
  for (auto& d : e.deps)
    if (!applied.covers(d) && !retired.covers(d))
      return false;
  return true;
}

causal_buffer::insert_result causal_buffer::insert(messages::event&& e) {
  if (contains(e.id))
    return insert_result::duplicate;
  auto b = messages::encoded_size_bound(e);
  if (size_ >= capacity_ || bytes_ + b > max_bytes_)
    return insert_result::full;
  auto counter = e.id.counter;
  auto origin = e.id.origin;
  by_source_[origin].emplace(counter, std::move(e));
  ++size_;
  bytes_ += b;
  return insert_result::buffered;
}

bool causal_buffer::contains(const messages::dot& d) const {
  auto i = by_source_.find(d.origin);
  return i != by_source_.end() && i->second.count(d.counter) > 0;
}

std::vector<uint64_t> causal_buffer::counters(const messages::source& s, uint64_t first,
                                              uint64_t last) const {
  std::vector<uint64_t> out;
  auto i = by_source_.find(s);
  if (i == by_source_.end())
    return out;
  for (auto j = i->second.lower_bound(first); j != i->second.end() && j->first <= last; ++j)
    out.push_back(j->first);
  return out;
}

std::vector<std::pair<messages::source, uint64_t>> causal_buffer::lowest() const {
  std::vector<std::pair<messages::source, uint64_t>> out;
  for (auto& [s, events] : by_source_)
    if (!events.empty())
      out.emplace_back(s, events.begin()->first);
  return out;
}

size_t causal_buffer::erase_source(const messages::source& s) {
  auto i = by_source_.find(s);
  if (i == by_source_.end())
    return 0;
  auto n = i->second.size();
  for (auto& [c, e] : i->second)
    bytes_ -= messages::encoded_size_bound(e);
  size_ -= n;
  by_source_.erase(i);
  return n;
}

std::optional<messages::event>
causal_buffer::release_ready(const messages::version_vector& applied,
                             const messages::version_vector& retired) {
  for (auto i = by_source_.begin(); i != by_source_.end(); ++i) {
    auto& events = i->second;
    // Anything at or below what was applied (or retired) is a stale duplicate: drop it on
    // the way.
    auto done = std::max(applied.get(i->first), retired.get(i->first));
    while (!events.empty() && events.begin()->first <= done) {
      bytes_ -= messages::encoded_size_bound(events.begin()->second);
      events.erase(events.begin());
      --size_;
    }
    if (events.empty())
      continue;
    auto first = events.begin();
    if (!ready(first->second, applied, retired))
      continue;
    bytes_ -= messages::encoded_size_bound(first->second);
    messages::event out = std::move(first->second);
    events.erase(first);
    --size_;
    if (events.empty())
      by_source_.erase(i);
    return out;
  }
  return std::nullopt;
}

} // namespace mlr::core
