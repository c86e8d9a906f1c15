#include "transport/detail/tcp_connect.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace mlr::actors {

connect_result tcp_connect(const std::string& host, uint16_t port,
                           std::chrono::milliseconds timeout) {
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  auto service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0)
    return {unique_fd{}, "cannot resolve '" + host + "': " + ::gai_strerror(rc)};
  connect_result out{unique_fd{}, "no address for '" + host + "'"};
  for (auto* a = found; a && !out.fd; a = a->ai_next) {
    unique_fd owned{::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol)};
    int fd = owned.get();
    if (!owned) {
      out.error = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
      pollfd p{fd, POLLOUT, 0};
      rc = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
      if (rc == 0) {
        out.error = "connect timed out after " + std::to_string(timeout.count()) + " ms";
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc != 0) {
      out.error = std::string("connect: ") + std::strerror(errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    out = {std::move(owned), {}};
  }
  ::freeaddrinfo(found);
  return out;
}

} // namespace mlr::actors
