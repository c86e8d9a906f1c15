// libFuzzer target: the frame splitter that cuts every connection's bytes into Cap'n Proto
// stream frames, fed in chunks whose sizes come from the input, under a small limit. A frame
// it hands out never exceeds the limit.
#include "messages/wire.hpp"

#include <cstdint>
#include <cstdlib>

using namespace mlr::messages;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1)
    return 0;
  size_t chunk = 1 + data[0] % 64;
  const size_t limit = 4096;
  frame_splitter s(limit);
  for (size_t at = 1; at < size; at += chunk) {
    s.append(data + at, std::min(chunk, size - at));
    for (;;) {
      auto next = s.next();
      if (!next)
        return 0; // the connection would be closed
      if (!*next)
        break;
      if ((*next)->bytes.size() > limit)
        std::abort();
    }
  }
  return 0;
}
