#pragma once
// The resolver law checker: call it from your own test on your own resolver.
//
//   auto report = mlr::node::check_resolver_laws(my_factory);
//   REQUIRE(report.ok); // else report.law and report.counterexample say what broke
//
// It asks the resolver about random sets of concurrent versions (values from `value`,
// random deletes, random HLCs with ties) and checks the contract of resolvers/resolver.hpp,
// reporting the first counterexample:
// - valid: a selection keeps a non-empty subset of the input;
// - order: the answer does not depend on the input's order, nor on which instance of the
//   resolver (which node) gives it;
// - grouping (commutative, associative): resolving random groups, then their outcomes
//   together, gives what resolving the whole set gives;
// - idempotent: resolving an outcome together with input versions it already covers gives
//   the outcome back;
// - replicas: real replicas (core::replica, the code a leader runs) each write one of the
//   versions, exchange them in random orders and ask the resolver at random moments (some
//   answers arrive late, after the versions changed); every replica must end showing the
//   same value, and the value of resolving the whole set.
// Outcomes are compared by what a read shows (the values kept, or the merged value).

#include "resolvers/resolver.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <string>

namespace mlr::node {

struct law_options {
  uint64_t seed = 1;
  int trials = 200;        ///< random version sets (each checked under every law)
  size_t max_versions = 5; ///< concurrent versions per set (at least 2)
  /// A random value the resolver is meant for (its domain); empty: a mix of numbers, words
  /// and comma-separated tags.
  std::function<std::string(std::mt19937_64&)> value;
  std::chrono::milliseconds timeout{5000}; ///< per request
};

struct law_report {
  bool ok = true;
  int trials = 0;             ///< trials run (up to the first counterexample)
  std::string law;            ///< valid, order, grouping, idempotent or replicas
  std::string counterexample; ///< the versions, how they were grouped, and both outcomes
};

law_report check_resolver_laws(const resolvers::resolver_factory& make, const law_options& o = {});

} // namespace mlr::node
