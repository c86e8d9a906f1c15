#include "transport/handshake.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace mlr::actors {

std::string random_nonce() {
  std::string out(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), 32) != 1)
    throw std::runtime_error("the system's random number generator failed");
  return out;
}

uint64_t random_incarnation() {
  uint64_t x = 0;
  while (x == 0) {
    auto n = random_nonce();
    std::memcpy(&x, n.data(), sizeof(x));
  }
  return x;
}

std::string hmac_sha256(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

result<uint32_t> check_hello(const node_identity& self, const messages::hello& h) {
  if (h.min_version > h.max_version)
    return error{errc::invalid_argument, "it announces an empty protocol range " +
                                           std::to_string(h.min_version) + "-" +
                                           std::to_string(h.max_version)};
  auto lo = std::max(self.min_version, h.min_version);
  auto hi = std::min(self.max_version, h.max_version);
  if (lo > hi)
    return error{errc::invalid_argument, "no common protocol version: this node speaks " +
                                           std::to_string(self.min_version) + "-" +
                                           std::to_string(self.max_version) + ", the peer " +
                                           std::to_string(h.min_version) + "-" +
                                           std::to_string(h.max_version)};
  if (h.nonce.size() != 32)
    return error{errc::invalid_argument, "its challenge nonce has " +
                                           std::to_string(h.nonce.size()) + " bytes instead of 32"};
  return hi;
}

result<messages::node_index> check_member(const node_identity& self, const std::string& id) {
  if (id == self.node_id)
    return error{errc::unknown_node, "it claims this node's own id '" + id + "'"};
  auto i = std::find(self.members.begin(), self.members.end(), id);
  if (i == self.members.end())
    return error{errc::unknown_node,
                 "unknown node id '" + id + "' (not in this node's --peer list or cluster file)"};
  return static_cast<messages::node_index>(i - self.members.begin());
}

namespace {

void append_sized(std::string& out, const messages::frame& f) {
  uint64_t n = f.bytes.size();
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out.append(reinterpret_cast<const char*>(f.bytes.data()), f.bytes.size());
}

// Length-prefixed, so that no two different (cluster, transcript) pairs hash alike.
std::string sized(const std::string& s) {
  messages::frame f;
  f.bytes.assign(s.begin(), s.end());
  std::string out;
  append_sized(out, f);
  return out;
}

} // namespace

std::string transcript(const messages::frame& hello, const messages::frame& challenge) {
  std::string out;
  append_sized(out, hello);
  append_sized(out, challenge);
  return out;
}

std::string dialer_proof(const std::string& secret, const std::string& cluster,
                         const std::string& transcript) {
  return hmac_sha256(secret, "mlr-dialer-2" + sized(cluster) + transcript);
}

std::string acceptor_proof(const std::string& secret, const std::string& cluster,
                           const std::string& transcript, const std::string& dialer_proof,
                           const std::string& welcome_fields) {
  return hmac_sha256(secret, "mlr-acceptor-2" + sized(cluster) + transcript + sized(dialer_proof) +
                               sized(welcome_fields));
}

std::string welcome_fields(const messages::welcome& w) {
  std::string out = sized(w.node_id) + std::to_string(w.incarnation) + "|";
  for (auto& [s, c] : w.applied.entries())
    out +=
      std::to_string(s.node) + "." + std::to_string(s.incarnation) + ":" + std::to_string(c) + ",";
  return out;
}

bool same_proof(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

} // namespace mlr::actors
