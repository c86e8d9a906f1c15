#pragma once
// CAF `inspect` overloads for mlr's value types, so that they can travel in CAF messages
// (and through any CAF serializer). Header-only and templated on the inspector: it needs
// only caf/meta/type_name.hpp, and mlr_messages itself does not link CAF.

#include "messages/conflict_record.hpp"
#include "messages/dot.hpp"
#include "messages/event.hpp"
#include "messages/frame.hpp"
#include "messages/hlc.hpp"
#include "messages/seen_by.hpp"
#include "messages/version_vector.hpp"

#include <caf/meta/type_name.hpp>

namespace mlr::messages {

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, source& x) {
  return f(caf::meta::type_name("mlr.source"), x.node, x.incarnation);
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, dot& x) {
  return f(caf::meta::type_name("mlr.dot"), x.origin, x.counter);
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, hlc& x) {
  return f(caf::meta::type_name("mlr.hlc"), x.value);
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, seen_by& x) {
  return f(caf::meta::type_name("mlr.seen_by"), x.words());
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, version_vector& x) {
  return f(caf::meta::type_name("mlr.version_vector"), x.unsafe_entries());
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, version& x) {
  return f(caf::meta::type_name("mlr.version"), x.id, x.time, x.tombstone, x.value, x.kind,
           x.field);
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, frame& x) {
  return f(caf::meta::type_name("mlr.frame"), x.bytes);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, conflict_record& x) {
  return f(caf::meta::type_name("mlr.conflict_record"), x.seq, x.at_ms, x.key, x.resolver,
           x.versions, x.kept, x.resolved, x.merged, x.values_cut, x.reason, x.value);
}

} // namespace mlr::messages
