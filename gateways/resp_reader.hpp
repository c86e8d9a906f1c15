#pragma once
// Reads Redis requests (RESP arrays of bulk strings) from a connection's bytes, with
// hiredis's redisReader doing the parsing, and every count and length bounded before
// anything is allocated for it (DESIGN.md, "Hostile input"):
// - a multibulk count above 1,048,576, a nested array, or an argument that is not a bulk
//   string is refused as soon as its header is parsed;
// - a bulk string announced above `max_bulk` is refused as soon as its length arrived;
// - at most `max_bulk` plus 64 KiB of one request is held unparsed.
// A refusal is final for the connection (RESP cannot be resynchronised): reply
// "-ERR Protocol error: <why>" and close. CAF-free, so the fuzzer drives exactly this.

#include "messages/error.hpp"

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlr::actors {

inline constexpr size_t max_multibulk = 1u << 20;

class resp_reader {
public:
  explicit resp_reader(size_t max_bulk);
  ~resp_reader();
  resp_reader(const resp_reader&) = delete;
  resp_reader& operator=(const resp_reader&) = delete;

  void feed(const char* data, size_t size);

  /// The next whole request (its arguments; empty for "*0"), nothing while more bytes are
  /// needed, or the protocol error that ends the connection.
  result<std::optional<std::vector<std::string>>> next();

  /// Bytes received and not yet taken as a request.
  size_t buffered() const;
  size_t max_bulk() const { return max_bulk_; }

  /// Before the client authenticated: requests of at most 10 arguments and 16 KiB in all
  /// (Redis's limits for unauthenticated clients), so a stranger cannot make the node
  /// hold more than that. After: the arguments of one request add up to at most
  /// `max_bulk` plus 64 KiB.
  void set_authenticated(bool yes);

  struct impl; ///< the hiredis reader and what its object functions need

private:
  std::unique_ptr<impl> impl_;
  std::string limit_words() const;
  size_t max_bulk_;
};

} // namespace mlr::actors
