// Text keys (DESIGN.md, "Text"): the replica's side of core/text.hpp. Part of the replica
// (replica.hpp).
//
// - A text key's versions are marks, one per origin incarnation (core/typed.hpp); its
//   document lives in memory beside the store, built on first use from the operations.
// - Every operation that changed a document is kept under a key of its own
//   (text_op_prefix, the key's length and the key, the operation's dot): an edit writes
//   one small record, a state transfer sends them like any keys (their union is the
//   document's state: a grow-only set of operations), and a restart replays them in a
//   causal order (replay(): clocks alone do not give one once a key was deleted).
// - A write of another type at a text key (SET, DEL) removes the characters that the
//   operations its context names inserted, and is kept with them, so a replay removes them
//   too. Its origin marks it (an empty text payload; overText on the wire) when it saw the
//   key's marks, so that every node keeps the same records whatever it held then.

#include "core/replica.hpp"

#include "core/detail/text_keys.hpp"
#include "core/text.hpp"
#include "core/typed.hpp"
#include "storage/serialize.hpp"

#include <algorithm>

namespace mlr::core {

using detail::ops_prefix;
using messages::dot;
using messages::event;
using messages::version;

namespace {

text::version as_version(const std::vector<dot>& context) {
  text::version v;
  for (auto& d : context)
    v[d.origin] = std::max(v[d.origin], d.counter);
  return v;
}

std::optional<text::char_id> id_of(const std::optional<messages::text_ref>& r) {
  if (!r)
    return std::nullopt;
  return text::char_id{r->origin, r->seq};
}

std::optional<messages::text_ref> ref_of(const std::optional<text::char_id>& c) {
  if (!c)
    return std::nullopt;
  return messages::text_ref{c->origin, c->seq};
}

std::vector<text_edit> as_edits(std::vector<text::delta> ds) {
  std::vector<text_edit> out;
  for (auto& d : ds)
    out.push_back(text_edit{d.insert, d.index, text::to_utf8(d.text), d.count});
  return out;
}

bool has_mark(const std::vector<version>* vs) {
  return vs && std::any_of(vs->begin(), vs->end(),
                           [](const version& v) { return v.kind == messages::value_kind::text; });
}

} // namespace

bool replica::is_text_op_key(const std::string& key) {
  return key.compare(0, text_op_prefix.size(), text_op_prefix) == 0;
}

replica::loaded_text& replica::text_state(const std::string& key) {
  auto& slot = texts_[key];
  if (slot) {
    slot->last_use = ++text_uses_;
    return *slot;
  }
  slot = std::make_unique<loaded_text>();
  slot->last_use = ++text_uses_;
  auto prefix = ops_prefix(key);
  // The snapshot record, if any (this node's own: one taken by a state transfer was checked
  // then), and the operations it does not cover.
  if (auto* snap = store_->find(prefix)) {
    if (auto s = parse_text_snapshot(*snap, UINT64_MAX)) {
      slot->doc = std::move(s->doc);
      slot->covers = std::move(s->covers);
      slot->dropped = std::move(s->dropped);
    } else {
      ++stats_.text_refused; // a store written by something else
      slot->unreadable_snapshot = true;
    }
  }
  // Per origin incarnation, its records in counter order (its own causal order).
  std::map<messages::source, std::map<uint64_t, event>> queues;
  store_->for_each_prefix(prefix, [&](const std::string& k, const std::vector<version>& vs) {
    auto at = detail::parse_text_key(k);
    if (!at || at->doc != key || at->snapshot)
      return;
    for (auto& v : vs) {
      if (v.kind != messages::value_kind::text_op || v.id != at->id)
        continue;
      slot->records.push_back(v.id);
      // Only what this node holds (a transfer that runs, or one abandoned or cut by a
      // crash, stored records it does not): a local edit must not pick neighbours from
      // operations its deps do not cover.
      if (!held(v.id) || slot->covers.covers(v.id))
        continue;
      if (auto entry = storage::deserialize_log_entry(v.value))
        queues[v.id.origin].emplace(v.id.counter, std::move(entry->ev));
    }
  });
  slot->since_snapshot = replay(*slot, queues);
  if (slot->since_snapshot > 0 || !slot->covers.empty())
    ++stats_.text_loaded;
  return *slot;
}

// Applies the records in a causal order, whatever their clocks said: each origin's in
// counter order, an operation once what it names is there (as Yjs waits for an item's
// origins), a write over text once the text operations its context names are. Every
// record applied where it was kept, so each applies here once its turn comes.
size_t replica::replay(loaded_text& t,
                       std::map<messages::source, std::map<uint64_t, event>>& queues) {
  size_t applied = 0;
  auto ready = [&](const event& e) {
    if (messages::is_text_op(e.op))
      return true; // text_step says
    for (auto& d : e.context)
      if (auto q = queues.find(d.origin);
          q != queues.end() && !q->second.empty() && q->second.begin()->first <= d.counter)
        return false;
    return true;
  };
  for (bool progress = true; progress;) {
    progress = false;
    for (auto& [origin, q] : queues)
      while (!q.empty() && ready(q.begin()->second) && text_step(t.doc, q.begin()->second)) {
        t.covers.advance(q.begin()->second.id);
        q.erase(q.begin());
        progress = true;
        ++applied;
      }
  }
  for (auto& [origin, q] : queues) // none honest: a store written by something else
    stats_.text_refused += q.size();
  return applied;
}

std::optional<std::vector<text::delta>> replica::text_step(text::document& doc, const event& e) {
  static const messages::text_payload none;
  auto& t = e.text ? *e.text : none;
  if (e.op == messages::op_kind::text_insert) {
    auto chars = text::from_utf8(e.value);
    if (!chars)
      return std::nullopt;
    text::insert_op op{e.id.origin,   e.id.counter,   t.first_seq,
                       id_of(t.left), id_of(t.right), std::move(*chars)};
    return doc.apply(op);
  }
  if (e.op == messages::op_kind::text_delete) {
    text::delete_op op{e.id, {}};
    for (auto& r : t.ranges)
      op.ranges.push_back(text::id_range{r.origin, r.seq, r.len});
    return doc.apply(op);
  }
  std::vector<text::delta> out; // a write of another type: what its author saw goes
  doc.erase_seen(e.id, as_version(e.context), &out);
  return out;
}

bool replica::local_text(const write_request& w, event& e) {
  auto& doc = text_doc(w.key);
  std::optional<text::version> at;
  if (w.has_context) {
    // An origin's operation follows all of its own: the editor's view counts them.
    at = as_version(w.context);
    (*at)[self_] = std::max((*at)[self_], e.id.counter - 1);
  }
  auto t = std::make_shared<messages::text_payload>();
  local_edits_.clear();
  if (w.op == messages::op_kind::text_insert) {
    auto chars = text::from_utf8(w.value);
    if (!chars)
      return false;
    auto op = doc.insert(e.id, w.index, *chars, at ? &*at : nullptr, &local_edits_);
    if (op.text.empty())
      return false;
    t->first_seq = op.first_seq;
    t->left = ref_of(op.left);
    t->right = ref_of(op.right);
    e.value = w.value;
  } else {
    auto op = doc.erase(e.id, w.index, w.count, at ? &*at : nullptr, &local_edits_);
    if (op.ranges.empty())
      return false;
    for (auto& r : op.ranges)
      t->ranges.push_back(messages::text_range{r.origin, r.seq, r.len});
  }
  e.text = std::move(t);
  local_text_ = e.id;
  return true;
}

void replica::apply_text(const event& e, std::vector<text_edit>& edits) {
  bool text_op = messages::is_text_op(e.op);
  if (!text_op && !e.text)
    return; // not over text (the origin says so: see over_text)
  std::optional<std::vector<text::delta>> applied;
  if (local_text_ == e.id) {
    applied = std::move(local_edits_); // the origin applied it when it made it
    local_text_.reset();
  } else {
    applied = text_step(text_doc(e.key), e);
  }
  if (!applied) {
    ++stats_.text_refused;
    return;
  }
  if (!text_op)
    drop_if_empty(e.key); // a write over text where there is none (a peer said it was)
  storage::log_entry kept;
  kept.ev = e;
  kept.ev.deps.clear();
  kept.ev.seen = {};
  store_->assign(
    detail::op_key(e.key, e.id),
    {version{e.id, e.time, false, storage::serialize(kept), messages::value_kind::text_op, {}}});
  if (auto i = texts_.find(e.key); i != texts_.end()) {
    i->second->covers.advance(e.id);
    i->second->records.push_back(e.id);
    ++i->second->since_snapshot;
  }
  edits = as_edits(std::move(*applied));
}

void replica::drop_if_empty(const std::string& key) {
  if (auto i = texts_.find(key); i != texts_.end() && i->second->doc.items() == 0)
    texts_.erase(i);
}

void replica::over_text(const std::vector<version>* current, event& e) {
  if (!messages::is_text_op(e.op) && has_mark(current))
    e.text = std::make_shared<messages::text_payload>();
}

void replica::text_state_changed(const std::string& store_key) {
  if (auto at = detail::parse_text_key(store_key)) {
    texts_.erase(at->doc); // rebuilt from the operations at next use
    texts_changed_.insert(at->doc);
    transfer_texts_.insert(at->doc);
  }
}

void replica::transfer_finished() {
  for (auto& key : transfer_texts_)
    texts_.erase(key); // built from what was held while it ran: now from everything
  transfer_texts_.clear();
}

// Documents with many tombstones whose deletes are stable forget those deleters
// (text::document::collect). Stable here is enough: placement is by ids, so what a node
// forgot cannot make replicas diverge; it only reads a client's context older than the
// stable point as if it held those deletes. Finding them walks the tombstones that still
// know their deleters, so a document waits until it has text_compact_after of them. Then,
// at rest: a document that applied enough operations since its last snapshot record
// writes one (replica_text_snapshot.cpp).
void replica::collect_text_tombstones() {
  if (transfer_)
    return; // documents are rebuilt when it ends
  for (auto& [key, t] : texts_) {
    if (t->doc.tracked_tombstones() >= cfg_.text_compact_after)
      stats_.text_tombstones_collected +=
        t->doc.collect([&](const messages::dot& d) { return stable_.covers(d); });
    if (t->since_snapshot >= std::max<size_t>(cfg_.text_compact_after, t->doc.items() / 8))
      snapshot_text(key, *t);
  }
}

void replica::evict_texts() {
  auto cost = [](const loaded_text& t) { return std::max<size_t>(64, t.doc.items()); };
  size_t total = 0;
  std::vector<std::pair<uint64_t, std::string>> by_use;
  for (auto& [key, t] : texts_) {
    total += cost(*t);
    by_use.emplace_back(t->last_use, key);
  }
  if (total <= cfg_.text_loaded_items)
    return;
  std::sort(by_use.begin(), by_use.end());
  by_use.pop_back(); // the one used last stays, however large
  for (auto& [use, key] : by_use) {
    if (total <= cfg_.text_loaded_items)
      break;
    auto i = texts_.find(key);
    total -= cost(*i->second);
    texts_.erase(i);
    ++stats_.text_evicted;
  }
}

void replica::report_text_changes() {
  if (report_changes_)
    for (auto& key : texts_changed_)
      ready_.changes.push_back(typed::describe_state(key, "transfer", versions(key)));
  texts_changed_.clear();
}

std::optional<uint64_t> replica::text_length(const std::string& key) {
  auto* current = store_->find(key);
  if (!current || typed::type_of(*current) != typed::key_type::text)
    return std::nullopt;
  return text_doc(key).length();
}

std::optional<replica::text_view> replica::read_text(const std::string& key, uint64_t start,
                                                     uint64_t count) {
  auto* current = store_->find(key);
  if (!current || typed::type_of(*current) != typed::key_type::text)
    return std::nullopt;
  auto& doc = text_doc(key);
  return text_view{doc.length(), text::to_utf8(doc.read(start, count))};
}

} // namespace mlr::core
