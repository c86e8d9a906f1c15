// libFuzzer target: the RESP input path (resp_reader: hiredis with bounded object
// functions), fed in chunks whose sizes come from the input, under a 4 KiB bulk limit.
#include "gateways/resp_reader.hpp"

#include <cstdint>
#include <cstdlib>

using mlr::actors::resp_reader;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1)
    return 0;
  size_t chunk = 1 + data[0] % 128;
  resp_reader r(4096);
  for (size_t at = 1; at < size; at += chunk) {
    r.feed(reinterpret_cast<const char*>(data + at), std::min(chunk, size - at));
    for (;;) {
      auto next = r.next();
      if (!next)
        return 0; // a protocol error: the connection would be closed
      if (!*next)
        break;
      for (auto& arg : **next)
        if (arg.size() > 4096)
          std::abort();
    }
    if (r.buffered() > 4096 + (64u << 10) + 128)
      std::abort(); // unread input stays bounded
  }
  return 0;
}
