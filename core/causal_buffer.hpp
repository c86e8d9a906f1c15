#pragma once
// Holds remote events whose causal past has not been applied yet. An event is ready when
// the version vector holds its origin's previous event and covers its deps (a delta
// against that previous event, so the previous event's own deps are already covered).
// Deps are the origin's own knowledge, a DAG, so waiting can never form a cycle.
//
// Events of one source can only become ready in counter order, so the buffer keeps them
// per source, sorted, and `release_ready` looks only at each source's lowest counter.

#include "messages/event.hpp"
#include "messages/version_vector.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace mlr::core {

class causal_buffer {
public:
  /// At most `capacity` events and `max_bytes` bytes of them (messages::encoded_size_bound).
  explicit causal_buffer(size_t capacity, size_t max_bytes = SIZE_MAX)
      : capacity_(capacity), max_bytes_(max_bytes) {}

  /// True when the event can be applied now against `applied`; deps of retired
  /// incarnations count as covered up to their final counter in `retired`.
  static bool ready(const messages::event& e, const messages::version_vector& applied,
                    const messages::version_vector& retired);

  enum class insert_result { buffered, duplicate, full };
  /// Takes `e` only when it is buffered (a full buffer leaves it to the caller).
  insert_result insert(messages::event&& e);

  bool contains(const messages::dot& d) const;

  /// The buffered counters of `s` within [first, last], ascending: a walk over what is
  /// held, never over the range (whose ends may come from the network).
  std::vector<uint64_t> counters(const messages::source& s, uint64_t first, uint64_t last) const;

  /// Removes and returns one event that is ready against `applied`, if any. Events at or
  /// below what `applied` or the retired table holds are dropped on the way (duplicates).
  std::optional<messages::event> release_ready(const messages::version_vector& applied,
                                               const messages::version_vector& retired);

  /// Each buffered source with its lowest buffered counter.
  std::vector<std::pair<messages::source, uint64_t>> lowest() const;
  /// Drops every buffered event of `s`; returns how many.
  size_t erase_source(const messages::source& s);

  /// Visits the buffered events of `s`, ascending.
  template <class F> void for_each_of(const messages::source& s, F fn) const {
    auto i = by_source_.find(s);
    if (i != by_source_.end())
      for (auto& [c, e] : i->second)
        fn(e);
  }

  /// Visits every buffered event.
  template <class F> void for_each(F fn) const {
    for (auto& [s, events] : by_source_)
      for (auto& [c, e] : events)
        fn(e);
  }

  size_t size() const { return size_; }
  size_t bytes() const { return bytes_; }
  size_t capacity() const { return capacity_; }

private:
  size_t capacity_;
  size_t max_bytes_;
  size_t size_ = 0;
  size_t bytes_ = 0;
  std::map<messages::source, std::map<uint64_t, messages::event>> by_source_;
};

} // namespace mlr::core
