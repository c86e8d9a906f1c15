// Text documents at rest (DESIGN.md, "Text"): the snapshot record. Part of the replica
// (replica.hpp).
//
// - A loaded document that applied text_compact_after operations (or an eighth of its
//   items) since its last snapshot record writes a new one at garbage collection: its
//   encoded form (text::document::encode), the operations it covers, and the operations
//   whose records are dropped. A record is dropped once the snapshot covers it and it is
//   stable (every node holds it): the records that stay are the recent ones. A restart
//   decodes the snapshot, then replays the records it does not cover.
// - A document whose encoded form is over max_batch_bytes keeps its records (a state
//   transfer sends one key per chunk at least, and a frame has a limit).
// - A state transfer sends the snapshot record like any key. One that covers more than the
//   sender's chunk says it holds is refused. The receiver needs it only if
//   it lacks some operation whose record the sender dropped: those are stable, so an honest
//   receiver holds them unless it lost its state, and then its document is empty. It takes
//   the sender's snapshot in place of its own when that covers every operation its own
//   dropped (its records give the rest, replayed over it); otherwise the two cannot be
//   joined without the dropped operations, which no honest cluster produces, and the
//   snapshot is refused (text_refused). A refusal abandons the transfer (another holder is
//   asked): finishing it would claim operations this node does not hold. A snapshot taken
//   records what both sides dropped.
// - The records are a document's internal state: storage::key_digest leaves them out (the
//   key's marks show which operations a replica applied), since replicas drop records at
//   different moments.

#include "core/detail/text_keys.hpp"
#include "core/replica.hpp"
#include "storage/serialize.hpp"

#include <algorithm>
#include <string_view>

namespace mlr::core {

using messages::dot;
using messages::version;

namespace {

// A version vector inside a snapshot record: small (one entry per origin incarnation that
// edited the document), so a bound on its bytes keeps a hostile one's decoding cheap.
constexpr size_t max_vector_bytes = 64u << 10;

void put_vector(std::string& out, const messages::version_vector& vv) {
  auto bytes = storage::serialize(vv);
  detail::put_be(out, bytes.size(), 4);
  out += bytes;
}

std::optional<messages::version_vector> get_vector(const std::string& in, size_t& at) {
  if (in.size() - at < 4)
    return std::nullopt;
  auto n = detail::get_be(in, at, 4);
  at += 4;
  if (n > max_vector_bytes || n > in.size() - at)
    return std::nullopt;
  auto vv = storage::deserialize_version_vector(in.substr(at, n));
  at += n;
  if (!vv)
    return std::nullopt;
  return std::move(*vv);
}

} // namespace

std::optional<replica::text_snapshot> replica::parse_text_snapshot(const std::vector<version>& vs,
                                                                   uint64_t max_deleters) {
  if (vs.size() != 1 || vs[0].kind != messages::value_kind::text_snap || vs[0].tombstone)
    return std::nullopt;
  auto& bytes = vs[0].value;
  size_t at = 0;
  auto covers = get_vector(bytes, at);
  auto dropped = covers ? get_vector(bytes, at) : std::nullopt;
  if (!dropped || !covers->covers(*dropped))
    return std::nullopt; // a dropped record the snapshot does not hold
  auto doc = text::document::decode(std::string_view(bytes).substr(at), max_deleters);
  if (!doc)
    return std::nullopt;
  return text_snapshot{std::move(*covers), std::move(*dropped), std::move(*doc), at};
}

void replica::snapshot_text(const std::string& key, loaded_text& t) {
  t.since_snapshot = 0;
  auto encoded = t.doc.encode();
  if (encoded.size() > cfg_.max_batch_bytes)
    return; // keeps its records (see the file's comment)
  if (t.unreadable_snapshot)
    return; // its own does not parse: writing over it would hide what it dropped
  std::sort(t.records.begin(), t.records.end());
  t.records.erase(std::unique(t.records.begin(), t.records.end()), t.records.end());
  std::vector<dot> gone, kept;
  for (auto& d : t.records)
    (t.covers.covers(d) && (stable_.covers(d) || retired_.covers(d)) ? gone : kept).push_back(d);
  for (auto& d : gone)
    t.dropped.advance(d);
  std::string value;
  put_vector(value, t.covers);
  put_vector(value, t.dropped);
  value += encoded;
  store_->assign(
    detail::ops_prefix(key),
    {version{dot{self_, 0}, {}, false, std::move(value), messages::value_kind::text_snap, {}}});
  for (auto& d : gone) // in the same commit as the snapshot that holds them
    store_->erase(detail::op_key(key, d));
  t.records = std::move(kept);
  ++stats_.text_snapshots;
  stats_.text_records_dropped += gone.size();
}

bool replica::consider_text_snapshot(const std::string& store_key,
                                     const std::vector<version>& theirs) {
  auto& t = *transfer_;
  auto s = parse_text_snapshot(theirs, text::document::default_max_deleters);
  // What it covers must be what the sender's chunk says it holds: a snapshot that claims
  // more would hide this node's own records from every rebuild.
  bool honest = s.has_value();
  if (honest)
    for (auto& [origin, counter] : s->covers.entries())
      honest = honest &&
               (t.snapshot.covers(dot{origin, counter}) || t.retired.covers(dot{origin, counter}));
  if (!honest) {
    ++stats_.text_refused;
    return false;
  }
  bool hold_dropped = true;
  for (auto& [origin, counter] : s->dropped.entries())
    hold_dropped = hold_dropped && held(dot{origin, counter});
  if (hold_dropped)
    return true; // this node keeps each of those, as a record or in its own snapshot
  auto dropped = s->dropped;
  if (auto* mine = store_->find(store_key)) {
    auto m = parse_text_snapshot(*mine, UINT64_MAX);
    if (!m || !s->covers.covers(m->dropped)) {
      ++stats_.text_refused; // see the file's comment
      return false;
    }
    dropped.merge(m->dropped); // those records are gone here too
  }
  // Its encoded document with what both sides dropped.
  std::string value;
  put_vector(value, s->covers);
  put_vector(value, dropped);
  value += theirs[0].value.substr(s->doc_at);
  auto kept = theirs;
  kept[0].value = std::move(value);
  t.text_snapshots[store_key] = std::move(kept);
  return true;
}

} // namespace mlr::core
