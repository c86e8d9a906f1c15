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
constexpr uint64_t max_counter = (uint64_t{1} << 48) - 1;
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

frame encode(const client_request& x) {
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<wire::ClientRequest>();
  switch (x.kind) {
  case client_request::op::put: {
    auto p = root.initPut();
    p.setKey(as_bytes(x.key));
    p.setValue(as_bytes(x.value));
    p.setHasContext(x.has_context);
    p.setContext(x.context);
    break;
  }
  case client_request::op::get:
    root.initGet().setKey(as_bytes(x.key));
    break;
  case client_request::op::del: {
    auto d = root.initDel();
    d.setKey(as_bytes(x.key));
    d.setHasContext(x.has_context);
    d.setContext(x.context);
    break;
  }
  case client_request::op::status:
    root.setStatus();
    break;
  case client_request::op::set_topology:
    root.setSetTopology(x.value);
    break;
  case client_request::op::auth:
    root.setAuth(as_bytes(x.value));
    break;
  }
  return to_frame(msg);
}

result<client_request> decode_client_request(const frame& f) {
  return with_reader<client_request>(f, decode_limits{}, "client request",
                                     [](capnp::MessageReader& r) -> result<client_request> {
                                       auto root = r.getRoot<wire::ClientRequest>();
                                       client_request out;
                                       switch (root.which()) {
                                       case wire::ClientRequest::PUT: {
                                         auto p = root.getPut();
                                         out.kind = client_request::op::put;
                                         out.key = as_string(p.getKey());
                                         out.value = as_string(p.getValue());
                                         out.has_context = p.getHasContext();
                                         out.context = p.getContext();
                                         break;
                                       }
                                       case wire::ClientRequest::GET:
                                         out.kind = client_request::op::get;
                                         out.key = as_string(root.getGet().getKey());
                                         break;
                                       case wire::ClientRequest::DEL: {
                                         auto d = root.getDel();
                                         out.kind = client_request::op::del;
                                         out.key = as_string(d.getKey());
                                         out.has_context = d.getHasContext();
                                         out.context = d.getContext();
                                         break;
                                       }
                                       case wire::ClientRequest::STATUS:
                                         out.kind = client_request::op::status;
                                         break;
                                       case wire::ClientRequest::SET_TOPOLOGY:
                                         out.kind = client_request::op::set_topology;
                                         out.value = root.getSetTopology();
                                         break;
                                       case wire::ClientRequest::AUTH:
                                         out.kind = client_request::op::auth;
                                         out.value = as_string(root.getAuth());
                                         break;
                                       default:
                                         return malformed("client request of an unknown kind");
                                       }
                                       return out;
                                     });
}

frame encode(const client_response& x) {
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<wire::ClientResponse>();
  switch (x.kind) {
  case client_response::op::written:
    root.setWritten(x.written);
    break;
  case client_response::op::value: {
    auto v = root.initValue();
    auto sib = v.initSiblings(static_cast<unsigned>(x.siblings.size()));
    for (unsigned i = 0; i < x.siblings.size(); ++i)
      sib.set(i, as_bytes(x.siblings[i]));
    v.setContext(x.context);
    break;
  }
  case client_response::op::status:
    root.setStatus(x.status_json);
    break;
  case client_response::op::failure: {
    auto fl = root.initFailure();
    fl.setCode(static_cast<uint8_t>(x.fail.code));
    fl.setMessage(x.fail.message);
    break;
  }
  }
  return to_frame(msg);
}

result<client_response> decode_client_response(const frame& f) {
  return with_reader<client_response>(
    f, decode_limits{}, "client response", [](capnp::MessageReader& r) -> result<client_response> {
      auto root = r.getRoot<wire::ClientResponse>();
      client_response out;
      switch (root.which()) {
      case wire::ClientResponse::WRITTEN:
        out.kind = client_response::op::written;
        out.written = root.getWritten();
        break;
      case wire::ClientResponse::VALUE: {
        out.kind = client_response::op::value;
        for (auto s : root.getValue().getSiblings())
          out.siblings.push_back(as_string(s));
        out.context = root.getValue().getContext();
        break;
      }
      case wire::ClientResponse::STATUS:
        out.kind = client_response::op::status;
        out.status_json = root.getStatus();
        break;
      case wire::ClientResponse::FAILURE:
        out.kind = client_response::op::failure;
        out.fail =
          failure{static_cast<errc>(root.getFailure().getCode()), root.getFailure().getMessage()};
        break;
      default:
        return malformed("client response of an unknown kind");
      }
      return out;
    });
}

std::string to_context_token(const std::vector<dot>& dots) {
  std::string out;
  for (auto& d : dots) {
    if (!out.empty())
      out += ',';
    out += to_string(d);
  }
  return out;
}

namespace {

// Digits (base 10 or 16) of `s` from `pos` up to `stop`, at most `max_digits` of them and
// no more than `limit`; nothing on anything else.
std::optional<uint64_t> parse_number(const std::string& s, size_t& pos, char stop, int base,
                                     size_t max_digits, uint64_t limit) {
  uint64_t x = 0;
  size_t digits = 0;
  for (; pos < s.size() && s[pos] != stop; ++pos, ++digits) {
    auto c = static_cast<unsigned char>(s[pos]);
    int v = std::isdigit(c)                  ? c - '0'
            : base == 16 && std::isxdigit(c) ? std::tolower(c) - 'a' + 10
                                             : -1;
    if (v < 0 || digits >= max_digits)
      return std::nullopt;
    x = x * static_cast<uint64_t>(base) + static_cast<uint64_t>(v);
    if (x > limit)
      return std::nullopt;
  }
  if (digits == 0)
    return std::nullopt;
  return x;
}

} // namespace

result<std::vector<dot>> parse_context_token(const std::string& token) {
  if (token.size() > max_context_token_bytes)
    return error{errc::invalid_argument, "context of " + std::to_string(token.size()) +
                                           " bytes; a context has at most " +
                                           std::to_string(max_context_token_bytes)};
  std::vector<dot> out;
  size_t pos = 0;
  while (pos < token.size()) {
    auto end = token.find(',', pos);
    if (end == std::string::npos)
      end = token.size();
    auto part = token.substr(pos, end - pos);
    auto bad = error{errc::invalid_argument,
                     "context '" + part.substr(0, 80) +
                       "' is not a dot like "
                       "n0.00000000deadbeef.12; pass the context exactly as get printed it"};
    size_t at = 1;
    if (part.empty() || part[0] != 'n')
      return bad;
    auto node = parse_number(part, at, '.', 10, 10, UINT32_MAX - 1);
    if (!node || at >= part.size())
      return bad;
    ++at;
    auto inc = parse_number(part, at, '.', 16, 16, UINT64_MAX);
    if (!inc || at >= part.size())
      return bad;
    ++at;
    auto counter = parse_number(part, at, '\0', 10, 15, max_counter);
    if (!counter || *counter == 0 || at != part.size())
      return bad;
    out.push_back(dot{source{static_cast<node_index>(*node), *inc}, *counter});
    pos = end + 1;
  }
  return canonical_context(out); // one dot per origin incarnation
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
