// libFuzzer target: acks, gossip and heartbeats (version vectors from peers), and the
// receiver peek the acceptor and dialers use.
#include "messages/codec.hpp"

#include <cstdint>
#include <cstdlib>

using namespace mlr::messages;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  frame f;
  f.bytes.assign(data, data + size);
  (void)peek_ack_receiver(f);
  auto a = decode_ack(f);
  if (!a)
    return 0;
  for (auto& [s, c] : a->applied.entries())
    if (c >= (uint64_t{1} << 48))
      std::abort(); // counters from the wire stay below 2^48
  auto again = decode_ack(encode(*a));
  if (!again || again->applied != a->applied)
    std::abort();
  return 0;
}
