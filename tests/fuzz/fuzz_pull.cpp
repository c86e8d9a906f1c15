// libFuzzer target: pull requests (ranges of counters a peer asks for).
#include "messages/codec.hpp"

#include <cstdint>
#include <cstdlib>

using namespace mlr::messages;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  frame f;
  f.bytes.assign(data, data + size);
  (void)peek_pull_requester(f);
  auto p = decode_pull(f);
  if (!p)
    return 0;
  for (auto& r : p->ranges)
    if (r.first == 0 || r.first > r.last || r.last >= (uint64_t{1} << 48))
      std::abort();
  return 0;
}
