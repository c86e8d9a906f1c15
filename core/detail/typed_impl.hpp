#pragma once
// Shared by typed.cpp and typed_read.cpp: how a version counts for a key's type and value.

#include "core/typed.hpp"

namespace mlr::core::typed::detail {

/// The type a version belongs to.
key_type type_of(messages::value_kind k);
/// Whether a version counts (a counter share only while increments remain unremoved).
bool live(const messages::version& v);
/// The value of the shares of `kind` in `field`, modulo 2^64.
uint64_t share_sum(const std::vector<messages::version>& vs, messages::value_kind kind,
                   const std::string& field);

} // namespace mlr::core::typed::detail
