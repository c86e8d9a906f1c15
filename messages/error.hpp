#pragma once
// Errors as values for the whole project. `errc` is the one error enum; it
// travels in caf::error (actors/protocol.hpp: make_error, and from_caf, which keeps the code)
// and on the wire as its number, so codes are only ever appended.
// `result<T>` is what code below the actor layer returns instead of throwing.

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace mlr {

enum class errc : uint8_t {
  none = 0,
  malformed_frame,  ///< bytes that are not a valid Cap'n Proto message of the expected type
  oversized_frame,  ///< a frame above the configured size limit
  invalid_argument, ///< a caller passed something unusable (the message says what)
  bad_topology,     ///< a topology that cannot be parsed or is not strongly connected
  unknown_node,     ///< a node index or name that is not a member
  resolver_failed,  ///< a resolver answered with an error or not at all
  timeout,          ///< an operation did not finish in time
  peer_down,        ///< the connection to that node is down: nothing was sent
  // What the caller should do, for the errors a client meets (appended: the codes travel on
  // the wire as numbers, so existing ones keep theirs).
  retry_later,     ///< nothing was done; the same request may succeed later (busy, catching up)
  refused,         ///< nothing was done and retrying will not help (reserved key, removed node)
  too_large,       ///< a key, value, request or reply above a limit: nothing was done
  storage_full,    ///< the data directory refuses writes (full or failing): see the node's log
  unauthenticated, ///< no secret or a wrong one: authenticate first
};

/// Human-readable name of a code, for logs and error messages.
const char* to_string(errc code);

struct error {
  errc code = errc::none;
  std::string message;
};

/// Either a value or an error. Deliberately tiny: no exceptions, no CAF.
template <class T> class result {
public:
  result(T value) : data_(std::move(value)) {}
  result(error err) : data_(std::move(err)) {}

  explicit operator bool() const { return data_.index() == 0; }
  T& operator*() { return std::get<0>(data_); }
  const T& operator*() const { return std::get<0>(data_); }
  T* operator->() { return &std::get<0>(data_); }
  const T* operator->() const { return &std::get<0>(data_); }
  const error& err() const { return std::get<1>(data_); }

private:
  std::variant<T, error> data_;
};

} // namespace mlr
