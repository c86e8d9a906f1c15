// An example of a merging resolver written by a user, relying only on the public protocol
// in resolvers/resolver.hpp. A value is a comma-separated list of tags ("red,sale"); when
// concurrent values meet, the key shows the union of their tags, sorted and without
// repeats. A set union is a join (commutative, associative, idempotent), which is what the
// contract asks of a merge; deletes contribute no tags. When every input is a delete there
// is nothing to merge, and last-writer-wins keeps one of them.

#include "resolvers/resolver.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>
#include <set>

namespace mlr::resolvers {

namespace {

void add_tags(const std::string& value, std::set<std::string>& out) {
  size_t begin = 0;
  while (begin <= value.size()) {
    auto end = value.find(',', begin);
    if (end == std::string::npos)
      end = value.size();
    if (end > begin)
      out.insert(value.substr(begin, end - begin));
    begin = end + 1;
  }
}

resolver_actor::behavior_type tags_resolver() {
  return {
    [](resolve_atom, const std::string&, const std::vector<messages::version>& versions) {
      std::set<std::string> tags;
      bool any_value = false;
      for (auto& v : versions)
        if (!v.tombstone) {
          any_value = true;
          add_tags(v.value, tags);
        }
      if (!any_value) {
        std::vector<messages::dot> keep;
        if (!versions.empty())
          keep.push_back(
            std::max_element(versions.begin(), versions.end(), messages::lww_before)->id);
        return resolution::select(std::move(keep));
      }
      std::string joined;
      for (auto& t : tags)
        joined += (joined.empty() ? "" : ",") + t;
      return resolution::merged(std::move(joined));
    },
  };
}

} // namespace

resolver_actor spawn_tags_resolver(caf::actor_system& sys) {
  return sys.spawn(tags_resolver);
}

} // namespace mlr::resolvers
