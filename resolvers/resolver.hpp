#pragma once
// The resolver protocol: how a leader asks what a key holds when concurrent versions meet.
//
// Contract (DESIGN.md, "Resolvers: the contract"):
// - The leader sends `(resolve_atom, key, versions)` only when versions really are
//   concurrent (none replaces another). `versions` is the key's whole live set, tombstones
//   included, in a deterministic order (by dot).
// - The reply names the dots to keep: a non-empty subset of the input. Everything else is
//   discarded. A reply that is empty or names a dot not in the input counts as a failure.
// - The answer must be a deterministic function of the *set* of versions, never of arrival
//   order or of the node running it, and selecting must compose: resolving A, then
//   resolving (kept ∪ B), must keep what resolving A ∪ B keeps. Every selection by a total
//   order (last-writer-wins, largest value) and keeping everything (multi-value) qualify.
// - An error reply or no reply within the leader's timeout leaves the versions as siblings
//   and records the conflict as unresolved. Nothing is dropped.
//
// Writing your own: implement `resolver_actor::behavior_type` and spawn it; see
// resolvers/max_resolver.cpp, which uses nothing but this header.

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

/// A conflict resolver. Request: key and its concurrent versions. Reply: the dots to keep.
using resolver_actor = caf::typed_actor<caf::replies_to<
  resolve_atom, std::string, std::vector<messages::version>>::with<std::vector<messages::dot>>>;

/// Last-writer-wins: keeps the version with the highest HLC, ties broken by the full dot
/// (node, incarnation, counter), so every node picks the same winner.
resolver_actor spawn_lww_resolver(caf::actor_system& sys);

/// Multi-value (Riak's allow_mult, CouchDB's _conflicts): keeps every sibling until a write
/// whose context covers them replaces them.
resolver_actor spawn_multi_resolver(caf::actor_system& sys);

/// The example of a user-written resolver: keeps the numerically largest value.
resolver_actor spawn_max_resolver(caf::actor_system& sys);

} // namespace mlr::resolvers

#include <functional>

namespace mlr::resolvers {

/// Spawns one resolver for a node.
using resolver_factory = std::function<resolver_actor(caf::actor_system&)>;

/// The factory for a built-in resolver by name ("lww", "multi", "max"); empty if unknown.
resolver_factory builtin_resolver(const std::string& name);

} // namespace mlr::resolvers
