// Tombstone collection (document::collect): tombstones whose deletes are stable forget
// their deleters, and those that one run was split into become one node again.

#include "core/text.hpp"

#include <algorithm>

namespace mlr::core::text {

size_t document::collect(const std::function<bool(const messages::dot&)>& stable) {
  std::vector<uint32_t> collected;
  for (auto i = deleters_.begin(); i != deleters_.end();) {
    if (std::all_of(i->second.begin(), i->second.end(), stable)) {
      collected.push_back(i->first);
      i = deleters_.erase(i);
    } else {
      ++i;
    }
  }
  for (auto x : collected)
    join_collected(x);
  if (!collected.empty() && free_.size() > items())
    if (auto rebuilt = decode(encode(), UINT64_MAX)) // the same document, in fresh memory
      *this = std::move(*rebuilt);
  return collected.size();
}

// a, right before b, and b are collected tombstones that one run was split into (what
// apply() and split_at() would have left as one node had nobody deleted in between):
// the same origin and consecutive seqs, b's left a's last character, the same right.
bool document::joinable(uint32_t a, uint32_t b) const {
  if (a == nil || b == nil)
    return false;
  auto& x = nodes_[a];
  auto& y = nodes_[b];
  return x.deleted && y.deleted && !deleters_.count(a) && !deleters_.count(b) &&
         x.origin == y.origin && x.seq + x.len == y.seq && y.left == id_of(a, x.len - 1) &&
         y.right == x.right && static_cast<uint64_t>(x.len) + y.len <= UINT32_MAX;
}

void document::absorb(uint32_t a, uint32_t b) {
  auto [before, rest] = split(root_, rank(b));
  auto [alone, after] = split(rest, 1);
  root_ = merge(before, after);
  if (root_ != nil)
    nodes_[root_].p = nil;
  by_id_[nodes_[b].origin].erase(nodes_[b].seq);
  nodes_[a].len += nodes_[b].len;
  update_up(a);
  nodes_[b] = node{};
  free_.push_back(b);
}

// x was just collected (a slot already joined into a neighbour is free, and skipped).
void document::join_collected(uint32_t x) {
  if (!nodes_[x].deleted || nodes_[x].len == 0)
    return;
  while (joinable(x, next(x)))
    absorb(x, next(x));
  if (auto p = prev(x); joinable(p, x))
    absorb(p, x);
}

} // namespace mlr::core::text
