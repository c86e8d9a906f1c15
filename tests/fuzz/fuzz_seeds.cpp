// Writes valid inputs of every kind into corpus/<target>/ (run once by hand when a format
// changes: `build-fuzz/tests/fuzz/fuzz_seeds tests/fuzz/corpus`), so that the fuzzers
// start from messages a node really sends.
#include "messages/codec.hpp"
#include "messages/wire.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>

using namespace mlr::messages;

namespace {

std::string root;

void put(const std::string& target, const std::string& name, const std::string& bytes) {
  std::filesystem::create_directories(root + "/" + target);
  std::ofstream(root + "/" + target + "/" + name, std::ios::binary) << bytes;
}

std::string bytes(const frame& f) {
  return std::string(f.bytes.begin(), f.bytes.end());
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_seeds CORPUS_DIR\n";
    return 2;
  }
  root = argv[1];
  source a{0, 0xdeadbeef}, b{1, 0x12345678};
  event_batch batch;
  batch.sender = 0;
  batch.epoch = 7;
  for (uint64_t c = 1; c <= 3; ++c) {
    event e;
    e.id = dot{a, c};
    e.time = hlc{(uint64_t{1700000000000} << 16) + c};
    e.deps = {dot{b, c}};
    e.context = {dot{b, 1}};
    e.key = "key-" + std::to_string(c);
    e.value = "value";
    e.seen.insert(0);
    e.seen.insert(70);
    batch.events.push_back(e);
  }
  put("fuzz_batch", "events", bytes(encode(batch)));
  event_batch chunk_answer;
  chunk_answer.sender = 1;
  state_chunk chunk;
  chunk.transfer = 9;
  chunk.snapshot.advance(dot{a, 3});
  chunk.keys.push_back({"k", {version{dot{a, 2}, hlc{5}, false, "v"}}});
  chunk_answer.chunk = chunk;
  put("fuzz_batch", "chunk", bytes(encode(chunk_answer)));
  event_batch compacted;
  compacted.compacted = true;
  compacted.relay_for = 2;
  put("fuzz_batch", "compacted", bytes(encode(compacted)));
  ack k;
  k.receiver = 1;
  k.applied.advance(dot{a, 10});
  k.applied.advance(dot{b, 4});
  put("fuzz_ack", "ack", bytes(encode(k)));
  pull_request p;
  p.requester = 2;
  p.ranges.push_back(counter_range{a, 3, 9});
  put("fuzz_pull", "ranges", bytes(encode(p)));
  p.start_transfer = true;
  p.after_key = "k";
  put("fuzz_pull", "transfer", bytes(encode(p)));
  hello h;
  h.node_id = "n1";
  h.nonce = std::string(32, 'x');
  put("fuzz_hello", "hello", bytes(encode(h)));
  put("fuzz_hello", "header", bytes(encode(wire_header{wire_kind::batch, 42})));
  hello_reply r;
  r.nonce = std::string(32, 'y');
  put("fuzz_hello", "challenge", bytes(encode(r)));
  welcome w;
  w.node_id = "n0";
  w.applied.advance(dot{a, 3});
  w.proof = std::string(32, 'p');
  put("fuzz_hello", "welcome", bytes(encode(w)));
  client_request cr;
  cr.kind = client_request::op::put;
  cr.key = "k";
  cr.value = "v";
  cr.has_context = true;
  cr.context = "n0.00000000deadbeef.3";
  put("fuzz_hello", "client-put", bytes(encode(cr)));
  std::string stream = bytes(encode(wire_header{wire_kind::hello, 0})) + bytes(encode(h));
  put("fuzz_frames", "two-frames", std::string(1, '\x07') + stream);
  put("fuzz_resp", "set-get",
      std::string(1, '\x10') +
        "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
  put("fuzz_resp", "hello",
      std::string(1, '\x03') +
        "*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$2\r\npw\r\n");
  put("fuzz_context", "two", "n0.00000000deadbeef.3,n1.0000000012345678.9");
  put("fuzz_topology", "mesh", "mesh\n");
  put("fuzz_topology", "members",
      "members n0 n1 n2 n3\naddress n3 127.0.0.1:7003\nremoved n1\nring\n");
  put("fuzz_topology", "edges", "nodes: n0 n1 n2\nn0 -> n1\nn1 <-> n2\nn2 -> n0, n1\n");
  put("fuzz_topology", "star", "members n0 n1 n2\nstar:n2\n");
  return 0;
}
