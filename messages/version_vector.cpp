#include "messages/version_vector.hpp"

#include <algorithm>
#include <cstdio>

namespace mlr::messages {

namespace {

template <class Entries> auto find_entry(Entries& xs, const source& s) {
  return std::lower_bound(
    xs.begin(), xs.end(), s,
    [](const version_vector::entry& e, const source& k) { return e.first < k; });
}

} // namespace

std::string to_string(const source& s) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "n%u.%016llx", s.node,
                static_cast<unsigned long long>(s.incarnation));
  return buf;
}

std::string to_string(const dot& d) {
  return to_string(d.origin) + "." + std::to_string(d.counter);
}

const char* to_string(causal_order x) {
  switch (x) {
  case causal_order::equal:
    return "equal";
  case causal_order::before:
    return "before";
  case causal_order::after:
    return "after";
  case causal_order::concurrent:
    return "concurrent";
  }
  return "?";
}

uint64_t version_vector::get(const source& s) const {
  auto i = find_entry(entries_, s);
  return i != entries_.end() && i->first == s ? i->second : 0;
}

bool version_vector::covers(const version_vector& other) const {
  for (auto& [s, c] : other.entries_)
    if (get(s) < c)
      return false;
  return true;
}

void version_vector::advance(const dot& d) {
  auto i = find_entry(entries_, d.origin);
  if (i != entries_.end() && i->first == d.origin)
    i->second = std::max(i->second, d.counter);
  else if (d.counter > 0)
    entries_.insert(i, {d.origin, d.counter});
}

void version_vector::merge(const version_vector& other) {
  // A linear merge of two sorted lists (advance() per entry was quadratic, and vectors come
  // from the network).
  std::vector<entry> out;
  out.reserve(entries_.size() + other.entries_.size());
  auto a = entries_.cbegin();
  auto b = other.entries_.cbegin();
  while (a != entries_.cend() || b != other.entries_.cend()) {
    if (b == other.entries_.cend() || (a != entries_.cend() && a->first < b->first))
      out.push_back(*a++);
    else if (a == entries_.cend() || b->first < a->first)
      out.push_back(*b++);
    else {
      out.emplace_back(a->first, std::max(a->second, b->second));
      ++a;
      ++b;
    }
  }
  entries_ = std::move(out);
}

version_vector version_vector::from_dots(std::vector<dot> dots) {
  std::sort(dots.begin(), dots.end());
  version_vector out;
  out.entries_.reserve(dots.size());
  for (auto& d : dots) {
    if (d.counter == 0)
      continue;
    if (!out.entries_.empty() && out.entries_.back().first == d.origin)
      out.entries_.back().second = d.counter; // sorted: the last is the highest
    else
      out.entries_.emplace_back(d.origin, d.counter);
  }
  return out;
}

void version_vector::erase(const source& s) {
  auto i = find_entry(entries_, s);
  if (i != entries_.end() && i->first == s)
    entries_.erase(i);
}

void version_vector::intersect(const version_vector& other) {
  std::vector<entry> out;
  for (auto& [s, c] : entries_) {
    auto m = std::min(c, other.get(s));
    if (m > 0)
      out.emplace_back(s, m);
  }
  entries_ = std::move(out);
}

causal_order version_vector::compare(const version_vector& other) const {
  bool mine_bigger = false;
  bool theirs_bigger = false;
  auto a = entries_.begin();
  auto b = other.entries_.begin();
  while (a != entries_.cend() || b != other.entries_.cend()) {
    if (b == other.entries_.cend() || (a != entries_.cend() && a->first < b->first)) {
      mine_bigger |= a->second > 0;
      ++a;
    } else if (a == entries_.end() || b->first < a->first) {
      theirs_bigger |= b->second > 0;
      ++b;
    } else {
      mine_bigger |= a->second > b->second;
      theirs_bigger |= b->second > a->second;
      ++a;
      ++b;
    }
  }
  if (mine_bigger && theirs_bigger)
    return causal_order::concurrent;
  if (mine_bigger)
    return causal_order::after;
  if (theirs_bigger)
    return causal_order::before;
  return causal_order::equal;
}

std::vector<dot> version_vector::delta_since(const version_vector& older) const {
  std::vector<dot> out;
  for (auto& [s, c] : entries_)
    if (older.get(s) < c)
      out.push_back(dot{s, c});
  return out;
}

uint64_t version_vector::total() const {
  uint64_t sum = 0;
  for (auto& e : entries_)
    sum += e.second;
  return sum;
}

uint64_t version_vector::missing_from(const version_vector& other) const {
  uint64_t missing = 0;
  for (auto& [s, c] : entries_) {
    auto theirs = other.get(s);
    if (c > theirs)
      missing += c - theirs;
  }
  return missing;
}

std::string to_string(const version_vector& vv) {
  std::string out = "{";
  for (auto& [s, c] : vv.entries()) {
    if (out.size() > 1)
      out += ", ";
    char buf[64];
    std::snprintf(buf, sizeof(buf), "n%u.%04llx:%llu", s.node,
                  static_cast<unsigned long long>(s.incarnation & 0xffff),
                  static_cast<unsigned long long>(c));
    out += buf;
  }
  return out + "}";
}

} // namespace mlr::messages
