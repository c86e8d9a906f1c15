#pragma once
// Private to mlr_messages: turning Cap'n Proto builders into frames, and reading frames
// with every Cap'n Proto exception turned into an error value.

#include "messages/codec.hpp"

#include <capnp/blob.h>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

namespace mlr::messages::detail {

/// The largest counter a dot or a version vector may carry on the wire (48 bits): anything
/// above is refused as malformed, so a hostile counter cannot wrap or exhaust anything.
inline constexpr uint64_t max_counter = (uint64_t{1} << 48) - 1;

inline frame to_frame(capnp::MessageBuilder& msg) {
  auto words = capnp::messageToFlatArray(msg);
  auto bytes = words.asBytes();
  frame f;
  f.bytes.assign(bytes.begin(), bytes.end());
  return f;
}

inline error malformed(const std::string& what) {
  return error{errc::malformed_frame, what};
}

// Checks size and alignment, then runs `fn(reader)` with every Cap'n Proto exception
// turned into an error value: Cap'n Proto validates pointers lazily, while reading.
template <class T, class F>
result<T> with_reader(const frame& f, const decode_limits& limits, const char* what, F fn) {
  if (f.bytes.size() > limits.max_frame_bytes)
    return error{errc::oversized_frame,
                 std::string(what) + " frame of " + std::to_string(f.bytes.size()) +
                   " bytes exceeds the limit of " + std::to_string(limits.max_frame_bytes)};
  if (f.bytes.empty() || f.bytes.size() % sizeof(capnp::word) != 0)
    return malformed(std::string(what) + " frame of " + std::to_string(f.bytes.size()) +
                     " bytes is not a whole number of 8-byte words");
  // Frames come from std::vector storage, which is at least 8-byte aligned; copy anyway if
  // a platform ever hands us something else.
  kj::Array<capnp::word> copy;
  kj::ArrayPtr<const capnp::word> words;
  if (reinterpret_cast<uintptr_t>(f.bytes.data()) % alignof(capnp::word) == 0) {
    words = kj::arrayPtr(reinterpret_cast<const capnp::word*>(f.bytes.data()),
                         f.bytes.size() / sizeof(capnp::word));
  } else {
    copy = kj::heapArray<capnp::word>(f.bytes.size() / sizeof(capnp::word));
    std::memcpy(copy.begin(), f.bytes.data(), f.bytes.size());
    words = copy;
  }
  capnp::ReaderOptions options;
  // Bounded by this frame's own size, not by the largest frame allowed: a list of
  // zero-sized elements costs no bytes, and a 100-byte frame could otherwise make the
  // decoder walk millions of them (found by fuzzing: acks at 79 decodes per second).
  options.traversalLimitInWords =
    std::min<uint64_t>(limits.max_frame_bytes / sizeof(capnp::word) + 1,
                       4 * (f.bytes.size() / sizeof(capnp::word)) + 64);
  options.nestingLimit = 16;
  try {
    capnp::FlatArrayMessageReader reader(words, options);
    return fn(reader);
  } catch (const kj::Exception& e) {
    return malformed(std::string(what) +
                     " frame rejected by Cap'n Proto: " + e.getDescription().cStr());
  }
}

inline std::string as_string(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}

inline kj::ArrayPtr<const kj::byte> as_bytes(const std::string& s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

} // namespace mlr::messages::detail
