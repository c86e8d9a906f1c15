// The text document's encoded form, writing side (the layout: detail/text_codec.hpp).

#include "core/detail/text_codec.hpp"

#include <algorithm>
#include <map>

namespace mlr::core::text {

using namespace detail;

std::string document::encode() const {
  return codec::encode(*this);
}

std::string codec::encode(const document& d) {
  std::string out{magic};
  auto t = table(d);
  put(out, t.size());
  for (auto& s : t) {
    put(out, s.node);
    put(out, s.incarnation);
  }
  put_inserted_by(out, d, t);
  std::u32string text;
  put_items(out, items(d, t, text), t);
  auto utf8 = to_utf8(text);
  put(out, utf8.size());
  out += utf8;
  put_deletes(out, deletes(d, t));
  return out;
}

// The origins that inserted (a decoded document also knows those that only deleted, whose
// deletes may since have been collected: they must not stay in the table) and those whose
// deletes are still recorded.
codec::table_type codec::table(const document& d) {
  table_type t;
  for (uint32_t o = 0; o < d.origins_.size(); ++o)
    if (d.next_seq_[o] > 0)
      t.push_back(d.origins_[o]);
  for (auto& [x, ds] : d.deleters_)
    for (auto& by : ds)
      t.push_back(by.origin);
  std::sort(t.begin(), t.end());
  t.erase(std::unique(t.begin(), t.end()), t.end());
  return t;
}

namespace {

uint32_t index_in(const codec::table_type& t, const messages::source& s) {
  return static_cast<uint32_t>(std::lower_bound(t.begin(), t.end(), s) - t.begin());
}

} // namespace

void codec::put_inserted_by(std::string& out, const document& d, const table_type& t) {
  for (auto& s : t) {
    auto o = d.origin_of_.find(s);
    if (o == d.origin_of_.end()) {
      put(out, 0);
      continue;
    }
    auto& runs = d.inserted_by_[o->second];
    put(out, runs.size());
    uint64_t seq = 0, counter = 0;
    for (auto& run : runs) {
      put_signed(out, run.seq, seq);
      put_signed(out, run.counter, counter);
      put(out, run.seq_step);
      put(out, run.counter_step);
      put(out, run.count);
      seq = run.seq + (run.count - 1) * run.seq_step;
      counter = run.last_counter();
    }
  }
}

// The items in order, split runs joined again, and the visible text.
std::vector<codec::item> codec::items(const document& d, const table_type& t,
                                      std::u32string& text) {
  std::vector<item> out;
  for (auto x = d.first(); x != document::nil; x = d.next(x)) {
    auto& n = d.nodes_[x];
    item it{index_in(t, d.origins_[n.origin]), n.seq, n.len, n.deleted, n.left, n.right};
    if (!n.deleted)
      text += n.chars;
    if (!out.empty()) {
      auto& p = out.back();
      if (p.origin == it.origin && p.seq + p.len == it.seq && p.deleted == it.deleted &&
          it.left == char_id{t[p.origin], p.seq + p.len - 1} && it.right == p.right &&
          p.len + it.len <= UINT32_MAX) { // (a node's length; past it, joins may differ)
        p.len += it.len;
        continue;
      }
    }
    out.push_back(std::move(it));
  }
  return out;
}

void codec::put_items(std::string& out, const std::vector<item>& items, const table_type& t) {
  std::vector<uint64_t> cursor(t.size(), 0);
  auto put_id = [&](const char_id& id) {
    auto o = index_in(t, id.origin);
    put(out, o);
    put_signed(out, id.seq, cursor[o]);
  };
  put(out, items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    auto& it = items[i];
    const item* p = i > 0 ? &items[i - 1] : nullptr;
    const item* q = i + 1 < items.size() ? &items[i + 1] : nullptr;
    bool prev_left = p && it.left == char_id{t[p->origin], p->seq + p->len - 1};
    auto right = !it.right                                        ? no_right
                 : q && it.right == char_id{t[q->origin], q->seq} ? right_is_next
                 : p && p->right == it.right                      ? right_is_previous
                                                                  : right_given;
    bool same_o = p && p->origin == it.origin;
    put(out, (it.deleted ? deleted_flag : 0) | (it.left ? has_left : 0) |
               (prev_left ? left_is_previous : 0) | (right << right_shift) |
               (same_o ? same_origin : 0));
    if (!same_o)
      put(out, it.origin);
    put_signed(out, it.seq, cursor[it.origin]);
    cursor[it.origin] = it.seq + it.len;
    put(out, it.len);
    if (it.left && !prev_left)
      put_id(*it.left);
    if (right == right_given)
      put_id(*it.right);
  }
}

// Every delete with what it removed, in dot order (the table is sorted, so table indexes
// order dots as sources do).
std::vector<encoded_delete> codec::deletes(const document& d, const table_type& t) {
  std::map<std::pair<uint32_t, uint64_t>, std::vector<std::tuple<uint32_t, uint64_t, uint64_t>>>
    by_dot;
  for (auto& [x, ds] : d.deleters_) {
    auto& n = d.nodes_[x];
    for (auto& by : ds)
      by_dot[{index_in(t, by.origin), by.counter}].emplace_back(index_in(t, d.origins_[n.origin]),
                                                                n.seq, n.len);
  }
  std::vector<encoded_delete> out;
  for (auto& [id, ranges] : by_dot) {
    std::sort(ranges.begin(), ranges.end());
    encoded_delete e{id.first, id.second, {}};
    for (auto& r : ranges) {
      auto& last = e.ranges;
      if (!last.empty() && std::get<0>(last.back()) == std::get<0>(r) &&
          std::get<1>(last.back()) + std::get<2>(last.back()) == std::get<1>(r))
        std::get<2>(last.back()) += std::get<2>(r);
      else
        last.push_back(r);
    }
    out.push_back(std::move(e));
  }
  return out;
}

// Entries: (repeat << 1 | 1) for one delete of several ranges, (repeat << 1) for a run of
// `repeat` deletes of one range each, stepping evenly.
void codec::put_deletes(std::string& out, const std::vector<encoded_delete>& ds) {
  uint64_t counter = 0, seq = 0;
  size_t entries = 0;
  std::string body;
  for (size_t i = 0; i < ds.size();) {
    auto& e = ds[i];
    ++entries;
    if (e.ranges.size() != 1) {
      put(body, uint64_t{1} << 1 | 1);
      put(body, e.origin);
      put_signed(body, e.counter, counter);
      put(body, e.ranges.size());
      for (auto& [o, s, len] : e.ranges) {
        put(body, o);
        put_signed(body, s, seq);
        put(body, len);
        seq = s;
      }
      counter = e.counter;
      ++i;
      continue;
    }
    // How far a run of single-range deletes goes from e.
    auto [o, s, len] = e.ranges[0];
    size_t n = 1;
    uint64_t counter_step = 0, seq_step = 0;
    for (; i + n < ds.size(); ++n) {
      auto& f = ds[i + n];
      if (f.ranges.size() != 1 || f.origin != e.origin || std::get<0>(f.ranges[0]) != o ||
          std::get<2>(f.ranges[0]) != len)
        break;
      auto cs = f.counter - ds[i + n - 1].counter;
      auto ss = std::get<1>(f.ranges[0]) - std::get<1>(ds[i + n - 1].ranges[0]);
      if (n == 1) {
        counter_step = cs;
        seq_step = ss;
      } else if (cs != counter_step || ss != seq_step) {
        break;
      }
    }
    put(body, uint64_t{n} << 1);
    put(body, e.origin);
    put_signed(body, e.counter, counter);
    put(body, o);
    put_signed(body, s, seq);
    put(body, len);
    if (n > 1) {
      put(body, counter_step);
      put_signed(body, seq_step, 0);
    }
    counter = ds[i + n - 1].counter;
    seq = std::get<1>(ds[i + n - 1].ranges[0]);
    i += n;
  }
  put(out, entries);
  out += body;
}

} // namespace mlr::core::text
