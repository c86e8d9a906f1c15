// A store that keeps its state digest and its counts of keys and live keys up to date with every
// write, so that `status`, INFO and DBSIZE cost O(1) instead of a scan of the whole state
// on the leader's thread (the scan took 0.2-0.8 s at 96 MiB). Everything else is passed to
// the store it wraps.

#include "storage/store.hpp"

namespace mlr::storage {

namespace {

class digesting_store : public store {
public:
  explicit digesting_store(std::unique_ptr<store> inner) : inner_(std::move(inner)) {
    inner_->for_each([&](const std::string& key, const std::vector<messages::version>& vs) {
      add(key, vs);
      ++keys_;
    });
  }

  const std::vector<messages::version>* find(const std::string& key) const override {
    return inner_->find(key);
  }
  void assign(const std::string& key, std::vector<messages::version> versions) override {
    if (auto* old = inner_->find(key))
      remove(key, *old);
    else
      ++keys_;
    add(key, versions);
    inner_->assign(key, std::move(versions));
  }
  void erase(const std::string& key) override {
    if (auto* old = inner_->find(key)) {
      remove(key, *old);
      --keys_;
    }
    inner_->erase(key);
  }
  size_t key_count() const override { return keys_; }
  uint64_t live_key_count() const override { return live_; }
  uint64_t digest() const override { return digest_; }
  void
  for_each(const std::function<void(const std::string&, const std::vector<messages::version>&)>& fn)
    const override {
    inner_->for_each(fn);
  }
  void for_each_prefix(
    const std::string& prefix,
    const std::function<void(const std::string&, const std::vector<messages::version>&)>& fn)
    const override {
    inner_->for_each_prefix(prefix, fn);
  }
  uint64_t log_begin() const override { return inner_->log_begin(); }
  uint64_t log_end() const override { return inner_->log_end(); }
  void truncate_log(uint64_t pos) override { inner_->truncate_log(pos); }
  void append(log_entry entry) override { inner_->append(std::move(entry)); }
  const log_entry* read(uint64_t pos) const override { return inner_->read(pos); }
  std::optional<std::string> get_meta(const std::string& name) const override {
    return inner_->get_meta(name);
  }
  void put_meta(const std::string& name, std::string value) override {
    inner_->put_meta(name, std::move(value));
  }
  void erase_meta(const std::string& name) override { inner_->erase_meta(name); }
  std::vector<meta_item> meta_range(const std::string& prefix, const std::string& after,
                                    size_t limit) const override {
    return inner_->meta_range(prefix, after, limit);
  }
  result<bool> commit(bool sync) override { return inner_->commit(sync); }
  result<bool> sync() override { return inner_->sync(); }
  result<bool> recover() override { return inner_->recover(); }
  bool durable() const override { return inner_->durable(); }
  bool broken() const override { return inner_->broken(); }
  std::unique_ptr<state_snapshot> snapshot() const override { return inner_->snapshot(); }

private:
  void add(const std::string& key, const std::vector<messages::version>& vs) {
    if (auto h = key_digest(key, vs)) {
      digest_ += *h;
      ++live_;
    }
  }
  void remove(const std::string& key, const std::vector<messages::version>& vs) {
    if (auto h = key_digest(key, vs)) {
      digest_ -= *h;
      --live_;
    }
  }

  std::unique_ptr<store> inner_;
  uint64_t digest_ = 0;
  uint64_t live_ = 0;
  size_t keys_ = 0;
};

} // namespace

std::unique_ptr<store> with_digest(std::unique_ptr<store> inner) {
  return std::make_unique<digesting_store>(std::move(inner));
}

} // namespace mlr::storage
