#include "storage/serialize.hpp"

namespace mlr::storage {

namespace {

class writer {
public:
  void u64(uint64_t x) {
    while (x >= 0x80) {
      out_ += static_cast<char>((x & 0x7f) | 0x80);
      x >>= 7;
    }
    out_ += static_cast<char>(x);
  }
  void str(const std::string& s) {
    u64(s.size());
    out_ += s;
  }
  void source(const messages::source& s) {
    u64(s.node);
    u64(s.incarnation);
  }
  void dot(const messages::dot& d) {
    source(d.origin);
    u64(d.counter);
  }
  void dots(const std::vector<messages::dot>& ds) {
    u64(ds.size());
    for (auto& d : ds)
      dot(d);
  }
  void seen(const messages::seen_by& s) {
    u64(s.words().size());
    for (auto w : s.words())
      u64(w);
  }
  std::string take() { return std::move(out_); }

private:
  std::string out_;
};

class reader {
public:
  explicit reader(const std::string& in) : in_(in) {}

  bool u64(uint64_t& x) {
    x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size())
        return false;
      auto b = static_cast<uint8_t>(in_[pos_++]);
      x |= uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80))
        return true;
    }
    return false;
  }
  bool str(std::string& s) {
    uint64_t n = 0;
    if (!u64(n) || n > in_.size() - pos_)
      return false;
    s.assign(in_, pos_, n);
    pos_ += n;
    return true;
  }
  bool source(messages::source& s) {
    uint64_t node = 0;
    if (!u64(node) || node > UINT32_MAX || !u64(s.incarnation))
      return false;
    s.node = static_cast<messages::node_index>(node);
    return true;
  }
  bool dot(messages::dot& d) { return source(d.origin) && u64(d.counter); }
  bool dots(std::vector<messages::dot>& ds) {
    uint64_t n = 0;
    if (!u64(n) || n > in_.size())
      return false;
    ds.resize(n);
    for (auto& d : ds)
      if (!dot(d))
        return false;
    return true;
  }
  bool seen(messages::seen_by& s) {
    uint64_t n = 0;
    if (!u64(n) || n > in_.size())
      return false;
    s.words().resize(n);
    for (auto& w : s.words())
      if (!u64(w))
        return false;
    return true;
  }
  bool done() const { return pos_ == in_.size(); }

private:
  const std::string& in_;
  size_t pos_ = 0;
};

error corrupt(const std::string& what) {
  return error{errc::malformed_frame, "corrupt " + what + " record in the data directory"};
}

void write_text(writer& w, const messages::text_payload& t) {
  w.u64(t.first_seq);
  w.u64((t.left ? 1 : 0) | (t.right ? 2 : 0));
  for (auto* ref : {&t.left, &t.right})
    if (*ref) {
      w.source((*ref)->origin);
      w.u64((*ref)->seq);
    }
  w.u64(t.ranges.size());
  for (auto& x : t.ranges) {
    w.source(x.origin);
    w.u64(x.seq);
    w.u64(x.len);
  }
}

bool read_text(reader& r, size_t bytes, messages::text_payload& t) {
  uint64_t flags = 0, n = 0;
  if (!r.u64(t.first_seq) || !r.u64(flags) || flags > 3)
    return false;
  for (auto [ref, bit] : {std::pair{&t.left, 1}, std::pair{&t.right, 2}})
    if (flags & bit) {
      ref->emplace();
      if (!r.source((*ref)->origin) || !r.u64((*ref)->seq))
        return false;
    }
  if (!r.u64(n) || n > bytes)
    return false;
  t.ranges.resize(n);
  for (auto& x : t.ranges)
    if (!r.source(x.origin) || !r.u64(x.seq) || !r.u64(x.len))
      return false;
  return true;
}

} // namespace

std::string serialize(const log_entry& e) {
  writer w;
  w.dot(e.ev.id);
  w.u64(e.ev.time.value);
  w.dots(e.ev.deps);
  w.dots(e.ev.context);
  w.seen(e.ev.seen);
  w.str(e.ev.key);
  w.u64(static_cast<uint64_t>(e.ev.op));
  w.str(e.ev.value);
  w.seen(e.forward);
  // Typed operations (appended, so that entries written before them read as they were).
  if (!e.ev.field.empty() || e.ev.total != 0 || !e.ev.removed.empty() || e.ev.text) {
    w.str(e.ev.field);
    w.u64(e.ev.total);
    w.u64(e.ev.removed.size());
    for (auto& r : e.ev.removed) {
      w.str(r.field);
      w.source(r.origin);
      w.u64(r.upto);
      w.u64(r.total);
      w.u64(r.in_map ? 1 : 0);
    }
  }
  if (e.ev.text) // text operations (appended after the typed part, which they then need)
    write_text(w, *e.ev.text);
  return w.take();
}

result<log_entry> deserialize_log_entry(const std::string& bytes) {
  reader r(bytes);
  log_entry e;
  uint64_t op = 0;
  if (!r.dot(e.ev.id) || !r.u64(e.ev.time.value) || !r.dots(e.ev.deps) || !r.dots(e.ev.context) ||
      !r.seen(e.ev.seen) || !r.str(e.ev.key) || !r.u64(op) || op > messages::max_op_kind ||
      !r.str(e.ev.value) || !r.seen(e.forward))
    return corrupt("log");
  e.ev.op = static_cast<messages::op_kind>(op);
  if (!r.done()) {
    uint64_t n = 0;
    if (!r.str(e.ev.field) || !r.u64(e.ev.total) || !r.u64(n) || n > bytes.size())
      return corrupt("log");
    e.ev.removed.resize(n);
    for (auto& x : e.ev.removed) {
      uint64_t in_map = 0;
      if (!r.str(x.field) || !r.source(x.origin) || !r.u64(x.upto) || !r.u64(x.total) ||
          !r.u64(in_map) || in_map > 1)
        return corrupt("log");
      x.in_map = in_map == 1;
    }
    if (!r.done()) {
      auto t = std::make_shared<messages::text_payload>();
      if (!read_text(r, bytes.size(), *t) || !r.done())
        return corrupt("log");
      e.ev.text = std::move(t);
    }
  }
  return e;
}

namespace {

void write_versions(writer& w, const std::vector<messages::version>& versions) {
  w.u64(versions.size());
  for (auto& v : versions) {
    w.dot(v.id);
    w.u64(v.time.value);
    // Bit 0: a tombstone; the bits above: the kind, whose field follows when not a register
    // (so that what was written before typed keys reads as it was).
    auto kind = static_cast<uint64_t>(v.kind);
    w.u64((v.tombstone ? 1 : 0) | kind << 1);
    w.str(v.value);
    if (kind != 0)
      w.str(v.field);
  }
}

bool read_versions(reader& r, size_t bytes, std::vector<messages::version>& out) {
  uint64_t n = 0;
  if (!r.u64(n) || n > bytes)
    return false;
  out.resize(n);
  for (auto& v : out) {
    uint64_t flags = 0;
    if (!r.dot(v.id) || !r.u64(v.time.value) || !r.u64(flags) ||
        (flags >> 1) > messages::max_value_kind || !r.str(v.value))
      return false;
    v.tombstone = (flags & 1) != 0;
    v.kind = static_cast<messages::value_kind>(flags >> 1);
    if (v.kind != messages::value_kind::reg && !r.str(v.field))
      return false;
  }
  return true;
}

} // namespace

std::string serialize(const std::vector<messages::version>& versions) {
  writer w;
  write_versions(w, versions);
  return w.take();
}

result<std::vector<messages::version>> deserialize_versions(const std::string& bytes) {
  reader r(bytes);
  std::vector<messages::version> out;
  if (!read_versions(r, bytes.size(), out) || !r.done())
    return corrupt("key state");
  return out;
}

std::string serialize(const messages::conflict_record& c) {
  writer w;
  w.u64(c.seq);
  w.u64(c.at_ms);
  w.str(c.key);
  w.str(c.resolver);
  write_versions(w, c.versions);
  w.dots(c.kept);
  w.u64((c.resolved ? 1 : 0) | (c.merged ? 2 : 0) | (c.values_cut ? 4 : 0));
  w.str(c.reason);
  w.str(c.value);
  return w.take();
}

result<messages::conflict_record> deserialize_conflict_record(const std::string& bytes) {
  reader r(bytes);
  messages::conflict_record c;
  uint64_t flags = 0;
  if (!r.u64(c.seq) || !r.u64(c.at_ms) || !r.str(c.key) || !r.str(c.resolver) ||
      !read_versions(r, bytes.size(), c.versions) || !r.dots(c.kept) || !r.u64(flags) ||
      flags > 7 || !r.str(c.reason) || !r.str(c.value) || !r.done())
    return corrupt("conflict feed");
  c.resolved = (flags & 1) != 0;
  c.merged = (flags & 2) != 0;
  c.values_cut = (flags & 4) != 0;
  return c;
}

std::string serialize(const messages::version_vector& vv) {
  writer w;
  w.u64(vv.entries().size());
  for (auto& [s, c] : vv.entries()) {
    w.source(s);
    w.u64(c);
  }
  return w.take();
}

result<messages::version_vector> deserialize_version_vector(const std::string& bytes) {
  reader r(bytes);
  uint64_t n = 0;
  if (!r.u64(n) || n > bytes.size())
    return corrupt("version vector");
  messages::version_vector vv;
  for (uint64_t i = 0; i < n; ++i) {
    messages::source s;
    uint64_t c = 0;
    if (!r.source(s) || !r.u64(c))
      return corrupt("version vector");
    vv.advance(messages::dot{s, c});
  }
  if (!r.done())
    return corrupt("version vector");
  return vv;
}

} // namespace mlr::storage
