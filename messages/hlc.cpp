#include "messages/hlc.hpp"

#include <algorithm>

namespace mlr::messages {

hlc hlc_clock::tick(uint64_t now_ms) {
  if (now_ms > last_.physical_ms()) {
    last_ = hlc::make(now_ms, 0);
  } else if (last_.logical() < 0xffff) {
    last_ = hlc{last_.value + 1};
  } else if (last_.physical_ms() < (uint64_t{1} << (64 - hlc::logical_bits)) - 1) {
    // The logical counter is exhausted within one millisecond: borrow the next one.
    last_ = hlc::make(last_.physical_ms() + 1, 0);
  } // else: the end of time (a value from a broken or hostile clock): stay there, never wrap
  return last_;
}

void hlc_clock::observe(hlc remote, uint64_t now_ms) {
  auto cap = hlc::make(now_ms + max_offset_ms_, 0xffff);
  auto folded = std::min(remote, cap);
  if (last_ < folded)
    last_ = folded;
}

} // namespace mlr::messages
