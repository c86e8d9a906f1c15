#pragma once
// Private to mlr_transport: what both client gateways share. Answers leave a connection in
// request order (reply_queue), bytes go out through write_bytes, and start_gateway spawns a
// gateway broker and waits until its listening socket is open.

#include "actors/broker_util.hpp"
#include "actors/gateways.hpp"

#include <caf/io/middleman.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <future>
#include <optional>
#include <string>

namespace mlr::actors::detail {

using caf::io::connection_handle;
using messages::frame;

inline constexpr auto request_timeout = std::chrono::seconds(10);

// Answers leave a connection in request order, whatever order they are ready in.
struct reply_queue {
  std::deque<std::optional<std::string>> slots;
  uint64_t first = 0; // sequence number of slots.front()

  uint64_t reserve() {
    slots.emplace_back();
    return first + slots.size() - 1;
  }
  // Fills a slot; returns the bytes now ready to write, in order.
  std::string fill(uint64_t seq, std::string bytes) {
    if (seq < first || seq - first >= slots.size())
      return {};
    slots[seq - first] = std::move(bytes);
    std::string out;
    while (!slots.empty() && slots.front()) {
      out += *slots.front();
      slots.pop_front();
      ++first;
    }
    return out;
  }
};

inline void write_bytes(caf::io::broker* self, connection_handle hdl, const std::string& bytes) {
  if (bytes.empty())
    return;
  self->write(hdl, bytes.size(), bytes.data());
  self->flush(hdl);
}

inline std::string frame_bytes(const frame& f) {
  return std::string(f.bytes.begin(), f.bytes.end());
}

// The value a single-valued client (RESP) sees when siblings exist: the last writer's.
inline const messages::version* newest(const std::vector<messages::version>& siblings) {
  if (siblings.empty())
    return nullptr;
  return &*std::max_element(siblings.begin(), siblings.end(),
                            [](const messages::version& a, const messages::version& b) {
                              if (a.time != b.time)
                                return a.time < b.time;
                              return a.id < b.id;
                            });
}

template <class F>
result<gateway> start_gateway(caf::actor_system& sys, F fun, node_context ctx,
                              const std::string& host, uint16_t port) {
  auto opened = std::make_shared<std::promise<result<uint16_t>>>();
  auto fut = opened->get_future();
  gateway g;
  g.broker = sys.middleman().spawn_broker(fun, std::move(ctx), host, port, opened);
  if (fut.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
    return error{errc::timeout, "the listening socket did not open within 10 s"};
  auto bound = fut.get();
  if (!bound)
    return bound.err();
  g.port = *bound;
  return g;
}

} // namespace mlr::actors::detail
