// The text document: a treap of runs in document order (each node counts the visible
// characters below it) and, per origin, a map from each run's first seq to its node.

#include "core/text.hpp"

#include <algorithm>
#include <unordered_set>

namespace mlr::core::text {

std::optional<std::u32string> from_utf8(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    auto b = static_cast<unsigned char>(s[i]);
    size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3 : (b >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > s.size())
      return std::nullopt;
    char32_t c = n == 1 ? b : n == 2 ? (b & 0x1f) : n == 3 ? (b & 0x0f) : (b & 0x07);
    for (size_t k = 1; k < n; ++k) {
      auto t = static_cast<unsigned char>(s[i + k]);
      if ((t >> 6) != 0x2)
        return std::nullopt;
      c = (c << 6) | (t & 0x3f);
    }
    static constexpr char32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < least[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
      return std::nullopt; // overlong, past Unicode, or a surrogate
    out.push_back(c);
    i += n;
  }
  return out;
}

std::string to_utf8(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      out.push_back(static_cast<char>(0xc0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
    } else if (c < 0x10000) {
      out.push_back(static_cast<char>(0xe0 | (c >> 12)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
    } else {
      out.push_back(static_cast<char>(0xf0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
    }
  }
  return out;
}

std::pair<uint64_t, uint64_t> range_of(int64_t start, int64_t end, uint64_t length) {
  auto n = static_cast<int64_t>(std::min<uint64_t>(length, INT64_MAX));
  int64_t from = start < 0 ? n + start : start, to = end < 0 ? n + end : end;
  from = std::max<int64_t>(from, 0);
  to = std::min(std::max<int64_t>(to, 0), n - 1);
  if (n == 0 || from > to)
    return {0, 0};
  return {static_cast<uint64_t>(from), static_cast<uint64_t>(to - from + 1)};
}

document::document() = default;

uint64_t document::length() const {
  return visible_of(root_);
}

uint64_t document::next_seq(const messages::source& origin) const {
  auto i = origin_of_.find(origin);
  return i == origin_of_.end() ? 0 : next_seq_[i->second];
}

uint32_t document::origin_index(const messages::source& s) {
  auto [i, added] = origin_of_.emplace(s, static_cast<uint32_t>(origins_.size()));
  if (added) {
    origins_.push_back(s);
    by_id_.emplace_back();
    next_seq_.push_back(0);
    inserted_by_.emplace_back();
  }
  return i->second;
}

// --- the treap ---

void document::update(uint32_t x) {
  auto& n = nodes_[x];
  n.visible = visible_of(n.l) + visible_of(n.r) + (n.deleted ? 0 : n.len);
  n.count = count_of(n.l) + count_of(n.r) + 1;
}

void document::update_up(uint32_t x) {
  for (; x != nil; x = nodes_[x].p)
    update(x);
}

// The first k nodes, and the rest; both roots come back without a parent.
std::pair<uint32_t, uint32_t> document::split(uint32_t t, uint32_t k) {
  if (t == nil)
    return {nil, nil};
  std::pair<uint32_t, uint32_t> out;
  auto l = nodes_[t].l;
  if (count_of(l) >= k) {
    auto [a, b] = split(l, k);
    nodes_[t].l = b;
    if (b != nil)
      nodes_[b].p = t;
    out = {a, t};
  } else {
    auto [a, b] = split(nodes_[t].r, k - count_of(l) - 1);
    nodes_[t].r = a;
    if (a != nil)
      nodes_[a].p = t;
    out = {t, b};
  }
  update(t);
  for (auto root : {out.first, out.second})
    if (root != nil)
      nodes_[root].p = nil;
  return out;
}

uint32_t document::merge(uint32_t a, uint32_t b) {
  if (a == nil || b == nil)
    return a == nil ? b : a;
  if (nodes_[a].prio > nodes_[b].prio) {
    auto r = merge(nodes_[a].r, b);
    nodes_[a].r = r;
    nodes_[r].p = a;
    update(a);
    return a;
  }
  auto l = merge(a, nodes_[b].l);
  nodes_[b].l = l;
  nodes_[l].p = b;
  update(b);
  return b;
}

void document::insert_at(uint32_t position, uint32_t x) {
  auto [a, b] = split(root_, position);
  root_ = merge(merge(a, x), b);
  nodes_[root_].p = nil;
}

uint32_t document::rank(uint32_t x) const {
  uint32_t r = count_of(nodes_[x].l);
  for (auto p = nodes_[x].p; p != nil; x = p, p = nodes_[p].p)
    if (nodes_[p].r == x)
      r += count_of(nodes_[p].l) + 1;
  return r;
}

uint64_t document::visible_before(uint32_t x) const {
  uint64_t v = visible_of(nodes_[x].l);
  for (auto p = nodes_[x].p; p != nil; x = p, p = nodes_[p].p)
    if (nodes_[p].r == x)
      v += visible_of(nodes_[p].l) + (nodes_[p].deleted ? 0 : nodes_[p].len);
  return v;
}

uint32_t document::first() const {
  auto x = root_;
  while (x != nil && nodes_[x].l != nil)
    x = nodes_[x].l;
  return x;
}

uint32_t document::next(uint32_t x) const {
  if (nodes_[x].r != nil) {
    x = nodes_[x].r;
    while (nodes_[x].l != nil)
      x = nodes_[x].l;
    return x;
  }
  auto p = nodes_[x].p;
  while (p != nil && nodes_[p].r == x) {
    x = p;
    p = nodes_[p].p;
  }
  return p;
}

uint32_t document::prev(uint32_t x) const {
  if (nodes_[x].l != nil) {
    x = nodes_[x].l;
    while (nodes_[x].r != nil)
      x = nodes_[x].r;
    return x;
  }
  auto p = nodes_[x].p;
  while (p != nil && nodes_[p].l == x) {
    x = p;
    p = nodes_[p].p;
  }
  return p;
}

uint32_t document::add_node(node&& n) {
  if (free_.empty()) {
    nodes_.push_back(std::move(n));
    return static_cast<uint32_t>(nodes_.size() - 1);
  }
  auto x = free_.back();
  free_.pop_back();
  nodes_[x] = std::move(n);
  return x;
}

// The node holding visible character `index`, and its offset there; nil past the end.
std::pair<uint32_t, uint64_t> document::find_visible(uint64_t index) const {
  auto t = root_;
  while (t != nil) {
    auto& n = nodes_[t];
    if (index < visible_of(n.l)) {
      t = n.l;
      continue;
    }
    index -= visible_of(n.l);
    uint64_t own = n.deleted ? 0 : n.len;
    if (index < own)
      return {t, index};
    index -= own;
    t = n.r;
  }
  return {nil, 0};
}

// --- runs and ids ---

char_id document::id_of(uint32_t x, uint64_t offset) const {
  return char_id{origins_[nodes_[x].origin], nodes_[x].seq + offset};
}

uint32_t document::find(const char_id& id) const {
  auto o = origin_of_.find(id.origin);
  if (o == origin_of_.end())
    return nil;
  auto& runs = by_id_[o->second];
  auto i = runs.upper_bound(id.seq);
  if (i == runs.begin())
    return nil;
  --i;
  auto& n = nodes_[i->second];
  return id.seq < n.seq + n.len ? i->second : nil;
}

void document::index(uint32_t x) {
  by_id_[nodes_[x].origin][nodes_[x].seq] = x;
}

// Splits node x before its character `offset` (0 < offset < len); returns the new node,
// right after x in the sequence.
uint32_t document::split_at(uint32_t x, uint64_t offset) {
  node y;
  y.origin = nodes_[x].origin;
  y.seq = nodes_[x].seq + offset;
  y.len = nodes_[x].len - static_cast<uint32_t>(offset);
  y.deleted = nodes_[x].deleted;
  y.left = id_of(x, offset - 1);
  y.right = nodes_[x].right;
  if (!y.deleted)
    y.chars = nodes_[x].chars.substr(offset);
  rng_ ^= rng_ << 13, rng_ ^= rng_ >> 17, rng_ ^= rng_ << 5;
  y.prio = rng_;
  nodes_[x].len = static_cast<uint32_t>(offset);
  if (!nodes_[x].deleted)
    nodes_[x].chars.resize(offset);
  update_up(x);
  auto at = rank(x) + 1;
  auto id = add_node(std::move(y));
  update(id);
  index(id);
  insert_at(at, id);
  if (nodes_[id].deleted)
    if (auto d = deleters_.find(x); d != deleters_.end()) {
      auto copy = d->second; // the map may move what d points to
      deleters_[id] = std::move(copy);
    }
  return id;
}

uint32_t document::node_ending_at(const char_id& id) {
  auto x = find(id);
  auto offset = id.seq - nodes_[x].seq;
  if (offset + 1 < nodes_[x].len)
    split_at(x, offset + 1);
  return x;
}

uint32_t document::node_starting_at(const char_id& id) {
  auto x = find(id);
  auto offset = id.seq - nodes_[x].seq;
  return offset > 0 ? split_at(x, offset) : x;
}

} // namespace mlr::core::text
