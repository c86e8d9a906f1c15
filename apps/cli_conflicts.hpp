#pragma once
// `mlr conflicts` and `mlr resolver set`: the conflict feed and the resolver of a running
// node, for the mlr CLI (apps/mlr_cli.cpp).

#include "client/native_client.hpp"

#include <cstdint>
#include <string>

namespace mlr::apps {

struct conflicts_options {
  uint64_t since = 0;   ///< records after this sequence number
  bool follow = false;  ///< keep reading new records as they come
  int64_t count = -1;   ///< stop after this many records (-1: all, or for ever with follow)
  bool json = false;    ///< one JSON object per record
  bool replay = false;  ///< ask a resolver each record's question again and compare
  std::string resolver; ///< replay through this built-in resolver (default: the recorded one)
};

/// Prints the feed; returns the exit status (1 when a replay differed or the node failed).
int print_conflicts(client::connection& conn, const conflicts_options& o);

} // namespace mlr::apps
