// The text document's operations: local edits by index, and applying inserts (YATA's
// integration) and deletes by id.

#include "core/text.hpp"

#include <algorithm>
#include <unordered_set>

namespace mlr::core::text {

// Where an insert goes between `left` (its left origin's node, nil: the start) and
// `right` (its right origin's node, nil: the end): after the node this returns (nil: at
// the start). The elements between them are concurrent inserts; YATA's rule, as Yjs has
// it: one with the same left origin goes first if its origin is smaller, and the scan
// stops at one from a larger origin with the same right origin; one whose left origin
// was passed in this scan is skipped over with what it was inserted after, unless that is
// still in contention; anything else ends the scan.
uint32_t document::integrate_position(const insert_op& op, uint32_t left, uint32_t right) {
  std::unordered_set<uint32_t> before;
  std::unordered_set<uint32_t> conflicting;
  for (auto o = left == nil ? first() : next(left); o != nil && o != right; o = next(o)) {
    before.insert(o);
    conflicting.insert(o);
    const auto& n = nodes_[o];
    if (n.left == op.left) {
      if (origins_[n.origin] < op.origin) {
        left = o;
        conflicting.clear();
      } else if (n.right == op.right) {
        break;
      }
    } else if (auto origin = n.left ? find(*n.left) : nil; origin != nil && before.count(origin)) {
      if (!conflicting.count(origin)) {
        left = o;
        conflicting.clear();
      }
    } else {
      break;
    }
  }
  return left;
}

// The insert continues `left`'s run (same origin, the next seqs, typed right after its
// last character with the same right origin), and nothing stands between them: it joins
// that node instead of becoming one.
bool document::try_extend(uint32_t left, const insert_op& op, uint32_t origin) {
  if (left == nil)
    return false;
  auto& n = nodes_[left];
  if (n.deleted || n.origin != origin || n.seq + n.len != op.first_seq || n.right != op.right ||
      !op.left || *op.left != id_of(left, n.len - 1) ||
      static_cast<uint64_t>(n.len) + op.text.size() > UINT32_MAX)
    return false;
  n.len += static_cast<uint32_t>(op.text.size());
  n.chars += op.text;
  update_up(left);
  return true;
}

// Whether an insert may be applied: an origin's inserts come in the order it made them
// (causal delivery), each taking the next seqs and a higher counter; the text is code
// points; its left and right origins are known here, the left one before the right one.
// An honest peer's insert always passes; anything else could place it differently at
// different replicas, so it is refused.
document::verdict document::check(const insert_op& op) const {
  if (op.text.size() > UINT32_MAX || op.first_seq > UINT64_MAX - op.text.size())
    return verdict::refused;
  auto next = next_seq(op.origin);
  if (op.first_seq < next) // applied before (or overlapping what was: refused)
    return op.first_seq + op.text.size() <= next ? verdict::applied : verdict::refused;
  if (op.first_seq != next)
    return verdict::refused; // a gap: an insert of its origin is missing
  if (auto o = origin_of_.find(op.origin);
      o != origin_of_.end() && !inserted_by_[o->second].empty() &&
      inserted_by_[o->second].back().last_counter() >= op.counter)
    return verdict::refused;
  for (char32_t c : op.text)
    if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
      return verdict::refused;
  auto l = op.left ? find(*op.left) : nil;
  auto r = op.right ? find(*op.right) : nil;
  if ((op.left && l == nil) || (op.right && r == nil))
    return verdict::refused;
  if (l != nil && r != nil && (l == r ? op.right->seq <= op.left->seq : rank(l) >= rank(r)))
    return verdict::refused; // the right origin is not after the left one
  return verdict::ok;
}

std::optional<std::vector<delta>> document::apply(const insert_op& op) {
  std::vector<delta> out;
  if (op.text.empty())
    return out;
  if (auto v = check(op); v != verdict::ok)
    return v == verdict::applied ? std::optional<std::vector<delta>>(out) : std::nullopt;
  auto o = origin_index(op.origin);
  if (op.left)
    node_ending_at(*op.left);
  auto right = op.right ? node_starting_at(*op.right) : nil;
  auto left = integrate_position(op, op.left ? find(*op.left) : nil, right);
  uint64_t at = 0;
  if (left != nil && try_extend(left, op, o)) {
    at = visible_before(left) + nodes_[left].len - op.text.size();
  } else {
    node x;
    x.origin = o;
    x.seq = op.first_seq;
    x.len = static_cast<uint32_t>(op.text.size());
    x.left = op.left;
    x.right = op.right;
    x.chars = op.text;
    rng_ ^= rng_ << 13, rng_ ^= rng_ >> 17, rng_ ^= rng_ << 5;
    x.prio = rng_;
    auto position = left == nil ? 0 : rank(left) + 1;
    auto id = add_node(std::move(x));
    update(id);
    index(id);
    insert_at(position, id);
    at = visible_before(id);
  }
  next_seq_[o] = std::max(next_seq_[o], op.first_seq + op.text.size());
  record_insert(o, op.first_seq, op.counter);
  out.push_back(delta{true, at, op.text, 0});
  return out;
}

std::optional<std::vector<delta>> document::apply(const delete_op& op) {
  // Ranges must not overlap (an honest delete names each character once; overlapping ones
  // would cost ranges x items), and every character named must be known, before anything
  // changes.
  std::vector<std::pair<messages::source, std::pair<uint64_t, uint64_t>>> sorted;
  for (auto& r : op.ranges) {
    if (r.len == 0 || r.seq > UINT64_MAX - r.len || r.seq + r.len > next_seq(r.origin))
      return std::nullopt;
    sorted.push_back({r.origin, {r.seq, r.seq + r.len}});
  }
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i].first == sorted[i - 1].first &&
        sorted[i].second.first < sorted[i - 1].second.second)
      return std::nullopt;
  for (auto& r : op.ranges) {
    for (auto seq = r.seq; seq < r.seq + r.len;) {
      auto x = find(char_id{r.origin, seq});
      if (x == nil)
        return std::nullopt;
      seq = nodes_[x].seq + nodes_[x].len;
    }
  }
  std::vector<delta> out;
  for (auto& r : op.ranges) {
    auto end = r.seq + r.len;
    for (auto seq = r.seq; seq < end;) {
      if (auto c = find(char_id{r.origin, seq}); nodes_[c].deleted && !deleters_.count(c)) {
        seq = nodes_[c].seq + nodes_[c].len; // collected: deleted at every version, left whole
        continue;
      }
      auto x = node_starting_at(char_id{r.origin, seq});
      if (nodes_[x].seq + nodes_[x].len > end)
        split_at(x, end - seq);
      seq = nodes_[x].seq + nodes_[x].len;
      auto& n = nodes_[x];
      if (deleted_by(x, op.id))
        continue; // this delete was applied here before
      deleters_[x].push_back(op.id);
      if (n.deleted)
        continue; // a concurrent delete removed it already
      auto at = visible_before(x);
      n.deleted = true;
      n.chars.clear();
      n.chars.shrink_to_fit();
      update_up(x);
      if (!out.empty() && !out.back().insert && out.back().index == at)
        out.back().count += nodes_[x].len;
      else
        out.push_back(delta{false, at, {}, nodes_[x].len});
    }
  }
  return out;
}

bool document::deleted_by(uint32_t x, const messages::dot& id) const {
  auto d = deleters_.find(x);
  return d != deleters_.end() &&
         std::find(d->second.begin(), d->second.end(), id) != d->second.end();
}

insert_op document::insert(const messages::dot& id, uint64_t index, const std::u32string& text,
                           const version* at, std::vector<delta>* applied) {
  insert_op op;
  op.origin = id.origin;
  op.counter = id.counter;
  op.first_seq = next_seq(id.origin);
  op.text = text;
  place(op, index, at);
  auto d = apply(op);
  if (!d)
    op.text.clear(); // not applied (text past 4 Gi characters, bad code points): nothing to send
  else if (applied)
    *applied = std::move(*d);
  return op;
}

// The insert's left and right origins: the character before `index` and the element
// right after it, in the document now, or as it was at `at` (elements inserted since are
// passed over: the author did not know them).
void document::place(insert_op& op, uint64_t index, const version* at) {
  if (!at) {
    index = std::min(index, length());
    if (index == 0) {
      if (auto f = first(); f != nil)
        op.right = id_of(f, 0);
      return;
    }
    auto [x, offset] = find_visible(index - 1);
    op.left = id_of(x, offset);
    if (offset + 1 < nodes_[x].len)
      op.right = id_of(x, offset + 1);
    else if (auto after = next(x); after != nil)
      op.right = id_of(after, 0);
    return;
  }
  auto f = frontier(*at);
  uint32_t x = nil;
  uint64_t offset = 0;
  if (index > 0) {
    auto found = find_visible_at(index - 1, *at, f);
    if (found.first == nil && found.second > 0) // past the end: clip
      found = find_visible_at(found.second - 1, *at, f);
    std::tie(x, offset) = found;
  }
  if (x != nil) {
    op.left = id_of(x, offset);
    if (nodes_[x].seq + offset + 1 < f[nodes_[x].origin] && offset + 1 < nodes_[x].len) {
      op.right = id_of(x, offset + 1);
      return;
    }
  }
  for (auto y = x == nil ? first() : next(x); y != nil; y = next(y))
    if (exists_at(y, f)) {
      op.right = id_of(y, 0);
      return;
    }
}

std::vector<uint64_t> document::frontier(const version& v) const {
  std::vector<uint64_t> f(origins_.size(), UINT64_MAX);
  for (size_t o = 0; o < origins_.size(); ++o) {
    auto seen = v.find(origins_[o]);
    uint64_t upto = seen == v.end() ? 0 : seen->second;
    auto& by = inserted_by_[o];
    // Counters grow with seqs at an origin: the first insert past `upto`, by bisection.
    auto later = std::partition_point(by.begin(), by.end(),
                                      [&](auto& run) { return run.last_counter() <= upto; });
    if (later == by.end())
      continue;
    uint64_t k = upto < later->counter ? 0 : (upto - later->counter) / later->counter_step + 1;
    f[o] = later->seq + k * later->seq_step;
  }
  return f;
}

// Inserts arrive in their origin's order (check() holds them to it): each extends the last
// run when it takes the same steps.
void document::record_insert(uint32_t origin, uint64_t seq, uint64_t counter) {
  auto& by = inserted_by_[origin];
  if (!by.empty()) {
    auto& run = by.back();
    auto last_seq = run.seq + (run.count - 1) * run.seq_step;
    auto last_counter = run.last_counter();
    if (run.count == 1) {
      run.seq_step = seq - last_seq;
      run.counter_step = counter - last_counter;
      ++run.count;
      return;
    }
    if (seq - last_seq == run.seq_step && counter - last_counter == run.counter_step) {
      ++run.count;
      return;
    }
  }
  by.push_back(insert_run{seq, counter, 0, 0, 1});
}

bool document::exists_at(uint32_t x, const std::vector<uint64_t>& f) const {
  return nodes_[x].seq < f[nodes_[x].origin];
}

uint64_t document::visible_at(uint32_t x, const std::vector<uint64_t>& f, const version& v) const {
  auto& n = nodes_[x];
  auto upto = f[n.origin];
  if (upto <= n.seq)
    return 0;
  if (n.deleted) {
    auto d = deleters_.find(x);
    if (d == deleters_.end())
      return 0; // collected: its deletes were stable
    for (auto& by : d->second)
      if (auto seen = v.find(by.origin); seen != v.end() && seen->second >= by.counter)
        return 0;
  }
  return std::min<uint64_t>(n.len, upto - n.seq);
}

// Like find_visible at version v; past the end: (nil, the length at v).
std::pair<uint32_t, uint64_t> document::find_visible_at(uint64_t index, const version& v,
                                                        const std::vector<uint64_t>& f) const {
  uint64_t total = 0;
  for (auto x = first(); x != nil; x = next(x)) {
    auto vis = visible_at(x, f, v);
    if (index < vis)
      return {x, index};
    index -= vis;
    total += vis;
  }
  return {nil, total};
}

delete_op document::erase(const messages::dot& id, uint64_t index, uint64_t count,
                          const version* at, std::vector<delta>* applied) {
  delete_op op;
  op.id = id;
  std::vector<uint64_t> f;
  if (at)
    f = frontier(*at);
  auto [x, offset] = at ? find_visible_at(index, *at, f) : find_visible(index);
  for (; x != nil && count > 0; x = next(x), offset = 0) {
    auto& n = nodes_[x];
    uint64_t vis = at ? visible_at(x, f, *at) : (n.deleted ? 0 : n.len);
    if (offset >= vis)
      continue;
    auto take = std::min<uint64_t>(vis - offset, count);
    auto& origin = origins_[n.origin];
    auto& last = op.ranges;
    if (!last.empty() && last.back().origin == origin &&
        last.back().seq + last.back().len == n.seq + offset)
      last.back().len += take;
    else
      last.push_back(id_range{origin, n.seq + offset, take});
    count -= take;
  }
  finish(op, applied);
  return op;
}

void document::finish(delete_op& op, std::vector<delta>* applied) {
  auto d = apply(op);
  if (!d)
    op.ranges.clear();
  else if (applied)
    *applied = std::move(*d);
}

delete_op document::erase_seen(const messages::dot& id, const version& seen,
                               std::vector<delta>* applied) {
  delete_op op;
  op.id = id;
  auto f = frontier(seen);
  for (auto x = first(); x != nil; x = next(x)) {
    auto& n = nodes_[x];
    if (n.seq >= f[n.origin])
      continue; // (tombstones too: every node then records the same deleters)
    auto take = std::min<uint64_t>(n.len, f[n.origin] - n.seq);
    auto& origin = origins_[n.origin];
    auto& last = op.ranges;
    if (!last.empty() && last.back().origin == origin && last.back().seq + last.back().len == n.seq)
      last.back().len += take;
    else
      last.push_back(id_range{origin, n.seq, take});
  }
  finish(op, applied);
  return op;
}

std::optional<uint64_t> document::index_of(const char_id& id) const {
  auto x = find(id);
  if (x == nil || nodes_[x].deleted)
    return std::nullopt;
  return visible_before(x) + (id.seq - nodes_[x].seq);
}

std::u32string document::read() const {
  return read(0, length());
}

std::u32string document::read(uint64_t start, uint64_t count) const {
  std::u32string out;
  auto [x, offset] = find_visible(start);
  for (; x != nil && count > 0; x = next(x), offset = 0) {
    auto& n = nodes_[x];
    if (n.deleted)
      continue;
    auto take = std::min<uint64_t>(n.len - offset, count);
    out.append(n.chars, offset, take);
    count -= take;
  }
  return out;
}

} // namespace mlr::core::text
