#pragma once
// A store that survives its leader, for simulated crashes and restarts: every write is
// made to a memory store and recorded; a commit makes what was recorded since the last
// commit "reach the disk". A restart opens a new store holding exactly what was committed
// (what a crash of a RocksDB node under --sync always keeps), and the store the crashed
// leader held stops recording, so nothing it does afterwards reaches the disk.

#include "storage/store.hpp"

#include <functional>
#include <memory>
#include <vector>

namespace mlr::testing {

class kept_store : public storage::store {
public:
  /// What reached the disk, shared by the store of every incarnation of one node.
  struct disk {
    std::vector<std::function<void(storage::store&)>> committed;
    uint64_t generation = 0;
  };

  /// Opens the node's disk: a new store with what was committed; earlier stores of the
  /// node stop writing to the disk.
  static std::unique_ptr<kept_store> open(std::shared_ptr<disk> d) {
    auto s = std::unique_ptr<kept_store>(new kept_store(d, ++d->generation));
    for (auto& op : d->committed)
      op(*s->live_);
    return s;
  }

  const std::vector<messages::version>* find(const std::string& key) const override {
    return live_->find(key);
  }
  void assign(const std::string& key, std::vector<messages::version> versions) override {
    record([key, versions](storage::store& s) { s.assign(key, versions); });
  }
  void erase(const std::string& key) override {
    record([key](storage::store& s) { s.erase(key); });
  }
  size_t key_count() const override { return live_->key_count(); }
  void
  for_each(const std::function<void(const std::string&, const std::vector<messages::version>&)>& fn)
    const override {
    live_->for_each(fn);
  }
  void for_each_prefix(
    const std::string& prefix,
    const std::function<void(const std::string&, const std::vector<messages::version>&)>& fn)
    const override {
    live_->for_each_prefix(prefix, fn);
  }
  uint64_t log_begin() const override { return live_->log_begin(); }
  uint64_t log_end() const override { return live_->log_end(); }
  void truncate_log(uint64_t pos) override {
    record([pos](storage::store& s) { s.truncate_log(pos); });
  }
  void append(storage::log_entry entry) override {
    record([entry](storage::store& s) { s.append(entry); });
  }
  const storage::log_entry* read(uint64_t pos) const override { return live_->read(pos); }
  std::optional<std::string> get_meta(const std::string& name) const override {
    return live_->get_meta(name);
  }
  void put_meta(const std::string& name, std::string value) override {
    record([name, value](storage::store& s) { s.put_meta(name, value); });
  }
  void erase_meta(const std::string& name) override {
    record([name](storage::store& s) { s.erase_meta(name); });
  }
  std::vector<meta_item> meta_range(const std::string& prefix, const std::string& after,
                                    size_t limit) const override {
    return live_->meta_range(prefix, after, limit);
  }
  result<bool> commit(bool) override {
    if (disk_->generation == generation_)
      for (auto& op : pending_)
        disk_->committed.push_back(std::move(op));
    pending_.clear();
    return true;
  }
  result<bool> sync() override { return true; }
  bool durable() const override { return true; }
  std::unique_ptr<storage::state_snapshot> snapshot() const override { return live_->snapshot(); }

private:
  kept_store(std::shared_ptr<disk> d, uint64_t generation)
      : disk_(std::move(d)), generation_(generation), live_(storage::make_memory_store()) {}

  void record(std::function<void(storage::store&)> op) {
    op(*live_);
    pending_.push_back(std::move(op));
  }

  std::shared_ptr<disk> disk_;
  uint64_t generation_;
  std::unique_ptr<storage::store> live_;
  std::vector<std::function<void(storage::store&)>> pending_;
};

} // namespace mlr::testing
