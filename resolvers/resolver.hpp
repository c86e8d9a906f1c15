#pragma once
// The resolver protocol: how a leader asks what a key holds when concurrent versions meet.
//
// Contract (DESIGN.md, "Resolvers: the contract"):
// - The leader sends `(resolve_atom, key, versions)` only when versions really are
//   concurrent (none replaces another). `versions` is the key's whole set of register
//   versions, tombstones included, in a deterministic order (by dot).
// - The reply is a `resolution`, one of two kinds:
//   - select: the dots to keep, a non-empty subset of the input; everything else is
//     discarded. A reply that is empty or names a dot not in the input counts as a failure.
//   - merge: one value that stands for all the input versions. Every node computes it from
//     the same set, so every node shows it without a new write. The inputs stay stored
//     beside it (a write that replaced only some of them elsewhere must still find them),
//     and the next write at the key replaces it with them. Its size is bounded like a
//     written value (--max-value-bytes): a larger one counts as a failure.
// - Laws. The answer must be a deterministic function of the *set* of versions, never of
//   arrival order or of the node running it, and it must compose like a join: commutative,
//   associative and idempotent on the set of versions. Resolving A, then resolving the
//   outcome together with B, must give what resolving A ∪ B gives; resolving an outcome
//   together with versions it already covers must give it back. Every selection by a total
//   order (last-writer-wins, largest value), keeping everything (multi-value), and a merge
//   that is a join (a set union, a per-key merge with a per-key join) qualify.
//   `mlr::node::check_resolver_laws` (node/law_checker.hpp) tests them on any resolver.
// - An error reply or no reply within the leader's timeout leaves the versions as siblings
//   and records the conflict as unresolved. Nothing is dropped.
//
// Writing your own: implement `resolver_actor::behavior_type` and spawn it; see
// resolvers/max_resolver.cpp (select) and resolvers/tags_resolver.cpp (merge), which use
// nothing but this header.

#include "messages/event.hpp"
#include "messages/inspect.hpp"

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <string>
#include <vector>

namespace mlr::resolvers {

using resolve_atom = caf::atom_constant<caf::atom("resolve")>;

/// A resolver's answer: the dots to keep (select), or one value for all the inputs (merge).
struct resolution {
  std::vector<messages::dot> keep; ///< select: the dots to keep
  bool merge = false;              ///< merge: `value` stands for every input
  std::string value;

  static resolution select(std::vector<messages::dot> keep) {
    resolution r;
    r.keep = std::move(keep);
    return r;
  }
  static resolution merged(std::string value) {
    resolution r;
    r.merge = true;
    r.value = std::move(value);
    return r;
  }
  friend bool operator==(const resolution& a, const resolution& b) {
    return a.merge == b.merge && (a.merge ? a.value == b.value : a.keep == b.keep);
  }
};

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, resolution& x) {
  return f(caf::meta::type_name("mlr.resolution"), x.keep, x.merge, x.value);
}

/// A conflict resolver. Request: key and its concurrent versions. Reply: a resolution.
using resolver_actor = caf::typed_actor<
  caf::replies_to<resolve_atom, std::string, std::vector<messages::version>>::with<resolution>>;

/// Last-writer-wins: keeps the version with the highest HLC, ties broken by the full dot
/// (node, incarnation, counter), so every node picks the same winner.
resolver_actor spawn_lww_resolver(caf::actor_system& sys);

/// Multi-value (Riak's allow_mult, CouchDB's _conflicts): keeps every sibling until a write
/// whose context covers them replaces them.
resolver_actor spawn_multi_resolver(caf::actor_system& sys);

/// The example of a user-written resolver: keeps the numerically largest value.
resolver_actor spawn_max_resolver(caf::actor_system& sys);

/// The example of a merging resolver: a value is a comma-separated list of tags, and
/// concurrent values merge into the union of their tags, sorted, without repeats (deletes
/// add no tags). When every input is a delete, last-writer-wins picks one.
resolver_actor spawn_tags_resolver(caf::actor_system& sys);

} // namespace mlr::resolvers

#include <functional>

namespace mlr::resolvers {

/// Spawns one resolver for a node.
using resolver_factory = std::function<resolver_actor(caf::actor_system&)>;

/// The factory for a built-in resolver by name ("lww", "multi", "max", "tags"); empty if
/// unknown.
resolver_factory builtin_resolver(const std::string& name);

} // namespace mlr::resolvers
