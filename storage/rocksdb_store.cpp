// The RocksDB store: column families "log" (position -> entry), "state" (key -> versions)
// and the default one for metadata. Writes gather in one WriteBatch per commit, so each
// applied batch lands atomically; uncommitted writes are read from an in-memory overlay.

#include "storage/serialize.hpp"
#include "storage/store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <deque>
#include <map>
#include <set>

namespace mlr::storage {

namespace {

std::string position_key(uint64_t pos) {
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i) {
    k[static_cast<size_t>(i)] = static_cast<char>(pos & 0xff);
    pos >>= 8;
  }
  return k;
}

// A RocksDB snapshot of the state column family: reads see the committed state as it was
// when the snapshot was taken, whatever the leader writes meanwhile.
class rocksdb_snapshot final : public state_snapshot {
public:
  rocksdb_snapshot(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf)
      : db_(db), cf_(cf), snap_(db->GetSnapshot()) {
    uint64_t n = 0;
    if (db_->GetIntProperty(cf_, "rocksdb.estimate-num-keys", &n))
      estimate_ = n;
  }
  ~rocksdb_snapshot() override { db_->ReleaseSnapshot(snap_); }

  chunk read(const std::string& after, bool from_start, size_t max_keys,
             size_t max_bytes) override {
    rocksdb::ReadOptions ro;
    ro.snapshot = snap_;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_));
    if (from_start) {
      it->SeekToFirst();
    } else {
      it->Seek(after);
      if (it->Valid() && it->key() == rocksdb::Slice(after))
        it->Next();
    }
    chunk out;
    size_t bytes = 0;
    for (; it->Valid() && out.keys.size() < max_keys && bytes < max_bytes; it->Next()) {
      bytes += it->key().size() + it->value().size();
      if (auto vs = deserialize_versions(it->value().ToString()))
        out.keys.emplace_back(it->key().ToString(), std::move(*vs));
    }
    out.more = it->Valid();
    return out;
  }

  uint64_t estimated_keys() const override { return estimate_; }

private:
  rocksdb::DB* db_;
  rocksdb::ColumnFamilyHandle* cf_;
  const rocksdb::Snapshot* snap_;
  uint64_t estimate_ = 0;
};

class rocksdb_store final : public store {
public:
  rocksdb_store(std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> cfs)
      : db_(std::move(db)), meta_cf_(cfs[0]), log_cf_(cfs[1]), state_cf_(cfs[2]) {
    // The log's end: one past the last stored position.
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_cf_));
    auto position = [](const rocksdb::Slice& k) {
      uint64_t pos = 0;
      for (size_t i = 0; i < k.size(); ++i)
        pos = (pos << 8) | static_cast<uint8_t>(k[i]);
      return pos;
    };
    it->SeekToLast();
    if (it->Valid())
      committed_end_ = position(it->key()) + 1;
    it->SeekToFirst();
    begin_ = it->Valid() ? position(it->key()) : committed_end_;
  }

  ~rocksdb_store() override {
    for (auto* cf : {meta_cf_, log_cf_, state_cf_})
      db_->DestroyColumnFamilyHandle(cf);
    db_->Close();
  }

  const std::vector<messages::version>* find(const std::string& key) const override {
    if (auto i = pending_state_.find(key); i != pending_state_.end())
      return &i->second;
    if (erased_.count(key))
      return nullptr;
    std::string raw;
    if (!db_->Get(rocksdb::ReadOptions(), state_cf_, key, &raw).ok())
      return nullptr;
    auto vs = deserialize_versions(raw);
    if (!vs)
      return nullptr;
    scratch_versions_ = std::move(*vs);
    return &scratch_versions_;
  }

  void assign(const std::string& key, std::vector<messages::version> versions) override {
    erased_.erase(key);
    batch_.Put(state_cf_, key, serialize(versions));
    pending_state_[key] = std::move(versions);
  }

  void erase(const std::string& key) override {
    batch_.Delete(state_cf_, key);
    pending_state_.erase(key);
    erased_.insert(key);
  }

  size_t key_count() const override {
    size_t n = 0;
    for_each([&](const std::string&, const std::vector<messages::version>&) { ++n; });
    return n;
  }

  void
  for_each(const std::function<void(const std::string&, const std::vector<messages::version>&)>& fn)
    const override {
    for_each_prefix({}, fn);
  }

  void for_each_prefix(
    const std::string& prefix,
    const std::function<void(const std::string&, const std::vector<messages::version>&)>& fn)
    const override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), state_cf_));
    auto pending = pending_state_.lower_bound(prefix);
    auto in_prefix = [&](const std::string& k) { return k.compare(0, prefix.size(), prefix) == 0; };
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      auto key = it->key().ToString();
      if (erased_.count(key))
        continue;
      for (; pending != pending_state_.end() && pending->first < key; ++pending)
        fn(pending->first, pending->second);
      if (pending != pending_state_.end() && pending->first == key) {
        fn(pending->first, pending->second);
        ++pending;
        continue;
      }
      if (auto vs = deserialize_versions(it->value().ToString()))
        fn(key, *vs);
    }
    for (; pending != pending_state_.end() && in_prefix(pending->first); ++pending)
      fn(pending->first, pending->second);
  }

  uint64_t log_begin() const override { return begin_; }
  uint64_t log_end() const override { return committed_end_ + pending_log_.size(); }

  void truncate_log(uint64_t pos) override {
    pos = std::min(pos, committed_end_); // only what is already committed
    if (pos <= begin_)
      return;
    batch_.DeleteRange(log_cf_, position_key(begin_), position_key(pos));
    begin_ = pos;
  }

  void append(log_entry entry) override {
    batch_.Put(log_cf_, position_key(log_end()), serialize(entry));
    pending_log_.push_back(std::move(entry));
  }

  const log_entry* read(uint64_t pos) const override {
    if (pos >= log_end() || pos < begin_)
      return nullptr;
    if (pos >= committed_end_)
      return &pending_log_[pos - committed_end_];
    std::string raw;
    if (!db_->Get(rocksdb::ReadOptions(), log_cf_, position_key(pos), &raw).ok())
      return nullptr;
    auto e = deserialize_log_entry(raw);
    if (!e)
      return nullptr;
    scratch_entry_ = std::move(*e);
    return &scratch_entry_;
  }

  std::optional<std::string> get_meta(const std::string& name) const override {
    if (auto i = pending_meta_.find(name); i != pending_meta_.end())
      return i->second; // nullopt when erased since the last commit
    std::string raw;
    if (!db_->Get(rocksdb::ReadOptions(), meta_cf_, name, &raw).ok())
      return std::nullopt;
    return raw;
  }

  void put_meta(const std::string& name, std::string value) override {
    batch_.Put(meta_cf_, name, value);
    pending_meta_[name] = std::move(value);
  }

  void erase_meta(const std::string& name) override {
    batch_.Delete(meta_cf_, name);
    pending_meta_[name] = std::nullopt;
  }

  // The committed names (an iterator) and the pending ones (a map), merged in name order;
  // a pending write or erase wins over the committed value of its name.
  std::vector<meta_item> meta_range(const std::string& prefix, const std::string& after,
                                    size_t limit) const override {
    std::vector<meta_item> out;
    bool from_prefix = after.empty() || after < prefix;
    const std::string& start = from_prefix ? prefix : after;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_cf_));
    it->Seek(start);
    if (!from_prefix && it->Valid() && it->key() == rocksdb::Slice(start))
      it->Next();
    auto p = from_prefix ? pending_meta_.lower_bound(start) : pending_meta_.upper_bound(start);
    while (out.size() < limit) {
      bool committed = it->Valid() && it->key().starts_with(prefix);
      bool pending = p != pending_meta_.end() && p->first.compare(0, prefix.size(), prefix) == 0;
      if (!committed && !pending)
        break;
      if (pending && (!committed || it->key().compare(rocksdb::Slice(p->first)) >= 0)) {
        if (committed && it->key() == rocksdb::Slice(p->first))
          it->Next(); // overridden
        if (p->second)
          out.emplace_back(p->first, *p->second);
        ++p;
      } else {
        out.emplace_back(it->key().ToString(), it->value().ToString());
        it->Next();
      }
    }
    return out;
  }

  result<bool> commit(bool sync) override {
    if (!broken_.empty())
      return error{errc::invalid_argument, broken_};
    if (batch_.Count() == 0)
      return sync ? this->sync() : result<bool>(true);
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    auto st = db_->Write(wo, &batch_);
    if (!st.ok() && !st.IsNoSpace())
      return fail_sync(st); // the WAL writer saw an I/O error: it cannot be used again
    if (!st.ok()) {
      write_failed_ = true; // until Resume() (recover) gives RocksDB a fresh WAL
      return error{errc::invalid_argument,
                   "cannot write to the data directory: " + st.ToString() + " (the disk is full)"};
    }
    batch_.Clear();
    committed_end_ += pending_log_.size();
    pending_log_.clear();
    pending_state_.clear();
    pending_meta_.clear();
    erased_.clear();
    return true;
  }

  result<bool> sync() override {
    if (!broken_.empty())
      return error{errc::invalid_argument, broken_};
    if (write_failed_) // syncing a WAL that failed a write is an assertion in this build
      return error{errc::invalid_argument,
                   "cannot sync the data directory: a write to it failed (the disk is full)"};
    auto st = db_->SyncWAL();
    if (!st.ok())
      return fail_sync(st);
    return true;
  }

  bool broken() const override { return !broken_.empty(); }

  bool durable() const override { return true; }

  result<bool> recover() override {
    if (!broken_.empty())
      return error{errc::invalid_argument, broken_};
    // A failed write leaves RocksDB read-only until it resumes; "busy" means it is already
    // recovering by itself, so the write below tells whether it is done.
    if (auto st = db_->Resume(); !st.ok() && !st.IsBusy())
      return error{errc::invalid_argument, "the data directory cannot resume: " + st.ToString()};
    // The write tells whether RocksDB is done recovering (with a fresh WAL); syncing goes
    // through Write, not SyncWAL, while the old writer may still be the failed one.
    rocksdb::WriteOptions wo;
    wo.sync = true;
    auto st = db_->Write(wo, &batch_);
    if (!st.ok()) {
      if (!st.IsNoSpace())
        return fail_sync(st);
      return error{errc::invalid_argument,
                   "cannot write to the data directory: " + st.ToString() + " (the disk is full)"};
    }
    write_failed_ = false;
    batch_.Clear();
    committed_end_ += pending_log_.size();
    pending_log_.clear();
    pending_state_.clear();
    pending_meta_.clear();
    erased_.clear();
    return true;
  }

  std::unique_ptr<state_snapshot> snapshot() const override {
    return std::make_unique<rocksdb_snapshot>(db_.get(), state_cf_);
  }

private:
  // An fsync failed: what reached the disk is unknown, and RocksDB cannot be asked again
  // (this build asserts on the next sync of a WAL whose sync failed). Like PostgreSQL
  // after fsyncgate, the store refuses everything from now on; a restart recovers what
  // really is on disk.
  error fail_sync(const rocksdb::Status& st) {
    broken_ = "an fsync of the data directory failed (" + st.ToString() +
              "): what reached the disk is unknown; restart the node to recover from it";
    return error{errc::invalid_argument, broken_};
  }

  std::string broken_;
  bool write_failed_ = false; ///< a write failed for lack of space; Resume() clears it
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* meta_cf_;
  rocksdb::ColumnFamilyHandle* log_cf_;
  rocksdb::ColumnFamilyHandle* state_cf_;
  rocksdb::WriteBatch batch_;
  uint64_t committed_end_ = 0;
  uint64_t begin_ = 0;
  std::set<std::string> erased_; // erased since the last commit
  std::deque<log_entry> pending_log_;
  std::map<std::string, std::vector<messages::version>> pending_state_;
  std::map<std::string, std::optional<std::string>> pending_meta_; // nullopt: erased
  mutable std::vector<messages::version> scratch_versions_;
  mutable log_entry scratch_entry_;
};

} // namespace

result<std::unique_ptr<store>> open_rocksdb_store(const std::string& dir, rocksdb::Env* env) {
  rocksdb::DBOptions options;
  if (env)
    options.env = env;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> families{
    {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
    {"log", rocksdb::ColumnFamilyOptions()},
    {"state", rocksdb::ColumnFamilyOptions()}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  auto st = rocksdb::DB::Open(options, dir, families, &handles, &raw);
  if (!st.ok())
    return error{errc::invalid_argument,
                 "cannot open data directory '" + dir + "': " + st.ToString()};
  std::unique_ptr<rocksdb::DB> db(raw);
  return std::unique_ptr<store>(new rocksdb_store(std::move(db), handles));
}

} // namespace mlr::storage
