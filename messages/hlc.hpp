#pragma once
// Hybrid logical clock. A timestamp packs physical milliseconds (high 48 bits) and a
// logical counter (low 16 bits) into one 64-bit value, so timestamps compare as integers.
// HLCs order last-writer-wins and are shown to humans; they never decide causality.
//
// Contract (DESIGN.md, "Resolvers"): only the origin bounds a timestamp, when it writes.
// Receivers keep a received HLC exactly as sent and fold it into their own clock only up
// to `now + max_offset`, so one node with a clock far in the future cannot drag the
// others along.

#include <cstdint>

namespace mlr::messages {

struct hlc {
  uint64_t value = 0;

  static constexpr unsigned logical_bits = 16;
  static hlc make(uint64_t physical_ms, uint64_t logical) {
    return hlc{(physical_ms << logical_bits) | (logical & 0xffff)};
  }
  uint64_t physical_ms() const { return value >> logical_bits; }
  uint64_t logical() const { return value & 0xffff; }

  friend bool operator==(hlc a, hlc b) { return a.value == b.value; }
  friend bool operator!=(hlc a, hlc b) { return a.value != b.value; }
  friend bool operator<(hlc a, hlc b) { return a.value < b.value; }
  friend bool operator>(hlc a, hlc b) { return b.value < a.value; }
};

/// The clock state of one node. Wall time is passed in, never read here, so tests decide it.
class hlc_clock {
public:
  explicit hlc_clock(uint64_t max_offset_ms = 500) : max_offset_ms_(max_offset_ms) {}

  /// Timestamp for a local write at wall time `now_ms`: strictly after everything this
  /// clock has issued or observed.
  hlc tick(uint64_t now_ms);

  /// Folds a received timestamp into the clock, capped at `now_ms + max_offset`.
  void observe(hlc remote, uint64_t now_ms);

  hlc last() const { return last_; }
  /// Restores a clock after a restart; the clock never goes below it.
  void restore(hlc at_least) {
    if (last_ < at_least)
      last_ = at_least;
  }

private:
  uint64_t max_offset_ms_;
  hlc last_;
};

} // namespace mlr::messages
