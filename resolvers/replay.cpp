#include "resolvers/replay.hpp"

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include <algorithm>

namespace mlr::resolvers {

namespace {

std::string show(std::vector<messages::dot> dots) {
  std::sort(dots.begin(), dots.end());
  std::string out = "{";
  for (auto& d : dots)
    out += (out.size() > 1 ? ", " : "") + messages::to_string(d);
  return out + "}";
}

std::string recorded(const messages::conflict_record& r) {
  return r.merged ? "merged " + std::to_string(r.value.size()) + " bytes" : "kept " + show(r.kept);
}

replay_outcome compare(const messages::conflict_record& r, const resolution& got) {
  replay_outcome o{r.seq, true, false, {}};
  if (got.merge != r.merged) {
    o.why = std::string("the resolver ") + (got.merge ? "merged" : "selected") +
            ", the record says " + recorded(r);
    return o;
  }
  if (got.merge) {
    o.same = got.value == r.value;
    if (!o.same)
      o.why = "merged into a different value (" + std::to_string(got.value.size()) +
              " bytes; the record has " + std::to_string(r.value.size()) + ")";
    return o;
  }
  auto kept = got.keep, want = r.kept;
  std::sort(kept.begin(), kept.end());
  std::sort(want.begin(), want.end());
  o.same = kept == want;
  if (!o.same)
    o.why = "kept " + show(kept) + ", the record says " + show(want);
  return o;
}

} // namespace

std::vector<replay_outcome> replay(caf::actor_system& sys, const resolver_actor& resolver,
                                   const std::vector<messages::conflict_record>& records,
                                   std::chrono::milliseconds timeout) {
  std::vector<replay_outcome> out;
  caf::scoped_actor self{sys};
  for (auto& r : records) {
    if (!r.resolved || r.values_cut) {
      out.push_back({r.seq, false, false,
                     !r.resolved ? "it stayed unresolved (" + r.reason + ")"
                                 : "its input values were too large to keep whole"});
      continue;
    }
    auto versions = r.versions;
    std::sort(versions.begin(), versions.end(), [](auto& a, auto& b) { return a.id < b.id; });
    self->request(resolver, timeout, resolve_atom::value, r.key, versions)
      .receive([&](resolution& got) { out.push_back(compare(r, got)); },
               [&](caf::error& e) {
                 out.push_back({r.seq, false, false, "the resolver failed: " + sys.render(e)});
               });
  }
  return out;
}

} // namespace mlr::resolvers
