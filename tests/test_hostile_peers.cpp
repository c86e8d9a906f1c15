// Hostile peers against real mlr-node processes (issue "Hostile peers and clients"): a
// connection is believed and told nothing before it proves itself, the proof binds the
// transcript, a proven connection speaks only for its own node, and floods of unproven
// connections cost the node almost nothing.

#include "process_harness.hpp"
#include "raw_socket.hpp"

#include "messages/detail/capnp_io.hpp"
#include "messages/mlr.capnp.h"

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <memory>

using namespace mlr;
using namespace mlr::testing;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> fast_handshake{"--handshake-timeout-ms", "1500"};

uint64_t incarnation_of(process_cluster& c, size_t i) {
  auto s = c.status(i);
  REQUIRE(s);
  return std::stoull((*s)["incarnation"].get<std::string>(), nullptr, 16);
}

// A version-1 hello as an attacker would write it: a real member's id, the cluster's name,
// and a version vector claiming counter 2^64 - 1 for node 0's real incarnation.
messages::frame hostile_hello(uint64_t incarnation) {
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<wire::Hello>();
  root.setCluster("itest");
  root.setNodeId("n1");
  root.setIncarnation(99);
  root.setMinVersion(1);
  root.setMaxVersion(2);
  auto src = root.initSources(1);
  src[0].setNode(0);
  src[0].setIncarnation(incarnation);
  auto vv = root.initVersionVector(1);
  vv[0].setSource(0);
  vv[0].setCounter(UINT64_MAX);
  auto nonce = actors::random_nonce();
  root.setNonce(messages::detail::as_bytes(nonce));
  return messages::detail::to_frame(msg);
}

bool contains(const messages::frame& f, const std::string& needle) {
  std::string bytes(f.bytes.begin(), f.bytes.end());
  return bytes.find(needle) != std::string::npos;
}

void check_replicates(process_cluster& c, size_t from, const std::string& key) {
  REQUIRE(c.connect(from)->put(key, "ok"));
  for (size_t i = 0; i < c.size(); ++i)
    CHECK(eventually(
      [&] {
        auto g = c.connect(i)->get(key);
        return g && g->siblings == std::vector<std::string>{"ok"};
      },
      5s));
}

} // namespace

TEST_CASE("hostile peer: a hello with a forged vector and no proof learns nothing and moves "
          "nothing, it is closed after the handshake timeout") {
  process_cluster c(3, "mesh", fast_handshake);
  auto inc = incarnation_of(c, 0);
  auto cpu_before = cpu_seconds(c.node(0).pid());
  raw_socket s(c.ports(0).peer);
  s.send(messages::wire_kind::hello, hostile_hello(inc));
  auto challenge = s.message();
  REQUIRE(challenge);
  CHECK(challenge->first.kind == messages::wire_kind::hello_reply);
  // The challenge says nothing about the node: no cluster name, id, incarnation, vector.
  CHECK_FALSE(contains(challenge->second, "itest"));
  CHECK_FALSE(contains(challenge->second, "n0"));
  std::string inc_bytes(reinterpret_cast<const char*>(&inc), sizeof(inc));
  CHECK_FALSE(contains(challenge->second, inc_bytes));
  {
    auto words = kj::arrayPtr(reinterpret_cast<const capnp::word*>(challenge->second.bytes.data()),
                              challenge->second.bytes.size() / sizeof(capnp::word));
    capnp::FlatArrayMessageReader reader(words);
    auto r = reader.getRoot<wire::HelloReply>();
    CHECK(r.getCluster().size() == 0);
    CHECK(r.getNodeId().size() == 0);
    CHECK(r.getIncarnation() == 0);
    CHECK(r.getVersionVector().size() == 0);
    CHECK(r.getProof().size() == 0);
    CHECK(r.getNonce().size() == 32);
  }
  // The forged vector reached nobody: the node does not spin, keeps its incarnation (a
  // believed vector naming its own dots beyond its counter would make it take a new one),
  // and keeps replicating.
  std::this_thread::sleep_for(1s);
  auto cpu_used = cpu_seconds(c.node(0).pid()) - cpu_before;
  INFO("n0 used " << cpu_used << " CPU seconds in the second after the hello");
  CHECK(cpu_used < 0.5);
  check_replicates(c, 0, "after-forged-hello");
  check_replicates(c, 1, "after-forged-hello-2");
  CHECK(incarnation_of(c, 0) == inc);
  CHECK((*c.status(0))["stats"]["incarnations_taken"].get<uint64_t>() == 0);
  // No proof within 1.5 s: closed, with a log line.
  CHECK(s.closed_by_peer(4s));
  CHECK(eventually(
    [&] {
      return c.node(0).log().find("no proof within the handshake timeout") != std::string::npos;
    },
    3s));
  CHECK((*c.status(0))["inbound"]["handshake_timeouts"].get<uint64_t>() >= 1);
}

TEST_CASE("hostile peer: the proof binds the transcript, a proof for another hello is refused") {
  process_cluster c(2, "mesh");
  raw_socket s(c.ports(0).peer);
  auto hello = messages::encode(hello_from("n1"));
  s.send(messages::wire_kind::hello, hello);
  auto challenge = s.message();
  REQUIRE(challenge);
  // A proof over the right secret and cluster, but for a hello that names another nonce.
  auto other = messages::encode(hello_from("n1"));
  auto proof =
    actors::dialer_proof("test-secret", "itest", actors::transcript(other, challenge->second));
  s.send(messages::wire_kind::proof, messages::encode_proof(proof));
  auto answer = s.message();
  REQUIRE(answer);
  CHECK(answer->first.kind == messages::wire_kind::error);
  auto f = messages::decode_failure(answer->second);
  REQUIRE(f);
  CHECK(f->message.find("wrong cluster name or secret") != std::string::npos);
  CHECK(s.closed_by_peer());
  // The right cluster name is part of the proof too.
  raw_socket t(c.ports(0).peer);
  CHECK_FALSE(handshake_as(t, "n1", "another-cluster", "test-secret"));
  raw_socket u(c.ports(0).peer);
  auto w = handshake_as(u, "n1", "itest", "test-secret");
  REQUIRE(w);
  CHECK(w->node_id == "n0");
  check_replicates(c, 0, "after-bad-proofs");
}

TEST_CASE("hostile peer: a proven connection that names another sender is closed") {
  process_cluster c(3, "mesh");
  auto log_has = [&](const std::string& what) {
    return eventually([&] { return c.node(0).log().find(what) != std::string::npos; }, 5s);
  };
  SECTION("a batch from node 2 on node 1's connection") {
    raw_socket s(c.ports(0).peer);
    REQUIRE(handshake_as(s, "n1", "itest", "test-secret"));
    messages::event_batch b;
    b.sender = 2;
    s.send(messages::wire_kind::batch, messages::encode(b), 1);
    CHECK(s.closed_by_peer());
    CHECK(log_has("sent a batch from sender 2: a connection speaks only for its proven node"));
  }
  SECTION("gossip of node 2's vector on node 1's connection") {
    raw_socket s(c.ports(0).peer);
    REQUIRE(handshake_as(s, "n1", "itest", "test-secret"));
    messages::ack a;
    a.receiver = 2;
    s.send(messages::wire_kind::gossip, messages::encode(a));
    CHECK(s.closed_by_peer());
    CHECK(log_has("sent the version vector of node 2"));
  }
  SECTION("a pull for node 2 on node 1's connection") {
    raw_socket s(c.ports(0).peer);
    REQUIRE(handshake_as(s, "n1", "itest", "test-secret"));
    messages::pull_request p;
    p.requester = 2;
    p.start_transfer = true;
    s.send(messages::wire_kind::pull, messages::encode(p), 1);
    CHECK(s.closed_by_peer());
    CHECK(log_has("sent a pull for requester 2"));
  }
  CHECK((*c.status(0))["inbound"]["impersonations"].get<uint64_t>() == 1);
  check_replicates(c, 0, "after-impersonation");
}

TEST_CASE("hostile peer: 300 connections announcing a 128 MiB frame, and 300 silent ones, "
          "cost a few MiB and do not stop replication") {
  process_cluster c(2, "mesh", fast_handshake);
  check_replicates(c, 0, "warm-up");
  auto pid = c.node(0).pid();
  auto rss_before = rss_kib(pid);
  std::vector<std::unique_ptr<raw_socket>> flood;
  // One segment of 16 Mi words = 128 MiB.
  std::string announce("\0\0\0\0\0\0\0\x01", 8);
  for (int i = 0; i < 300; ++i) {
    flood.push_back(std::make_unique<raw_socket>(c.ports(0).peer));
    flood.back()->send(announce);
  }
  for (int i = 0; i < 300; ++i)
    flood.push_back(std::make_unique<raw_socket>(c.ports(0).peer));
  auto start = std::chrono::steady_clock::now();
  check_replicates(c, 0, "during-flood");
  check_replicates(c, 1, "during-flood-2");
  auto took =
    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
      .count();
  auto rss_after = rss_kib(pid);
  INFO("RSS before " << rss_before << " KiB, during the flood " << rss_after
                     << " KiB; replication checks took " << took << " ms");
  if (rss_meaningful)
    CHECK(rss_after < rss_before + 8 * 1024);
  // The node takes the connections from the kernel as it gets to them.
  auto inbound = [&] { return (*c.status(0))["inbound"]; };
  CHECK(eventually([&] { return inbound()["bad_frames"].get<uint64_t>() >= 300; }, 10s));
  CHECK(eventually([&] { return inbound()["unproven_refused"].get<uint64_t>() > 0; }, 10s));
  INFO(inbound().dump());
  std::this_thread::sleep_for(2s);
  CHECK((*c.status(0))["inbound"]["handshake_timeouts"].get<uint64_t>() > 0);
  check_replicates(c, 0, "after-flood");
}
