#pragma once
// The shell's file reader for topologies named by a file (core/graph.hpp, text_reader): the
// core reads no files itself.

#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace mlr::topology {

/// The whole text of the file at `path`, or nothing if it cannot be read.
inline std::optional<std::string> read_text_file(const std::string& path) {
  std::ifstream file(path);
  if (!file)
    return std::nullopt;
  std::stringstream buf;
  buf << file.rdbuf();
  return buf.str();
}

} // namespace mlr::topology
