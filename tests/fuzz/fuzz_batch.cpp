// libFuzzer target: the event-batch decoder (links' batches, pull answers, state-transfer
// chunks) and the sender peek the acceptor uses. A decoded batch must encode and decode
// again to the same events: whatever the decoder accepts, the node can also ship.
#include "messages/codec.hpp"

#include <cstdint>
#include <cstdlib>

using namespace mlr::messages;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  frame f;
  f.bytes.assign(data, data + size);
  decode_limits limits;
  limits.max_frame_bytes = 1u << 20;
  (void)peek_batch_sender(f, limits);
  auto b = decode_batch(f, limits);
  if (!b)
    return 0;
  auto again = decode_batch(encode(*b));
  if (!again || again->events.size() != b->events.size())
    std::abort();
  for (size_t i = 0; i < b->events.size(); ++i)
    if (again->events[i].id != b->events[i].id || again->events[i].key != b->events[i].key ||
        again->events[i].value != b->events[i].value)
      std::abort();
  return 0;
}
