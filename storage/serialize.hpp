#pragma once
// The byte layout of what a store keeps on disk: log entries and a key's versions. Compact
// (LEB128 varints), private to storage, and checked on the way back: a corrupt record is
// an error value naming what was wrong, never a crash.

#include "messages/conflict_record.hpp"
#include "messages/error.hpp"
#include "storage/store.hpp"

#include <string>
#include <vector>

namespace mlr::storage {

std::string serialize(const log_entry& e);
result<log_entry> deserialize_log_entry(const std::string& bytes);

std::string serialize(const std::vector<messages::version>& versions);
result<std::vector<messages::version>> deserialize_versions(const std::string& bytes);

std::string serialize(const messages::version_vector& vv);
result<messages::version_vector> deserialize_version_vector(const std::string& bytes);

/// A conflict feed record (the core keeps them under meta names `conflict.<seq>`).
std::string serialize(const messages::conflict_record& c);
result<messages::conflict_record> deserialize_conflict_record(const std::string& bytes);

} // namespace mlr::storage
