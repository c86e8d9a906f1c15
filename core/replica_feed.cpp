// The conflict feed (DESIGN.md, "Convergent data types"): every outcome the resolver gave,
// or its failure, as a record in the store under `conflict.<seq>` (twenty digits, so that
// names sort as numbers), written with the outcome's commit. The range kept and its size
// live under `conflict_feed`; the oldest records are trimmed to the configured bound.

#include "core/replica.hpp"
#include "storage/serialize.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace mlr::core {

namespace {

const std::string feed_prefix = "conflict.";
const std::string feed_state_name = "conflict_feed";
constexpr size_t cut_value_bytes = 1024;

std::string record_name(uint64_t seq) {
  char digits[21];
  std::snprintf(digits, sizeof digits, "%020llu", static_cast<unsigned long long>(seq));
  return feed_prefix + digits;
}

} // namespace

// The range and size kept, from the feed's state; rebuilt from the records themselves if
// that is missing or unreadable while records exist (a reset would reuse their numbers).
void replica::recover_feed() {
  if (auto raw = store_->get_meta(feed_state_name)) {
    std::istringstream in(*raw);
    feed_state f;
    if (in >> f.first >> f.next >> f.bytes && f.first >= 1 && f.first <= f.next) {
      feed_ = f;
      return;
    }
  }
  feed_state f;
  bool any = false;
  std::string after;
  for (;;) {
    auto page = store_->meta_range(feed_prefix, after, 64);
    for (auto& [name, raw] : page) {
      auto seq = std::strtoull(name.c_str() + feed_prefix.size(), nullptr, 10);
      if (seq == 0)
        continue;
      if (!any)
        f.first = seq;
      any = true;
      f.next = std::max<uint64_t>(f.next, seq + 1);
      f.bytes += raw.size();
    }
    if (page.size() < 64)
      break;
    after = page.back().first;
  }
  if (any)
    feed_ = f;
}

// Records that leave the bounds (count, bytes), oldest first; the newest always stays
// unless no records are kept at all.
void replica::trim_feed() {
  while (feed_.first < feed_.next &&
         (feed_.next - feed_.first > cfg_.conflict_feed_records ||
          (feed_.bytes > cfg_.conflict_feed_bytes && feed_.next - feed_.first > 1))) {
    auto name = record_name(feed_.first++);
    if (auto old = store_->get_meta(name))
      feed_.bytes -= std::min<uint64_t>(feed_.bytes, old->size());
    store_->erase_meta(name);
  }
  if (feed_.first == feed_.next)
    feed_.bytes = 0;
  store_->put_meta(feed_state_name, std::to_string(feed_.first) + " " + std::to_string(feed_.next) +
                                      " " + std::to_string(feed_.bytes));
}

void replica::record(conflict_record r, const decided_by& by) {
  dirty_ = true; // the record goes with the outcome's commit
  if (!r.resolved) {
    // A resolver that keeps failing is asked again every second: one record per failing
    // question, not one per retry, or it would wash the history out of the feed.
    auto inputs = r.inputs();
    auto& last = unresolved_inputs_[r.key];
    if (last == inputs)
      return;
    last = std::move(inputs);
    if (unresolved_inputs_.size() > 10000)
      unresolved_inputs_.clear();
  } else {
    unresolved_inputs_.erase(r.key);
  }
  if (cfg_.conflict_feed_records == 0) {
    if (feed_.first < feed_.next)
      trim_feed(); // records an earlier run kept go too
    return;
  }
  r.seq = feed_.next++;
  r.resolver = by.resolver;
  r.at_ms = by.at_ms;
  // One record stays far below a frame (64 MiB): at most a sixteenth of the feed's bytes
  // and 1 MiB of values, else each value keeps its first 1 KiB (or nothing, when even that
  // is too much: a key with very many siblings).
  size_t budget = std::min<size_t>(cfg_.conflict_feed_bytes / 16, 1u << 20);
  size_t value_bytes = r.value.size();
  for (auto& v : r.versions)
    value_bytes += v.value.size();
  if (value_bytes > budget) {
    r.values_cut = true;
    size_t each = (r.versions.size() + 1) * cut_value_bytes > budget ? 0 : cut_value_bytes;
    for (auto& v : r.versions)
      if (v.value.size() > each)
        v.value.resize(each);
    if (r.value.size() > each)
      r.value.resize(each);
  }
  auto bytes = storage::serialize(r);
  feed_.bytes += bytes.size();
  store_->put_meta(record_name(r.seq), std::move(bytes));
  trim_feed();
}

std::vector<conflict_record> replica::conflicts(uint64_t after, size_t limit,
                                                size_t max_bytes) const {
  std::vector<conflict_record> out;
  if (limit == 0 || after >= feed_.next - 1) // (next >= 1; a huge `after` cannot wrap)
    return out;
  // From the first record kept (not over the erased ones), a few records at a time, so
  // that what is read stays near the budget. The budget counts what a record costs on the
  // wire too (each version about 64 bytes beyond its value).
  after = std::max(after, feed_.first - 1);
  size_t bytes = 0;
  auto from = after == 0 ? std::string() : record_name(after);
  while (out.size() < limit) {
    auto page = store_->meta_range(feed_prefix, from, std::min<size_t>(limit - out.size(), 16));
    for (auto& [name, raw] : page) {
      auto r = storage::deserialize_conflict_record(raw);
      from = name;
      if (!r)
        continue; // a corrupt record is skipped, not fatal (the rest of the feed reads)
      auto cost = raw.size() + 64 * (r->versions.size() + r->kept.size());
      if (!out.empty() && bytes + cost > max_bytes)
        return out;
      bytes += cost;
      out.push_back(std::move(*r));
    }
    if (page.size() < 16 || bytes >= max_bytes)
      break;
  }
  return out;
}

} // namespace mlr::core
