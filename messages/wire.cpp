#include "messages/wire.hpp"

#include "messages/detail/capnp_io.hpp"
#include "messages/mlr.capnp.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace mlr::messages {

using detail::as_bytes;
using detail::as_string;
using detail::malformed;
using detail::max_counter;
using detail::to_frame;
using detail::with_reader;

const char* to_string(wire_kind k) {
  switch (k) {
  case wire_kind::hello:
    return "hello";
  case wire_kind::hello_reply:
    return "hello_reply";
  case wire_kind::proof:
    return "proof";
  case wire_kind::batch:
    return "batch";
  case wire_kind::ack:
    return "ack";
  case wire_kind::pull:
    return "pull";
  case wire_kind::pull_answer:
    return "pull_answer";
  case wire_kind::gossip:
    return "gossip";
  case wire_kind::heartbeat:
    return "heartbeat";
  case wire_kind::error:
    return "error";
  case wire_kind::client_request:
    return "client_request";
  case wire_kind::client_response:
    return "client_response";
  case wire_kind::welcome:
    return "welcome";
  }
  return "unknown";
}

namespace {

// Handshake messages are small: a tight limit makes a hostile one cheap.
const decode_limits small_limits{1u << 20, 0};
constexpr size_t max_name_bytes = 256;

template <class List>
void write_vv(List sources_out, capnp::List<wire::Counter>::Builder entries_out,
              const version_vector& vv) {
  auto& es = vv.entries();
  for (unsigned i = 0; i < es.size(); ++i) {
    sources_out[i].setNode(es[i].first.node);
    sources_out[i].setIncarnation(es[i].first.incarnation);
    entries_out[i].setSource(static_cast<uint16_t>(i));
    entries_out[i].setCounter(es[i].second);
  }
}

template <class SourcesReader, class EntriesReader>
result<version_vector> read_vv(SourcesReader sources, EntriesReader entries) {
  std::vector<dot> out;
  out.reserve(entries.size());
  for (auto e : entries) {
    if (e.getSource() >= sources.size())
      return malformed("version vector entry refers to a source that is not in the table");
    if (e.getCounter() > max_counter)
      return malformed("version vector entry has counter " + std::to_string(e.getCounter()) +
                       "; counters stay below 2^48");
    auto s = sources[e.getSource()];
    out.push_back(dot{source{s.getNode(), s.getIncarnation()}, e.getCounter()});
  }
  return version_vector::from_dots(std::move(out));
}

} // namespace

frame encode(const wire_header& h) {
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<wire::Header>();
  root.setKind(static_cast<wire::Kind>(h.kind));
  root.setRequestId(h.request_id);
  return to_frame(msg);
}

result<wire_header> decode_header(const frame& f) {
  return with_reader<wire_header>(
    f, small_limits, "header", [](capnp::MessageReader& r) -> result<wire_header> {
      auto root = r.getRoot<wire::Header>();
      auto kind = static_cast<uint16_t>(root.getKind());
      if (kind > static_cast<uint16_t>(wire_kind::welcome))
        return malformed("header names unknown message kind " + std::to_string(kind));
      return wire_header{static_cast<wire_kind>(kind), root.getRequestId()};
    });
}

frame encode(const hello& h) {
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<wire::Hello>();
  root.setNodeId(h.node_id);
  root.setMinVersion(h.min_version);
  root.setMaxVersion(h.max_version);
  root.setNonce(as_bytes(h.nonce));
  return to_frame(msg);
}

result<hello> decode_hello(const frame& f) {
  return with_reader<hello>(f, small_limits, "hello", [](capnp::MessageReader& r) -> result<hello> {
    auto root = r.getRoot<wire::Hello>();
    hello out;
    if (root.getNodeId().size() > max_name_bytes)
      return malformed("hello names a node id of " + std::to_string(root.getNodeId().size()) +
                       " bytes; ids have at most " + std::to_string(max_name_bytes));
    out.node_id = root.getNodeId();
    out.min_version = root.getMinVersion();
    out.max_version = root.getMaxVersion();
    out.nonce = as_string(root.getNonce());
    return out;
  });
}

frame encode(const hello_reply& h) {
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<wire::HelloReply>();
  root.setVersion(h.version);
  root.setNonce(as_bytes(h.nonce));
  return to_frame(msg);
}

result<hello_reply> decode_hello_reply(const frame& f) {
  return with_reader<hello_reply>(f, small_limits, "hello reply",
                                  [](capnp::MessageReader& r) -> result<hello_reply> {
                                    auto root = r.getRoot<wire::HelloReply>();
                                    hello_reply out;
                                    out.version = root.getVersion();
                                    out.nonce = as_string(root.getNonce());
                                    return out;
                                  });
}

frame encode(const welcome& w) {
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<wire::Welcome>();
  root.setNodeId(w.node_id);
  root.setIncarnation(w.incarnation);
  auto n = static_cast<unsigned>(w.applied.size());
  write_vv(root.initSources(n), root.initVersionVector(n), w.applied);
  root.setProof(as_bytes(w.proof));
  return to_frame(msg);
}

result<welcome> decode_welcome(const frame& f) {
  return with_reader<welcome>(f, decode_limits{}, "welcome",
                              [](capnp::MessageReader& r) -> result<welcome> {
                                auto root = r.getRoot<wire::Welcome>();
                                welcome out;
                                out.node_id = root.getNodeId();
                                out.incarnation = root.getIncarnation();
                                auto vv = read_vv(root.getSources(), root.getVersionVector());
                                if (!vv)
                                  return vv.err();
                                out.applied = std::move(*vv);
                                out.proof = as_string(root.getProof());
                                return out;
                              });
}

frame encode_proof(const std::string& proof) {
  capnp::MallocMessageBuilder msg;
  msg.initRoot<wire::Proof>().setProof(as_bytes(proof));
  return to_frame(msg);
}

result<std::string> decode_proof(const frame& f) {
  return with_reader<std::string>(f, small_limits, "proof",
                                  [](capnp::MessageReader& r) -> result<std::string> {
                                    return as_string(r.getRoot<wire::Proof>().getProof());
                                  });
}

frame encode(const failure& x) {
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<wire::Failure>();
  root.setCode(static_cast<uint8_t>(x.code));
  root.setMessage(x.message);
  return to_frame(msg);
}

result<failure> decode_failure(const frame& f) {
  return with_reader<failure>(
    f, small_limits, "failure", [](capnp::MessageReader& r) -> result<failure> {
      auto root = r.getRoot<wire::Failure>();
      return failure{static_cast<errc>(root.getCode()), root.getMessage()};
    });
}

void frame_splitter::append(const void* data, size_t size) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > (1u << 20)) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<long>(pos_));
    pos_ = 0;
  }
  auto* p = static_cast<const uint8_t*>(data);
  buf_.insert(buf_.end(), p, p + size);
}

result<std::optional<frame>> frame_splitter::next() {
  auto avail = buf_.size() - pos_;
  if (avail < 4)
    return std::optional<frame>{};
  auto* p = buf_.data() + pos_;
  auto u32 = [&](size_t off) {
    return uint32_t{p[off]} | uint32_t{p[off + 1]} << 8 | uint32_t{p[off + 2]} << 16 |
           uint32_t{p[off + 3]} << 24;
  };
  uint64_t segments = uint64_t{u32(0)} + 1;
  if (segments > 512)
    return error{errc::malformed_frame, "frame announces " + std::to_string(segments) +
                                          " segments; at most 512 are accepted"};
  uint64_t table_bytes = (4 + 4 * segments + 7) / 8 * 8;
  if (avail < table_bytes)
    return std::optional<frame>{};
  uint64_t words = 0;
  for (uint64_t i = 0; i < segments; ++i)
    words += u32(4 + 4 * i);
  uint64_t total = table_bytes + words * 8;
  if (total > max_)
    return error{errc::oversized_frame, "frame announces " + std::to_string(total) +
                                          " bytes, more than the limit of " + std::to_string(max_)};
  if (avail < total)
    return std::optional<frame>{};
  frame f;
  f.bytes.assign(p, p + total);
  pos_ += total;
  return std::optional<frame>{std::move(f)};
}

} // namespace mlr::messages
