#pragma once
// Parts of the mlr CLI (apps/mlr_cli.cpp) that need no command line: the status page, the
// typed commands, and how usage errors are reported.

#include "client/native_client.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mlr::apps {

/// Prints "mlr: MSG" and the help hint to standard error; returns 2 (bad usage).
int fail_usage(const std::string& msg);

/// The status document (`mlr status --json`) as lines for a person.
std::string human_status(const nlohmann::json& j);

/// incr, sadd, srem, hset, hdel, hincr (DESIGN.md, "Convergent data types") and read, with
/// `words` the command and its arguments (typed_arity checked their number); nothing when
/// words[0] is not one of them. The exit status otherwise.
/// `context`: --context's token (text insert and delete take it).
std::optional<int> typed_command(const std::vector<std::string>& words, client::connection& n,
                                 const std::string* context = nullptr);

/// The number of words each typed command takes (its name included): {min, max}.
std::optional<std::pair<size_t, size_t>> typed_arity(const std::string& cmd);

} // namespace mlr::apps
