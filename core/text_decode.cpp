// The text document's encoded form, reading side (the layout: detail/text_codec.hpp). The
// bytes may come from anywhere: every count is bounded by the bytes left, every id is
// checked to be there, and the document is built only from what passed.

#include "core/detail/text_codec.hpp"

namespace mlr::core::text {

using namespace detail;

std::optional<document> document::decode(std::string_view bytes, uint64_t max_deleters) {
  return codec::decode(bytes, max_deleters);
}

std::optional<document> codec::decode(std::string_view bytes, uint64_t max_deleters) {
  if (bytes.substr(0, magic.size()) != magic)
    return std::nullopt;
  reader r{bytes, magic.size()};
  document d;
  if (!read_origins(r, d))
    return std::nullopt;
  for (uint32_t o = 0; o < d.origins_.size(); ++o)
    if (!read_inserted_by(r, d, o))
      return std::nullopt;
  std::vector<uint64_t> flags;
  if (!read_items(r, d, flags) || !read_text(r, d) || !check_structure(d, flags))
    return std::nullopt;
  build_tree(d);
  if (!read_deletes(r, d, max_deleters) || r.remaining() != 0)
    return std::nullopt;
  return d;
}

bool codec::read_origins(reader& r, document& d) {
  auto n = r.get();
  if (!r.ok || n > r.remaining() / 2)
    return false;
  for (uint64_t i = 0; i < n; ++i) {
    messages::source s;
    auto node = r.get();
    s.incarnation = r.get();
    if (!r.ok || node > UINT32_MAX)
      return false;
    s.node = static_cast<messages::node_index>(node);
    if (!d.origins_.empty() && !(d.origins_.back() < s))
      return false; // sorted, each once
    d.origin_index(s);
  }
  return true;
}

bool codec::read_inserted_by(reader& r, document& d, uint32_t o) {
  auto n = r.get();
  if (!r.ok || n > r.remaining() / 5)
    return false;
  auto& runs = d.inserted_by_[o];
  uint64_t seq = 0, counter = 0;
  for (uint64_t i = 0; i < n; ++i) {
    document::insert_run run;
    run.seq = r.get_signed(seq);
    run.counter = r.get_signed(counter);
    run.seq_step = r.get();
    run.counter_step = r.get();
    run.count = r.get();
    // The first insert takes seq 0; each later one a higher seq and counter (check_structure
    // holds them inside the origin's seqs).
    if (!r.ok || run.count == 0 || run.counter == 0 || run.seq >= max_seq ||
        (i == 0 ? run.seq != 0 : run.seq <= seq || run.counter <= counter) ||
        (run.count > 1 && (run.seq_step == 0 || run.counter_step == 0 ||
                           run.count - 1 > (max_seq - 1 - run.seq) / run.seq_step ||
                           run.count - 1 > (UINT64_MAX - run.counter) / run.counter_step)))
      return false;
    seq = run.seq + (run.count - 1) * run.seq_step;
    counter = run.last_counter();
    runs.push_back(run);
  }
  return true;
}

bool codec::read_items(reader& r, document& d, std::vector<uint64_t>& flags) {
  auto n = r.get();
  if (!r.ok || n > r.remaining() / 3 || n >= document::nil)
    return false;
  std::vector<uint64_t> cursor(d.origins_.size(), 0);
  d.nodes_.reserve(n); // (n is bounded by the bytes: a third of them)
  flags.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto f = r.get();
    flags.push_back(f);
    if (!r.ok || !read_item(r, d, i, f, cursor))
      return false;
  }
  return true;
}

bool codec::read_item(reader& r, document& d, size_t i, uint64_t f, std::vector<uint64_t>& cursor) {
  auto n_o = cursor.size();
  auto right = (f >> right_shift) & 3;
  if ((f & ~all_flags) || ((f & left_is_previous) && (!(f & has_left) || i == 0)) ||
      (right == right_is_previous && i == 0) || ((f & same_origin) && i == 0))
    return false;
  document::node n;
  n.origin = static_cast<uint32_t>((f & same_origin) ? d.nodes_[i - 1].origin : r.get());
  if (!r.ok || n.origin >= n_o)
    return false;
  n.seq = r.get_signed(cursor[n.origin]);
  auto len = r.get();
  if (!r.ok || n.seq >= max_seq || len == 0 || len > max_seq - n.seq || len > UINT32_MAX)
    return false;
  n.len = static_cast<uint32_t>(len);
  cursor[n.origin] = n.seq + len;
  auto id = [&]() -> std::optional<char_id> {
    auto o = r.get();
    if (!r.ok || o >= n_o)
      return std::nullopt;
    auto seq = r.get_signed(cursor[o]);
    if (!r.ok || seq >= max_seq)
      return std::nullopt;
    return char_id{d.origins_[o], seq};
  };
  if (f & left_is_previous) {
    auto& p = d.nodes_[i - 1];
    n.left = char_id{d.origins_[p.origin], p.seq + p.len - 1};
  } else if ((f & has_left) && !(n.left = id())) {
    return false;
  }
  if (right == right_given && !(n.right = id()))
    return false;
  n.deleted = f & deleted_flag;
  d.nodes_.push_back(std::move(n));
  return true;
}

bool codec::read_text(reader& r, document& d) {
  auto len = r.get();
  if (!r.ok || len > r.remaining())
    return false;
  auto text = from_utf8(std::string(r.in.substr(r.at, len)));
  r.at += len;
  if (!text)
    return false;
  size_t at = 0;
  for (auto& n : d.nodes_) {
    if (n.deleted)
      continue;
    if (text->size() - at < n.len)
      return false;
    n.chars = text->substr(at, n.len);
    at += n.len;
  }
  return at == text->size();
}

// Each origin's items tile its seqs from 0, and its inserts lie inside them; every origin
// left is a character before its item and every origin right one after it (what YATA's
// placement relies on).
bool codec::check_structure(document& d, const std::vector<uint64_t>& flags) {
  auto n = static_cast<uint32_t>(d.nodes_.size());
  for (uint32_t x = 0; x < n; ++x)
    if (!d.by_id_[d.nodes_[x].origin].emplace(d.nodes_[x].seq, x).second)
      return false;
  for (uint32_t o = 0; o < d.origins_.size(); ++o) {
    uint64_t next = 0;
    for (auto& [seq, x] : d.by_id_[o]) {
      if (seq != next)
        return false;
      next += d.nodes_[x].len;
    }
    d.next_seq_[o] = next;
    auto& runs = d.inserted_by_[o];
    if (runs.empty() != (next == 0) ||
        (!runs.empty() && runs.back().seq + (runs.back().count - 1) * runs.back().seq_step >= next))
      return false;
  }
  for (uint32_t x = 0; x < n; ++x) {
    auto& node = d.nodes_[x];
    auto mode = (flags[x] >> right_shift) & 3;
    if (mode == right_is_next) {
      if (x + 1 == n)
        return false;
      node.right = char_id{d.origins_[d.nodes_[x + 1].origin], d.nodes_[x + 1].seq};
    } else if (mode == right_is_previous) {
      if (!d.nodes_[x - 1].right)
        return false;
      node.right = d.nodes_[x - 1].right;
    }
    // Positions are node numbers here: the nodes were made in document order.
    auto left = node.left ? d.find(*node.left) : document::nil;
    auto right = node.right ? d.find(*node.right) : document::nil;
    if ((node.left && (left == document::nil || left >= x)) ||
        (node.right && (right == document::nil || right <= x)))
      return false;
  }
  return true;
}

void codec::build_tree(document& d) {
  for (uint32_t x = 0; x < d.nodes_.size(); ++x) {
    d.rng_ ^= d.rng_ << 13, d.rng_ ^= d.rng_ >> 17, d.rng_ ^= d.rng_ << 5;
    d.nodes_[x].prio = d.rng_;
    d.update(x);
    d.root_ = d.merge(d.root_, x);
    d.nodes_[d.root_].p = document::nil;
  }
}

// `budget`: how many deleters may be recorded (each costs memory, and a run entry of a few
// bytes may name many).
bool codec::read_deletes(reader& r, document& d, uint64_t budget) {
  auto n_o = d.origins_.size();
  auto entries = r.get();
  if (!r.ok || entries > r.remaining() / 2)
    return false;
  uint64_t counter = 0, seq = 0;
  std::optional<messages::dot> last;
  auto next_dot = [&](uint32_t o, uint64_t c) {
    messages::dot by{d.origins_[o], c};
    bool ok = c != 0 && (!last || *last < by);
    last = by;
    return ok;
  };
  for (uint64_t e = 0; e < entries; ++e) {
    auto head = r.get();
    auto o = r.get();
    counter = r.get_signed(counter);
    if (!r.ok || o >= n_o || (head >> 1) == 0 || !next_dot(static_cast<uint32_t>(o), counter))
      return false;
    if (head & 1) { // one delete, several ranges
      auto k = r.get();
      if (!r.ok || head != 3 || k < 2 || k > r.remaining() / 3)
        return false;
      for (uint64_t j = 0; j < k; ++j) {
        auto ro = r.get();
        seq = r.get_signed(seq);
        auto len = r.get();
        if (!r.ok || ro >= n_o ||
            !apply_delete(d, *last, static_cast<uint32_t>(ro), seq, len, budget))
          return false;
      }
      continue;
    }
    auto repeat = head >> 1;
    auto ro = r.get();
    seq = r.get_signed(seq);
    auto len = r.get();
    uint64_t counter_step = 0, seq_step = 0;
    if (repeat > 1) {
      counter_step = r.get();
      seq_step = r.get_signed(0);
    }
    if (!r.ok || ro >= n_o || (repeat > 1 && counter_step == 0))
      return false;
    for (uint64_t k = 0; k < repeat; ++k) {
      if (k > 0 &&
          (counter += counter_step, seq += seq_step, !next_dot(static_cast<uint32_t>(o), counter)))
        return false;
      if (!apply_delete(d, *last, static_cast<uint32_t>(ro), seq, len, budget))
        return false;
    }
  }
  return true; // (a tombstone no delete names is a collected one)
}

// Records `by` as a deleter of (origin, seq) .. + len, which must all be tombstones.
bool codec::apply_delete(document& d, const messages::dot& by, uint32_t origin, uint64_t seq,
                         uint64_t len, uint64_t& budget) {
  if (len == 0 || seq >= d.next_seq_[origin] || len > d.next_seq_[origin] - seq)
    return false;
  auto end = seq + len;
  for (auto s = seq; s < end;) {
    char_id id{d.origins_[origin], s};
    auto x = d.find(id);
    if (x == document::nil || !d.nodes_[x].deleted || budget == 0)
      return false;
    --budget;
    x = d.node_starting_at(id);
    if (d.nodes_[x].seq + d.nodes_[x].len > end)
      d.split_at(x, end - s);
    s = d.nodes_[x].seq + d.nodes_[x].len;
    auto& ds = d.deleters_[x];
    if (!ds.empty() && !(ds.back() < by))
      return false; // each delete once, in dot order
    ds.push_back(by);
  }
  return true;
}

} // namespace mlr::core::text
