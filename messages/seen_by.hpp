#pragma once
// The set of nodes that already hold an event or are being sent it, as a bitset over node
// indices. It suppresses eager forwarding only; it is never proof of delivery (version
// vectors decide catch-up and stability).

#include "messages/dot.hpp"

#include <cstdint>
#include <vector>

namespace mlr::messages {

class seen_by {
public:
  seen_by() = default;

  void insert(node_index n) {
    auto w = n / 64;
    if (words_.size() <= w)
      words_.resize(w + 1, 0);
    words_[w] |= uint64_t{1} << (n % 64);
  }
  bool contains(node_index n) const {
    auto w = n / 64;
    return w < words_.size() && (words_[w] >> (n % 64)) & 1;
  }
  void merge(const seen_by& other) {
    if (words_.size() < other.words_.size())
      words_.resize(other.words_.size(), 0);
    for (size_t i = 0; i < other.words_.size(); ++i)
      words_[i] |= other.words_[i];
  }
  size_t count() const {
    size_t n = 0;
    for (auto w : words_)
      n += static_cast<size_t>(__builtin_popcountll(w));
    return n;
  }

  const std::vector<uint64_t>& words() const { return words_; }
  std::vector<uint64_t>& words() { return words_; }

  friend bool operator==(const seen_by& a, const seen_by& b) { return a.words_ == b.words_; }

private:
  std::vector<uint64_t> words_;
};

} // namespace mlr::messages
