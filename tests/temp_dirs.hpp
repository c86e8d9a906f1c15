#pragma once
// Scratch directories for tests, removed when the test program exits, pass or fail.

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <stdlib.h>

namespace mlr::testing {

/// The scratch directories this test program made; removed when it exits (its processes
/// are stopped by then), unless MLR_KEEP_TEST_DIRS is set, to look at the logs.
class temp_dirs {
public:
  static temp_dirs& instance() {
    static temp_dirs dirs;
    return dirs;
  }
  std::string make() {
    char tmpl[] = "/tmp/mlr-test-XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    dirs_.push_back(dir);
    return dir;
  }
  ~temp_dirs() {
    if (std::getenv("MLR_KEEP_TEST_DIRS"))
      return;
    for (auto& d : dirs_) {
      std::error_code ignored;
      std::filesystem::remove_all(d, ignored);
    }
  }

private:
  std::vector<std::string> dirs_;
};

} // namespace mlr::testing
