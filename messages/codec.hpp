#pragma once
// Cap'n Proto encoding of batches and acks (schema: mlr.capnp). Encoding cannot fail.
// Decoding never throws and never trusts its input: a frame above `max_frame_bytes`, one
// that is not a well-formed Cap'n Proto message, or one whose content breaks an invariant
// (a source index out of range, a zero counter) comes back as an error value.

#include "messages/error.hpp"
#include "messages/event.hpp"
#include "messages/frame.hpp"

#include <cstddef>

namespace mlr::messages {

/// Most sources (origin incarnations) one message may name: events, deps and contexts
/// refer to them by a 16-bit index. Links split batches below it.
inline constexpr size_t max_batch_sources = 65536;

struct decode_limits {
  /// Largest frame accepted, in bytes; also bounds Cap'n Proto's traversal limit.
  size_t max_frame_bytes = 64u << 20;
  /// Most events one batch may carry.
  size_t max_events = 1u << 20;
};

frame encode(const event_batch& batch);
frame encode(const ack& a);
frame encode(const pull_request& p);

/// Packed encoding (capnp::writePackedMessage) of the same message: for measuring.
std::vector<uint8_t> encode_packed(const event_batch& batch);

result<event_batch> decode_batch(const frame& f, const decode_limits& limits = {});

/// The node a batch names as its sender, a pull as its requester, an ack or gossip as its
/// receiver (the node whose vector it carries), read without decoding the rest: cheap
/// enough for the network thread, which closes a connection that speaks for anyone but
/// its proven peer.
result<node_index> peek_batch_sender(const frame& f, const decode_limits& limits = {});
result<node_index> peek_pull_requester(const frame& f, const decode_limits& limits = {});
result<node_index> peek_ack_receiver(const frame& f, const decode_limits& limits = {});
result<ack> decode_ack(const frame& f, const decode_limits& limits = {});
result<pull_request> decode_pull(const frame& f, const decode_limits& limits = {});

} // namespace mlr::messages
