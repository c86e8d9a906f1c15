// The conflict feed (DESIGN.md, "Convergent data types"): every outcome the resolver gave,
// or its failure, as a record in the store under `conflict.<seq>` (twenty digits, so that
// names sort as numbers), written with the outcome's commit. The range kept and its size
// live under `conflict_feed`; the oldest records are trimmed to the configured bound.

#include "core/replica.hpp"
#include "storage/serialize.hpp"

#include <cstdio>
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

void replica::recover_feed() {
  auto raw = store_->get_meta(feed_state_name);
  if (!raw)
    return;
  std::istringstream in(*raw);
  feed_state f;
  if (in >> f.first >> f.next >> f.bytes && f.first >= 1 && f.first <= f.next)
    feed_ = f;
}

void replica::record(conflict_record r, const decided_by& by) {
  dirty_ = true; // the record goes with the outcome's commit
  if (cfg_.conflict_feed_records == 0)
    return;
  r.seq = feed_.next++;
  r.resolver = by.resolver;
  r.at_ms = by.at_ms;
  size_t input_bytes = 0;
  for (auto& v : r.versions)
    input_bytes += v.value.size();
  if (input_bytes > cfg_.conflict_feed_bytes / 16) {
    r.values_cut = true;
    for (auto& v : r.versions)
      if (v.value.size() > cut_value_bytes)
        v.value.resize(cut_value_bytes);
    if (r.value.size() > cut_value_bytes)
      r.value.resize(cut_value_bytes);
  }
  auto bytes = storage::serialize(r);
  feed_.bytes += bytes.size();
  store_->put_meta(record_name(r.seq), std::move(bytes));
  // Trim the oldest: to the count, and to the bytes (the newest record always stays).
  while (feed_.first < feed_.next &&
         (feed_.next - feed_.first > cfg_.conflict_feed_records ||
          (feed_.bytes > cfg_.conflict_feed_bytes && feed_.next - feed_.first > 1))) {
    auto name = record_name(feed_.first++);
    if (auto old = store_->get_meta(name))
      feed_.bytes -= std::min<uint64_t>(feed_.bytes, old->size());
    store_->erase_meta(name);
  }
  store_->put_meta(feed_state_name, std::to_string(feed_.first) + " " + std::to_string(feed_.next) +
                                      " " + std::to_string(feed_.bytes));
}

std::vector<conflict_record> replica::conflicts(uint64_t after, size_t limit,
                                                size_t max_bytes) const {
  std::vector<conflict_record> out;
  if (limit == 0 || after >= feed_.next - 1) // (next >= 1; a huge `after` cannot wrap)
    return out;
  size_t bytes = 0;
  auto from = after == 0 ? std::string() : record_name(after);
  for (auto& [name, raw] : store_->meta_range(feed_prefix, from, limit)) {
    if (!out.empty() && bytes + raw.size() > max_bytes)
      break;
    auto r = storage::deserialize_conflict_record(raw);
    if (!r)
      continue; // a corrupt record is skipped, not fatal (the rest of the feed reads)
    bytes += raw.size();
    out.push_back(std::move(*r));
  }
  return out;
}

} // namespace mlr::core
