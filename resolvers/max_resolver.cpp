// An example of a resolver written by a user: it relies only on the public protocol in
// resolvers/resolver.hpp. Rule: keep the version whose value is the largest number.
// Values that do not parse as a number ("nan" included: NaN is unordered, so it would
// break the order), and deletes, rank below every number; infinities are numbers; ties
// fall back to last-writer-wins, so the choice is a total order and every node agrees.

#include "resolvers/resolver.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <optional>

namespace mlr::resolvers {

namespace {

std::optional<long double> as_number(const messages::version& v) {
  if (v.tombstone || v.value.empty())
    return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long double x = std::strtold(v.value.c_str(), &end);
  if (errno != 0 || end != v.value.c_str() + v.value.size() || std::isnan(x))
    return std::nullopt;
  return x;
}

bool max_less(const messages::version& a, const messages::version& b) {
  auto x = as_number(a);
  auto y = as_number(b);
  if (x.has_value() != y.has_value())
    return y.has_value();
  if (x && *x != *y)
    return *x < *y;
  return messages::lww_before(a, b);
}

resolver_actor::behavior_type max_resolver() {
  return {
    [](resolve_atom, const std::string&, const std::vector<messages::version>& versions) {
      std::vector<messages::dot> keep;
      if (!versions.empty())
        keep.push_back(std::max_element(versions.begin(), versions.end(), max_less)->id);
      return resolution::select(std::move(keep));
    },
  };
}

} // namespace

resolver_actor spawn_max_resolver(caf::actor_system& sys) {
  return sys.spawn(max_resolver);
}

} // namespace mlr::resolvers
