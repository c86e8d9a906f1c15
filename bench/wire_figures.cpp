#include "bench/wire_figures.hpp"

#include "core/replica.hpp"
#include "messages/codec.hpp"
#include "storage/store.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace mlr::bench {

wire_figures measure_wire(size_t n, bool bursty, size_t events_per_node, messages::op_kind op) {
  std::vector<core::replica> nodes;
  nodes.reserve(n);
  for (messages::node_index i = 0; i < n; ++i) {
    core::replica_config cfg;
    cfg.self = i;
    cfg.incarnation = 0x9e3779b97f4a7c15ull * (i + 1);
    cfg.forward_to.resize(n);
    for (messages::node_index j = 0; j < n; ++j)
      if (j != i)
        cfg.forward_to[i].push_back(j);
    nodes.emplace_back(cfg, storage::make_memory_store());
  }
  std::vector<std::vector<uint64_t>> cursor(n, std::vector<uint64_t>(n, 0));
  uint64_t now = 1'700'000'000'000ull;
  // Delivers everything every node has not yet shipped to `to`.
  auto deliver_to = [&](size_t to) {
    for (size_t from = 0; from < n; ++from) {
      if (from == to)
        continue;
      auto got = nodes[from].fetch(static_cast<messages::node_index>(to), cursor[from][to],
                                   1u << 20, 1u << 20);
      cursor[from][to] = got.next;
      nodes[to].receive(std::move(got.batch), now);
      nodes[to].take_ready(); // what a leader would carry out (conflicts go to its resolver)
    }
  };
  size_t per_burst = bursty ? 100 : 1;
  size_t rounds = events_per_node / per_burst;
  for (size_t r = 0; r < rounds; ++r)
    for (size_t i = 0; i < n; ++i) {
      deliver_to(i);
      for (size_t k = 0; k < per_burst; ++k) {
        ++now;
        auto key = "key-" + std::to_string((r * per_burst + k) % 1000);
        core::write_request w{key, op, "value-16-bytes!!", false, {}};
        if (op == messages::op_kind::incr)
          w.value.clear();
        if (op != messages::op_kind::put && op != messages::op_kind::incr)
          w.field = "field-" + std::to_string(k % 16); // a set member or map field
        if (op == messages::op_kind::sadd)
          w.value.clear();
        w.delta = 1;
        nodes[i].write(w, now);
      }
    }
  // What origin 0 shipped to node 1, re-batched as a link would under load: 64 a batch.
  std::vector<messages::event> own;
  for (uint64_t pos = 0; pos < nodes[0].log_end(); ++pos) {
    auto* e = nodes[0].store().read(pos);
    if (e->ev.id.origin.node == 0)
      own.push_back(e->ev);
  }
  messages::event_batch empty;
  auto empty_unpacked = messages::encode(empty).bytes.size();
  auto empty_packed = messages::encode_packed(empty).size();
  wire_figures w;
  size_t counted = 0;
  for (size_t i = 0; i < own.size(); i += 64) {
    messages::event_batch b;
    b.sender = 0;
    size_t payload = 0;
    for (size_t j = i; j < std::min(own.size(), i + 64); ++j) {
      payload += own[j].key.size() + own[j].value.size() + own[j].field.size();
      b.events.push_back(own[j]);
    }
    w.unpacked += static_cast<double>(messages::encode(b).bytes.size() - empty_unpacked - payload);
    w.packed += static_cast<double>(messages::encode_packed(b).size() - empty_packed - payload);
    counted += b.events.size();
  }
  w.unpacked /= static_cast<double>(counted);
  w.packed /= static_cast<double>(counted);
  return w;
}

} // namespace mlr::bench
