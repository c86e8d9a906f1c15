#pragma once
// Private to mlr_transport: what both client gateways share. Answers leave a connection in
// request order (reply_queue), bytes go out through write_bytes, and start_gateway spawns a
// gateway broker and waits until its listening socket is open.

#include "gateways/gateways.hpp"
#include "transport/broker_util.hpp"

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

/// What a client is told when a request failed. A write that timed out after it reached
/// the leader may still be applied: it says so, and never reads like a refusal.
inline std::string failure_text(const caf::error& err, bool is_write) {
  if (actors::is_request_timeout(err))
    return is_write ? "timed out; the write may still be applied (read the key to see)"
                    : "timed out; the node did not answer within " +
                        std::to_string(request_timeout.count()) + " s";
  return actors::from_caf(err).message;
}

/// Flow control for one client connection: at most `max_pipeline` requests in flight and
/// `max_output_bytes` written but not yet sent; past either, the gateway stops parsing the
/// connection's requests (they wait in its reader) until both drained to half. The backlog
/// is every byte written minus every byte CAF's data_transferred_msg reports sent.
///
/// Reading itself goes on: CAF 0.17's halt/trigger loses a trigger that comes while its
/// lazy removal of the socket is still pending, and the connection is then never read
/// again (seen here, with a pipelining client). So the bytes a paused connection sends
/// are bounded by `max_paused_input` instead; past it the client is disconnected.
struct client_flow {
  size_t in_flight = 0;
  size_t output_backlog = 0;
  bool paused = false;

  bool over(const node_context& ctx) const {
    return in_flight >= ctx.max_pipeline || output_backlog >= ctx.max_output_bytes;
  }
  /// Call after anything changed. True when the connection was resumed just now: take the
  /// requests that waited (outside the current handler: send resume_atom).
  bool update(const node_context& ctx) {
    if (!paused && over(ctx)) {
      paused = true;
    } else if (paused && in_flight <= ctx.max_pipeline / 2 &&
               output_backlog <= ctx.max_output_bytes / 2) {
      paused = false;
      return true;
    }
    return false;
  }
  /// What a client that sent too much while paused is told before it is disconnected.
  std::string overrun(const node_context& ctx) const {
    return "the client sent more than " + std::to_string(ctx.max_paused_input) +
           " bytes of requests without reading its answers (" + std::to_string(in_flight) +
           " unanswered, " + std::to_string(output_backlog) +
           " bytes of answers unread); read the answers while pipelining";
  }
};

/// What a connection proved it may do.
enum class client_role { none, client, admin };

/// The role `secret` proves (none: it matches no secret). Compared in constant time.
inline client_role role_for(const client_access& a, const std::string& secret) {
  if (!a.admin_secret.empty() && same_proof(secret, a.admin_secret))
    return client_role::admin;
  if (!a.client_secret.empty() && same_proof(secret, a.client_secret))
    return client_role::client;
  return client_role::none;
}

/// A new connection's role before it authenticates: client when no client secret is set.
inline client_role initial_role(const client_access& a) {
  return a.client_secret.empty() ? client_role::client : client_role::none;
}

/// Protected mode: with no client secret, only loopback clients (unless allowed).
inline bool refused_remote(const client_access& a, const std::string& remote_addr) {
  if (!a.client_secret.empty() || a.allow_remote)
    return false;
  return !(remote_addr.rfind("127.", 0) == 0 || remote_addr == "::1" ||
           remote_addr.rfind("::ffff:127.", 0) == 0);
}

inline const char* protected_mode_text =
  "this node serves clients without authentication, so only from loopback (protected mode); "
  "start it with --client-secret-file to serve other hosts, or with "
  "--allow-unauthenticated-clients to open it deliberately";

inline void write_bytes(caf::io::abstract_broker* self, connection_handle hdl,
                        const std::string& bytes) {
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
  return &*std::max_element(siblings.begin(), siblings.end(), messages::lww_before);
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
