#include "secret_file.hpp"

#include <fstream>
#include <sstream>

namespace mlr::apps {

result<std::string> read_secret(const std::string& path, const std::string& what) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    return error{errc::invalid_argument, "cannot read the " + what + " file '" + path + "'"};
  std::stringstream buf;
  buf << f.rdbuf();
  auto s = buf.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
    s.pop_back();
  if (s.empty())
    return error{errc::invalid_argument, "the " + what + " file '" + path + "' is empty"};
  return s;
}

} // namespace mlr::apps
