// libFuzzer target: the causal-context token a client hands back with a write.
#include "messages/wire.hpp"

#include <cstdint>
#include <cstdlib>
#include <set>

using namespace mlr::messages;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string token(reinterpret_cast<const char*>(data), size);
  auto dots = parse_context_token(token);
  if (!dots)
    return 0;
  std::set<source> origins;
  for (auto& d : *dots) {
    if (d.counter == 0 || d.counter >= (uint64_t{1} << 48) || !origins.insert(d.origin).second)
      std::abort(); // bounded, and one dot per origin incarnation
  }
  auto again = parse_context_token(to_context_token(*dots));
  if (!again || *again != *dots)
    std::abort();
  return 0;
}
