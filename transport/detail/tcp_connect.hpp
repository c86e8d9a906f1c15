#pragma once
// A TCP connect that gives up after a timeout. CAF 0.17's add_tcp_scribe(host, port)
// connects with a blocking connect() on the broker's (the multiplexer's) thread, so a peer
// whose packets are silently dropped (a partition, a firewall) would freeze every
// connection of the node for the kernel's SYN timeout, about two minutes. The dialer runs
// this on a detached thread instead and adopts the socket with add_scribe(fd).
// No CAF here.

#include "messages/unique_fd.hpp"

#include <chrono>
#include <cstdint>
#include <string>

namespace mlr::actors {

struct connect_result {
  unique_fd fd;      ///< a connected socket, or none
  std::string error; ///< why not, when fd is -1
};

/// Resolves `host` and connects to `port`, trying each address, waiting at most `timeout`
/// in all. Blocks the calling thread.
connect_result tcp_connect(const std::string& host, uint16_t port,
                           std::chrono::milliseconds timeout);

} // namespace mlr::actors
