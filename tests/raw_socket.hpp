#pragma once
// A raw TCP connection for speaking (or garbling) mlr's protocols by hand in process
// tests: frames in and out, the handshake as a dialer, and "did the node close it".

#include "messages/codec.hpp"
#include "messages/wire.hpp"
#include "transport/handshake.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <random>
#include <string>

namespace mlr::testing {

class raw_socket {
public:
  explicit raw_socket(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
      FAIL("cannot connect to port " << port);
  }
  explicit raw_socket(int fd) : fd_(fd) {}
  raw_socket(const raw_socket&) = delete;
  raw_socket& operator=(const raw_socket&) = delete;
  ~raw_socket() {
    if (fd_ >= 0)
      ::close(fd_);
  }

  int fd() const { return fd_; }

  void send(const std::string& bytes) { ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL); }
  void send(const messages::frame& f) { send(std::string(f.bytes.begin(), f.bytes.end())); }
  void send(messages::wire_kind kind, const messages::frame& payload, uint64_t id = 0) {
    send(messages::encode(messages::wire_header{kind, id}));
    send(payload);
  }
  /// The next whole frame, or nullopt if none arrives in time or the peer closed.
  std::optional<messages::frame>
  frame(std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto next = splitter_.next();
      if (next && *next)
        return **next;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
      if (left <= 0)
        return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0)
        continue;
      char buf[65536];
      auto n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0)
        return std::nullopt;
      splitter_.append(buf, static_cast<size_t>(n));
    }
  }
  /// The next (header, payload) message.
  std::optional<std::pair<messages::wire_header, messages::frame>>
  message(std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
    auto h = frame(timeout);
    if (!h)
      return std::nullopt;
    auto header = messages::decode_header(*h);
    if (!header)
      return std::nullopt;
    auto p = frame(timeout);
    if (!p)
      return std::nullopt;
    return std::make_pair(*header, std::move(*p));
  }
  /// Raw bytes until `n` arrived or the time is up (for the RESP and client ports).
  std::string read_some(std::chrono::milliseconds timeout, size_t n = 1) {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out.size() < n) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
      if (left <= 0)
        break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0)
        continue;
      char buf[65536];
      auto got = ::recv(fd_, buf, sizeof(buf), 0);
      if (got <= 0)
        break;
      out.append(buf, static_cast<size_t>(got));
    }
    return out;
  }
  /// True when the peer closed the connection within the timeout.
  bool closed_by_peer(std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) {
        char buf[4096];
        if (::recv(fd_, buf, sizeof(buf), 0) <= 0)
          return true;
      }
    }
    return false;
  }

private:
  int fd_ = -1;
  messages::frame_splitter splitter_{64u << 20};
};

inline std::string garbage(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s)
    c = static_cast<char>(rng());
  return s;
}

inline messages::hello hello_from(const std::string& id) {
  messages::hello h;
  h.node_id = id;
  h.nonce = actors::random_nonce();
  return h;
}

/// Runs the dialer's half of the handshake (transport/handshake.hpp) on `s`, as node `id` of
/// `cluster` with `secret`. The welcome, or nullopt when the node refused or closed.
inline std::optional<messages::welcome> handshake_as(raw_socket& s, const std::string& id,
                                                     const std::string& cluster,
                                                     const std::string& secret) {
  auto hello = messages::encode(hello_from(id));
  s.send(messages::wire_kind::hello, hello);
  auto challenge = s.message();
  if (!challenge || challenge->first.kind != messages::wire_kind::hello_reply)
    return std::nullopt;
  auto t = actors::transcript(hello, challenge->second);
  auto proof = actors::dialer_proof(secret, cluster, t);
  s.send(messages::wire_kind::proof, messages::encode_proof(proof));
  auto w = s.message();
  if (!w || w->first.kind != messages::wire_kind::welcome)
    return std::nullopt;
  auto welcome = messages::decode_welcome(w->second);
  if (!welcome ||
      !actors::same_proof(welcome->proof, actors::acceptor_proof(secret, cluster, t, proof,
                                                                 actors::welcome_fields(*welcome))))
    return std::nullopt;
  return *welcome;
}

} // namespace mlr::testing
