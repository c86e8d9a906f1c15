#pragma once
// The bytes of one standard Cap'n Proto stream message (segment table + segments), as
// capnp::writeMessage puts them on a socket. In process, CAF messages carry frames; between
// processes the same bytes go on the wire.

#include <cstdint>
#include <vector>

namespace mlr::messages {

struct frame {
  std::vector<uint8_t> bytes;

  friend bool operator==(const frame& a, const frame& b) { return a.bytes == b.bytes; }
};

} // namespace mlr::messages
