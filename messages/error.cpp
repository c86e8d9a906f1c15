#include "messages/error.hpp"

namespace mlr {

const char* to_string(errc code) {
  switch (code) {
  case errc::none:
    return "none";
  case errc::malformed_frame:
    return "malformed_frame";
  case errc::oversized_frame:
    return "oversized_frame";
  case errc::invalid_argument:
    return "invalid_argument";
  case errc::bad_topology:
    return "bad_topology";
  case errc::unknown_node:
    return "unknown_node";
  case errc::resolver_failed:
    return "resolver_failed";
  case errc::timeout:
    return "timeout";
  case errc::peer_down:
    return "peer_down";
  }
  return "unknown";
}

} // namespace mlr
