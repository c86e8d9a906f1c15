#include "resolvers/resolver.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>

namespace mlr::resolvers {

using messages::dot;
using messages::version;

namespace {

resolver_actor::behavior_type lww_resolver() {
  return {
    [](resolve_atom, const std::string&, const std::vector<version>& versions) {
      std::vector<dot> keep;
      if (!versions.empty())
        keep.push_back(
          std::max_element(versions.begin(), versions.end(), messages::lww_before)->id);
      return resolution::select(std::move(keep));
    },
  };
}

resolver_actor::behavior_type multi_resolver() {
  return {
    [](resolve_atom, const std::string&, const std::vector<version>& versions) {
      std::vector<dot> keep;
      keep.reserve(versions.size());
      for (auto& v : versions)
        keep.push_back(v.id);
      return resolution::select(std::move(keep));
    },
  };
}

} // namespace

resolver_actor spawn_lww_resolver(caf::actor_system& sys) {
  return sys.spawn(lww_resolver);
}

resolver_actor spawn_multi_resolver(caf::actor_system& sys) {
  return sys.spawn(multi_resolver);
}

} // namespace mlr::resolvers

namespace mlr::resolvers {

resolver_factory builtin_resolver(const std::string& name) {
  if (name == "lww")
    return spawn_lww_resolver;
  if (name == "multi")
    return spawn_multi_resolver;
  if (name == "max")
    return spawn_max_resolver;
  if (name == "tags")
    return spawn_tags_resolver;
  return {};
}

} // namespace mlr::resolvers
