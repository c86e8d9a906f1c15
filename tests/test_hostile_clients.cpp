// Careless and hostile clients against real mlr-node processes: writes too large to
// replicate are refused at write time, RESP input is bounded before anything is allocated
// for it, and every answer reaches the connection (and request) that asked for it.

#include "process_harness.hpp"
#include "raw_socket.hpp"

#include <atomic>
#include <memory>

using namespace mlr;
using namespace mlr::testing;
using namespace std::chrono_literals;

namespace {

std::string resp_command(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (auto& a : args)
    out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

// Reads one whole RESP reply line (status, error, integer) or bulk reply.
std::string resp_reply(raw_socket& s, std::chrono::milliseconds timeout = 5000ms) {
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto nl = got.find("\r\n");
    if (nl != std::string::npos) {
      if (got[0] != '$')
        return got.substr(0, nl);
      auto len = std::stoll(got.substr(1, nl - 1));
      if (len < 0)
        return "$-1";
      if (got.size() >= nl + 2 + static_cast<size_t>(len) + 2)
        return got.substr(nl + 2, static_cast<size_t>(len));
    }
    auto more = s.read_some(100ms);
    got += more;
  }
  return got.empty() ? "(nothing)" : "(incomplete) " + got.substr(0, 80);
}

bool value_everywhere(process_cluster& c, const std::string& key, size_t size) {
  for (size_t i = 0; i < c.size(); ++i) {
    bool ok = eventually(
      [&] {
        auto g = c.connect(i)->get(key);
        return g && g->siblings.size() == 1 && g->siblings[0].size() == size;
      },
      20s);
    if (!ok)
      return false;
  }
  return true;
}

} // namespace

TEST_CASE("poison writes: the largest value replicates everywhere, one byte more is refused "
          "with its size and the limit, 64 MiB on RESP is refused before it is buffered") {
  process_cluster c(3, "mesh");
  const size_t limit = 16u << 20;
  auto conn = c.connect(0);
  REQUIRE(conn->put("largest", std::string(limit, 'v')));
  CHECK(value_everywhere(c, "largest", limit));
  auto over = conn->put("too-large", std::string(limit + 1, 'v'));
  REQUIRE_FALSE(over);
  CHECK(over.err().message == "value is 16777217 bytes; the limit is 16777216 (--max-value-bytes)");
  CHECK(over.err().code == errc::too_large); // the code says what to do: send less
  auto long_key = conn->put(std::string((64u << 10) + 1, 'k'), "v");
  REQUIRE_FALSE(long_key);
  CHECK(long_key.err().message == "key is 65537 bytes; the limit is 65536 (--max-key-bytes)");
  CHECK(long_key.err().code == errc::too_large);
  // A key of the cluster's own is refused, and reads as refused (not as a timeout).
  auto reserved = conn->put(std::string("\0mlr:topology", 13), "members x");
  REQUIRE_FALSE(reserved);
  CHECK(reserved.err().code == errc::refused);
  CHECK(reserved.err().message.find("are the cluster's own") != std::string::npos);

  raw_socket r(c.ports(0).resp);
  r.send(resp_command({"SET", "too-large", std::string(limit + 1, 'v')}));
  CHECK(resp_reply(r, 10s) ==
        "-ERR value is 16777217 bytes; the limit is 16777216 (--max-value-bytes)");
  // The poison: 64 MiB. Refused once its length has arrived; nothing more is read.
  raw_socket big(c.ports(0).resp);
  big.send("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$67108864\r\n" + std::string(1000, 'x'));
  auto answer = resp_reply(big);
  CHECK(answer.find("-ERR Protocol error: bulk string of 67108864 bytes is above this node's "
                    "limit of 17825792 bytes") == 0);
  CHECK(big.closed_by_peer());
  // Replication is not poisoned: new writes reach every node, and nothing is refused.
  REQUIRE(c.connect(0)->put("after-poison", "ok"));
  CHECK(value_everywhere(c, "after-poison", 2));
  auto s = *c.status(0);
  INFO(s.dump());
  for (auto& p : s["peers"])
    CHECK(p["up"].get<bool>());
  CHECK(c.connect(1)->get("too-large")->siblings.empty());
}

TEST_CASE("RESP limits: a hostile multibulk count, nested arrays and non-bulk arguments are "
          "protocol errors, the node keeps serving every port") {
  process_cluster c(2, "mesh");
  auto pid = c.node(0).pid();
  auto vm_before = proc_status_kib(pid, "VmSize:");
  auto check = [&](const std::string& input, const std::string& expected) {
    raw_socket s(c.ports(0).resp);
    s.send(input);
    auto got = resp_reply(s);
    INFO("input " << input.substr(0, 40) << " answered " << got);
    CHECK(got.find("-ERR Protocol error: " + expected) == 0);
    CHECK(s.closed_by_peer());
  };
  check("*2147483647\r\n", "invalid multibulk length 2147483647");
  check("*2\r\n*1\r\n$4\r\nPING\r\n", "nested arrays are not commands");
  check("*2\r\n$3\r\nGET\r\n:12\r\n", "expected an array of bulk strings");
  check("+PING\r\n", "expected an array of bulk strings");
  check("*1\r\n$99999999999\r\n", "bulk string of 99999999999 bytes is above");
  auto vm_after = proc_status_kib(pid, "VmSize:");
  INFO("address space before " << vm_before << " KiB, after " << vm_after << " KiB");
  if (rss_meaningful) // ASan reserves its shadow memory anyway
    CHECK(vm_after < vm_before + 256 * 1024);
  // Every other client, on both client ports, is served.
  raw_socket ok(c.ports(0).resp);
  ok.send(resp_command({"PING"}));
  CHECK(resp_reply(ok) == "+PONG");
  REQUIRE(c.connect(0)->put("still", "serving"));
  CHECK(eventually([&] { return c.connect(1)->get("still")->siblings.size() == 1; }, 5s));
}

TEST_CASE("RESP limits: a client that pipelines without reading is paused, loses nothing, and "
          "does not grow the node") {
  process_cluster c(2, "mesh");
  auto pid = c.node(0).pid();
  auto rss_before = rss_kib(pid);
  raw_socket flood(c.ports(0).resp);
  std::string value(1000, 'p');
  std::string batch;
  for (int i = 0; i < 1000; ++i)
    batch += resp_command({"GET", "k"});
  REQUIRE(c.connect(0)->put("k", value));
  // 200,000 GETs of a 1 KB value, never read: about 200 MB of answers if all were queued.
  std::thread writer([&] {
    for (int i = 0; i < 200; ++i)
      flood.send(batch);
  });
  std::this_thread::sleep_for(1500ms);
  auto rss_during = rss_kib(pid);
  raw_socket other(c.ports(0).resp);
  other.send(resp_command({"PING"}));
  CHECK(resp_reply(other) == "+PONG");
  REQUIRE(c.connect(0)->put("other-client", "ok"));
  INFO("RSS before " << rss_before << " KiB, while paused " << rss_during << " KiB");
  if (rss_meaningful)
    CHECK(rss_during < rss_before + 150 * 1024);
  // Now read everything: every one of the 200,000 answers arrives, in order.
  size_t answers = 0;
  std::string pending;
  std::string one = "$1000\r\n" + value + "\r\n";
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (answers < 200000 && std::chrono::steady_clock::now() < deadline) {
    pending += flood.read_some(200ms, 1u << 20);
    size_t at = 0;
    while (pending.size() - at >= one.size() && pending.compare(at, one.size(), one) == 0) {
      at += one.size();
      ++answers;
    }
    pending.erase(0, at);
  }
  writer.join();
  CHECK(answers == 200000);

  // A client that goes on sending without ever reading is disconnected past 16 MiB of
  // requests (the node logs why; the answers it never read are dropped with the
  // connection, as Redis does past its output buffer limit); everyone else is served.
  raw_socket greedy(c.ports(0).resp);
  std::atomic<bool> closed{false};
  std::thread sender([&] {
    for (int i = 0; i < 1200 && !closed; ++i) // 32 MB of GETs
      greedy.send(batch);
  });
  std::this_thread::sleep_for(2s);
  CHECK(greedy.closed_by_peer(30s));
  closed = true;
  sender.join();
  CHECK(c.node(0).log().find("read the answers while pipelining") != std::string::npos);
  auto rss_after = rss_kib(pid);
  INFO("RSS after the greedy client " << rss_after << " KiB");
  if (rss_meaningful)
    CHECK(rss_after < rss_before + 150 * 1024);
  raw_socket polite(c.ports(0).resp);
  polite.send(resp_command({"PING"}));
  CHECK(resp_reply(polite) == "+PONG");
}

TEST_CASE("replies reach the connection that asked: a slow request, close, reconnect, ask "
          "again, hundreds of times on the RESP, native and peer ports (a fifth of that under "
          "the sanitizers)") {
  process_cluster c(2, "mesh");
  // Slow requests: reads of many large values.
  std::string big(64u << 10, 'b');
  std::vector<std::string> mget{"MGET"};
  {
    auto conn = c.connect(0);
    for (int i = 0; i < 256; ++i) {
      REQUIRE(conn->put("big" + std::to_string(i), big));
      mget.push_back("big" + std::to_string(i));
    }
    REQUIRE(conn->put("mine", "my-own-answer"));
  }
  SECTION("RESP") {
    auto slow = resp_command(mget);
    int wrong = 0;
    for (int i = 0; i < rounds(300); ++i) {
      {
        raw_socket s(c.ports(0).resp);
        s.send(slow);
      } // closed before the answer
      raw_socket s(c.ports(0).resp);
      s.send(resp_command({"GET", "mine"}));
      auto got = resp_reply(s);
      if (got != "my-own-answer") {
        ++wrong;
        UNSCOPED_INFO("try " << i << " got " << got.substr(0, 40));
      }
    }
    CHECK(wrong == 0);
  }
  SECTION("native") {
    messages::client_request slow;
    slow.kind = messages::client_request::op::put;
    slow.key = "slow";
    slow.value = std::string(8u << 20, 's');
    messages::client_request get;
    get.kind = messages::client_request::op::get;
    get.key = "mine";
    int wrong = 0;
    for (int i = 0; i < rounds(200); ++i) {
      {
        raw_socket s(c.ports(0).client);
        s.send(messages::wire_kind::client_request, messages::encode(slow), 1);
      }
      raw_socket s(c.ports(0).client);
      s.send(messages::wire_kind::client_request, messages::encode(get), 1);
      auto m = s.message(5s);
      bool ok = false;
      if (m && m->first.request_id == 1) {
        auto r = messages::decode_client_response(m->second);
        ok = r && r->kind == messages::client_response::op::value &&
             r->siblings == std::vector<std::string>{"my-own-answer"};
      }
      if (!ok)
        ++wrong;
    }
    CHECK(wrong == 0);
  }
  SECTION("peer") {
    int wrong = 0;
    for (int i = 0; i < rounds(200); ++i) {
      {
        raw_socket s(c.ports(0).peer);
        REQUIRE(handshake_as(s, "n1", "itest", "test-secret"));
        messages::pull_request p;
        p.requester = 1;
        p.start_transfer = true; // a snapshot of 16 MiB of state: slow
        s.send(messages::wire_kind::pull, messages::encode(p), 1);
      }
      raw_socket s(c.ports(0).peer);
      REQUIRE(handshake_as(s, "n1", "itest", "test-secret"));
      messages::ack a;
      a.receiver = 1;
      s.send(messages::wire_kind::heartbeat, messages::encode(a), 1);
      auto m = s.message(5s);
      if (!m || m->first.kind != messages::wire_kind::heartbeat || m->first.request_id != 1)
        ++wrong;
    }
    CHECK(wrong == 0);
  }
}

TEST_CASE("a node whose leader dies exits with status 3 and the reason, it never goes on "
          "listening while every request fails") {
  process_cluster c(2, "mesh", {"--fault", "leader-throws-on-key:boom"});
  REQUIRE(c.connect(0)->put("fine", "1"));
  REQUIRE(eventually([&] { return c.connect(1)->get("fine")->siblings.size() == 1; }, 10s));
  auto conn = c.connect(0);
  auto r = conn->put("boom", "x"); // the leader throws while applying it
  CHECK_FALSE(r);
  CHECK(c.node(0).wait(10s) == 3);
  auto log = c.node(0).log();
  INFO(log);
  CHECK(log.find("the leader stopped") != std::string::npos);
  CHECK(log.find("fault injected by --fault") != std::string::npos);
  CHECK_FALSE(client::connection::open(c.client_address(0), 500ms)); // nobody listens
  // The other node goes on serving.
  REQUIRE(c.connect(1)->put("still", "serving"));
  CHECK(c.connect(1)->get("fine")->siblings.size() == 1);
}

TEST_CASE("status-like requests are cheap: 9,000 INFO and 900 DBSIZE pipelined on 9 connections "
          "and 200 status over 100 MiB of state delay neither another client's SET nor a peer's "
          "heartbeat") {
  process_cluster c(2, "mesh");
  {
    raw_socket load(c.ports(0).resp);
    std::string value(64u << 10, 'v');
    for (int batch = 0; batch < 100; ++batch) {
      std::vector<std::string> mset{"MSET"};
      for (int k = 0; k < 16; ++k) {
        mset.push_back("big-" + std::to_string(batch) + "-" + std::to_string(k));
        mset.push_back(value);
      }
      load.send(resp_command(mset));
      REQUIRE(resp_reply(load, 20s) == "+OK");
    }
  }
  REQUIRE(c.wait_converged(60s));
  // Each flooding connection pipelines 1,100 requests, more than it may have in flight
  // (1,024). INFO asks every actor of the node and builds a JSON document: one collection
  // per request kept the thread that runs every broker (client gateways, the peers'
  // acceptor and dialers) busy for seconds.
  std::vector<std::unique_ptr<raw_socket>> flood;
  for (int k = 0; k < 9; ++k)
    flood.push_back(std::make_unique<raw_socket>(c.ports(0).resp));
  std::string many;
  for (int i = 0; i < 100; ++i)
    many += resp_command({"DBSIZE"});
  for (int i = 0; i < 1000; ++i)
    many += resp_command({"INFO"});
  raw_socket native(c.ports(0).client);
  messages::client_request status;
  status.kind = messages::client_request::op::status;
  std::string statuses;
  for (int i = 0; i < 200; ++i) {
    statuses += std::string(
      reinterpret_cast<const char*>(
        messages::encode(
          messages::wire_header{messages::wire_kind::client_request, uint64_t(i + 1)})
          .bytes.data()),
      messages::encode(messages::wire_header{messages::wire_kind::client_request, uint64_t(i + 1)})
        .bytes.size());
    auto body = messages::encode(status);
    statuses += std::string(body.bytes.begin(), body.bytes.end());
  }
  auto log_before = c.node(1).log().size();
  for (auto& f : flood)
    f->send(many);
  native.send(statuses);
  // Meanwhile: SETs by another client, one at a time.
  raw_socket other(c.ports(0).resp);
  int64_t worst_ms = 0;
  for (int i = 0; i < 20; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    other.send(resp_command({"SET", "meanwhile-" + std::to_string(i), "x"}));
    REQUIRE(resp_reply(other, 30s) == "+OK");
    worst_ms = std::max<int64_t>(worst_ms, std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::steady_clock::now() - t0)
                                             .count());
  }
  INFO("slowest SET during the flood: " << worst_ms << " ms");
  // A functional bound: a digest per request took minutes here, and a collection per INFO
  // about 2 s.
  CHECK(worst_ms < 1000);
  auto first = resp_reply(*flood.front(), 10s);
  CHECK(first == ":1600");
  // Heartbeats went on: the peer never saw n0 go silent.
  std::this_thread::sleep_for(1s);
  auto n1_log = c.node(1).log().substr(log_before);
  CHECK(n1_log.find("silent") == std::string::npos);
  CHECK(c.wait_converged(30s));
}

TEST_CASE("a write that times out after the node took it says its outcome is unknown, and it "
          "is applied later") {
  process_cluster c(2, "mesh", {"--fault", "leader-stalls-on-key:slow"});
  raw_socket r(c.ports(0).resp);
  r.send(resp_command({"SET", "slow", "late"}));
  auto answer = resp_reply(r, 15s);
  CHECK(answer == "-ERR timed out; the write may still be applied (read the key to see)");
  // It was not a refusal: once the leader goes on, the write is there, everywhere.
  CHECK(eventually(
    [&] {
      auto g = c.connect(1)->get("slow");
      return g && g->siblings == std::vector<std::string>{"late"};
    },
    15s));
}

TEST_CASE("one read's answer is bounded: MGET of one large value a hundred times is refused, the "
          "node keeps serving") {
  process_cluster c(1, "mesh");
  REQUIRE(c.connect(0)->put("large", std::string(1u << 20, 'l')));
  std::vector<std::string> mget{"MGET"};
  for (int i = 0; i < 100; ++i)
    mget.push_back("large");
  raw_socket s(c.ports(0).resp);
  s.send(resp_command(mget));
  CHECK(resp_reply(s) == "-ERR the answer would be more than 67108864 bytes; ask for fewer "
                         "keys at a time");
  s.send(resp_command({"GET", "large"}));
  CHECK(resp_reply(s).size() == (1u << 20));
}
