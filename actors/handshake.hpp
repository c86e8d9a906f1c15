#pragma once
// The connection handshake between two nodes, without sockets: build and check the hello,
// its reply and the proof. Mutual authentication is an HMAC-SHA256 challenge over the
// cluster secret: each side signs the other's random nonce, so neither the secret nor a
// reusable proof ever crosses the wire. Every refusal says which check failed.

#include "messages/error.hpp"
#include "messages/wire.hpp"

#include <string>
#include <vector>

namespace mlr::actors {

struct node_identity {
  std::string cluster;
  std::string node_id;
  uint64_t incarnation = 0;
  std::string secret;
  uint32_t min_version = 1;
  uint32_t max_version = 1;
  /// Every member's id; a hello from anyone else is refused.
  std::vector<std::string> members;
};

/// 32 random bytes from the system's CSPRNG.
std::string random_nonce();

/// 64-bit random id for an incarnation (never 0).
uint64_t random_incarnation();

std::string hmac_sha256(const std::string& key, const std::string& data);

/// The acceptor checks a hello: cluster, membership, protocol versions. Returns the version
/// both speak (the highest common one).
result<uint32_t> check_hello(const node_identity& self, const messages::hello& h);

/// What the acceptor proves: that it knows the secret, bound to both nonces.
std::string acceptor_proof(const std::string& secret, const std::string& dialer_nonce,
                           const std::string& acceptor_nonce);
/// What the dialer proves in return.
std::string dialer_proof(const std::string& secret, const std::string& acceptor_nonce,
                         const std::string& dialer_nonce);

/// Compares proofs in constant time.
bool same_proof(const std::string& a, const std::string& b);

} // namespace mlr::actors
