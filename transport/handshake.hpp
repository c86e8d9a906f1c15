#pragma once
// The connection handshake between two nodes, without sockets: build and check the hello,
// the challenge and the two proofs (protocol version 2; the wire layout is in mlr.capnp).
//
// What it promises:
// - Nothing a connection sends is believed, and nothing about this node (its id, cluster
//   name, incarnation, version vector) is told to it, before it has proved that it knows
//   the cluster secret. The acceptor answers a hello with a bare challenge (a version and
//   a nonce); the dialer proves first; only then does the acceptor say who it is.
// - Both proofs are HMAC-SHA256 over the cluster secret, the cluster name and the whole
//   transcript (the exact bytes of the hello and of the challenge), so no field of either
//   can be changed or replayed into another handshake. The cluster name never crosses the
//   wire; a wrong one fails like a wrong secret.
// - Checks that need no secret (protocol range, nonce size) refuse at once and name only
//   protocol facts; the membership check runs after the proof.

#include "messages/error.hpp"
#include "messages/frame.hpp"
#include "messages/wire.hpp"

#include <string>
#include <vector>

namespace mlr::actors {

struct node_identity {
  std::string cluster;
  std::string node_id;
  uint64_t incarnation = 0;
  std::string secret;
  uint32_t min_version = 2;
  uint32_t max_version = 2;
  /// Every member's id; a proven peer claiming any other id is refused.
  std::vector<std::string> members;
};

/// 32 random bytes from the system's CSPRNG.
std::string random_nonce();

/// 64-bit random id for an incarnation (never 0).
uint64_t random_incarnation();

std::string hmac_sha256(const std::string& key, const std::string& data);

/// The acceptor's checks before any proof: the protocol range and the nonce. Returns the
/// version both speak (the highest common one). Refusals name protocol facts only.
result<uint32_t> check_hello(const node_identity& self, const messages::hello& h);

/// The acceptor's check once the dialer proved itself: the id it claims is another member.
/// Returns its node index.
result<messages::node_index> check_member(const node_identity& self, const std::string& id);

/// What both proofs cover: the exact bytes of the hello and of the challenge, each with its
/// length in front.
std::string transcript(const messages::frame& hello, const messages::frame& challenge);

/// The dialer's proof, over the cluster name and the transcript.
std::string dialer_proof(const std::string& secret, const std::string& cluster,
                         const std::string& transcript);
/// The acceptor's proof, over the same, the dialer's proof and what its welcome says (its
/// id, incarnation and vector: welcome_fields), so that none of it can be changed on the way.
std::string acceptor_proof(const std::string& secret, const std::string& cluster,
                           const std::string& transcript, const std::string& dialer_proof,
                           const std::string& welcome_fields);

/// A welcome's id, incarnation and vector as the acceptor's proof covers them.
std::string welcome_fields(const messages::welcome& w);

/// Compares proofs in constant time.
bool same_proof(const std::string& a, const std::string& b);

} // namespace mlr::actors
