// libFuzzer target: the topology specs a node accepts at runtime (the router every node
// uses for its topology key) and the edge-list files of cluster files and `mlr topology`.
#include "core/graph.hpp"
#include "core/router.hpp"

#include <cstdint>
#include <cstdlib>

using namespace mlr;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string spec(reinterpret_cast<const char*>(data), size);
  static auto route = mlr::core::make_router({"n0", "n1", "n2"}, 1, {}, true);
  auto r = route(spec, nullptr);
  if (r) {
    if (r->members.size() > mlr::core::max_members || r->members.size() < 3)
      std::abort();
    // What a node routes by, it can route by again (it is what it stores).
    if (!route(r->stored, &*r))
      std::abort();
  }
  (void)mlr::core::parse_edge_list(spec);
  return 0;
}
