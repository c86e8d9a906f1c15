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
  case errc::retry_later:
    return "retry_later";
  case errc::refused:
    return "refused";
  case errc::too_large:
    return "too_large";
  case errc::storage_full:
    return "storage_full";
  case errc::unauthenticated:
    return "unauthenticated";
  }
  return "unknown";
}

} // namespace mlr
