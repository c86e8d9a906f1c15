#pragma once
// Secrets read from files (the cluster secret, the client and admin secrets), shared by
// mlr-node and the mlr CLI: the file's content without trailing newlines.

#include "messages/error.hpp"

#include <string>

namespace mlr::apps {

/// An error if the file cannot be read or is empty; `what` names the secret in messages.
result<std::string> read_secret(const std::string& path,
                                const std::string& what = "cluster secret");

} // namespace mlr::apps
