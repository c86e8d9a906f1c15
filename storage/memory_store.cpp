#include "storage/store.hpp"

#include <deque>
#include <map>

namespace mlr::storage {

namespace {

using key_map = std::map<std::string, std::vector<messages::version>>;

// A copy of the key map: the memory store is for demos and tests, where that is cheap.
class memory_snapshot final : public state_snapshot {
public:
  explicit memory_snapshot(key_map keys) : keys_(std::move(keys)) {}

  chunk read(const std::string& after, bool from_start, size_t max_keys,
             size_t max_bytes) override {
    chunk out;
    size_t bytes = 0;
    auto i = from_start ? keys_.begin() : keys_.upper_bound(after);
    for (; i != keys_.end() && out.keys.size() < max_keys && bytes < max_bytes; ++i) {
      bytes += i->first.size();
      for (auto& v : i->second)
        bytes += v.value.size() + 32;
      out.keys.emplace_back(i->first, i->second);
    }
    out.more = i != keys_.end();
    return out;
  }

  uint64_t estimated_keys() const override { return keys_.size(); }

private:
  key_map keys_;
};

class memory_store final : public store {
public:
  const std::vector<messages::version>* find(const std::string& key) const override {
    auto i = keys_.find(key);
    return i == keys_.end() ? nullptr : &i->second;
  }

  void assign(const std::string& key, std::vector<messages::version> versions) override {
    keys_[key] = std::move(versions);
  }

  void erase(const std::string& key) override { keys_.erase(key); }

  size_t key_count() const override { return keys_.size(); }

  void
  for_each(const std::function<void(const std::string&, const std::vector<messages::version>&)>& fn)
    const override {
    for (auto& [k, v] : keys_)
      fn(k, v);
  }

  void for_each_prefix(
    const std::string& prefix,
    const std::function<void(const std::string&, const std::vector<messages::version>&)>& fn)
    const override {
    for (auto i = keys_.lower_bound(prefix);
         i != keys_.end() && i->first.compare(0, prefix.size(), prefix) == 0; ++i)
      fn(i->first, i->second);
  }

  uint64_t log_begin() const override { return begin_; }
  uint64_t log_end() const override { return begin_ + log_.size(); }

  void append(log_entry entry) override { log_.push_back(std::move(entry)); }

  const log_entry* read(uint64_t pos) const override {
    return pos >= begin_ && pos < log_end() ? &log_[pos - begin_] : nullptr;
  }

  void truncate_log(uint64_t pos) override {
    while (begin_ < pos && !log_.empty()) {
      log_.pop_front();
      ++begin_;
    }
  }

  std::optional<std::string> get_meta(const std::string& name) const override {
    auto i = meta_.find(name);
    return i == meta_.end() ? std::nullopt : std::optional<std::string>(i->second);
  }
  void put_meta(const std::string& name, std::string value) override {
    meta_[name] = std::move(value);
  }
  void erase_meta(const std::string& name) override { meta_.erase(name); }
  std::vector<meta_item> meta_range(const std::string& prefix, const std::string& after,
                                    size_t limit) const override {
    std::vector<meta_item> out;
    auto i = after.empty() ? meta_.lower_bound(prefix) : meta_.upper_bound(after);
    if (!after.empty() && after < prefix)
      i = meta_.lower_bound(prefix);
    for (;
         i != meta_.end() && out.size() < limit && i->first.compare(0, prefix.size(), prefix) == 0;
         ++i)
      out.emplace_back(i->first, i->second);
    return out;
  }
  result<bool> commit(bool) override { return true; }
  result<bool> sync() override { return true; }
  bool durable() const override { return false; }
  std::unique_ptr<state_snapshot> snapshot() const override {
    return std::make_unique<memory_snapshot>(keys_);
  }

private:
  // Ordered, so that for_each (and so the digest) needs no sort.
  key_map keys_;
  std::deque<log_entry> log_; // deque: appends never move earlier entries
  uint64_t begin_ = 0;
  std::map<std::string, std::string> meta_;
};

// FNV-1a, 64 bit: stable across runs and platforms, unlike std::hash.
struct fnv {
  uint64_t h = 1469598103934665603ull;
  void bytes(const void* p, size_t n) {
    auto* c = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= c[i];
      h *= 1099511628211ull;
    }
  }
  void u64(uint64_t x) { bytes(&x, sizeof(x)); }
  void str(const std::string& s) {
    u64(s.size());
    bytes(s.data(), s.size());
  }
};

} // namespace

std::unique_ptr<store> make_memory_store() {
  return std::make_unique<memory_store>();
}

std::optional<uint64_t> key_digest(const std::string& key,
                                   const std::vector<messages::version>& versions) {
  // A text document's stored operations and snapshot record are its internal state, kept
  // and dropped at each replica's own pace (core/replica_text_snapshot.cpp): the key's
  // marks show which operations a replica applied.
  auto counted = [](const messages::version& v) {
    return !v.tombstone && v.kind != messages::value_kind::text_op &&
           v.kind != messages::value_kind::text_snap;
  };
  size_t live = 0;
  for (auto& v : versions)
    live += counted(v) ? 1 : 0;
  if (live == 0)
    return std::nullopt;
  fnv f;
  f.str(key);
  f.u64(live);
  for (auto& v : versions) {
    if (!counted(v))
      continue;
    f.u64(v.id.origin.node);
    f.u64(v.id.origin.incarnation);
    f.u64(v.id.counter);
    f.u64(v.time.value);
    f.str(v.value);
    if (v.kind != messages::value_kind::reg) {
      f.u64(static_cast<uint64_t>(v.kind));
      f.str(v.field);
    }
  }
  // Mixed (splitmix64's finaliser), so that sums of similar keys' hashes do not cancel.
  auto z = f.h + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t store::digest() const {
  uint64_t sum = 0;
  for_each([&](const std::string& key, const std::vector<messages::version>& versions) {
    if (auto h = key_digest(key, versions))
      sum += *h;
  });
  return sum;
}

void store::for_each_prefix(
  const std::string& prefix,
  const std::function<void(const std::string&, const std::vector<messages::version>&)>& fn) const {
  for_each([&](const std::string& k, const std::vector<messages::version>& vs) {
    if (k.compare(0, prefix.size(), prefix) == 0)
      fn(k, vs);
  });
}

uint64_t store::live_key_count() const {
  uint64_t n = 0;
  for_each([&](const std::string& key, const std::vector<messages::version>& versions) {
    n += key_digest(key, versions) ? 1 : 0;
  });
  return n;
}

uint64_t state_digest(const store& s) {
  return s.digest();
}

} // namespace mlr::storage
