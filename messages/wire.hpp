#pragma once
// What travels on a TCP connection between processes (schema: the second half of
// mlr.capnp). Every message is two standard Cap'n Proto stream frames: a header naming the
// kind and the request it answers, then the payload. `frame_splitter` cuts a byte stream
// into frames, refusing any frame above the size limit before it is buffered.
//
// CAF-free: the brokers in actors/ and the blocking client in apps/ both use it.

#include "messages/conflict_record.hpp"
#include "messages/error.hpp"
#include "messages/event.hpp"
#include "messages/frame.hpp"
#include "messages/version_vector.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlr::messages {

enum class wire_kind : uint16_t {
  hello = 0,
  hello_reply = 1,
  proof = 2,
  batch = 3,
  ack = 4,
  pull = 5,
  pull_answer = 6,
  gossip = 7,
  heartbeat = 8,
  error = 9,
  client_request = 10,
  client_response = 11,
  welcome = 12,
};

const char* to_string(wire_kind k);

struct wire_header {
  wire_kind kind = wire_kind::hello;
  uint64_t request_id = 0;
};

/// The dialer's first message: who it claims to be and its challenge, nothing more (the
/// handshake is described in mlr.capnp and transport/handshake.hpp).
struct hello {
  std::string node_id;
  uint32_t min_version = 2;
  uint32_t max_version = 2;
  std::string nonce;
};

/// The acceptor's challenge: the protocol version it chose and its nonce, nothing more.
struct hello_reply {
  uint32_t version = 2;
  std::string nonce;
};

/// The acceptor's answer to a dialer proof that checked out: who it is, what it has
/// applied, and its own proof.
struct welcome {
  std::string node_id;
  uint64_t incarnation = 0;
  version_vector applied;
  std::string proof;
};

struct failure {
  errc code = errc::none;
  std::string message;
};

struct client_request {
  enum class op : uint8_t {
    put,
    get,
    del,
    status,
    set_topology,
    auth,
    typed,
    read,
    watch,       ///< `key` is the prefix
    conflicts,   ///< after, limit
    set_resolver ///< `value` names the resolver
  } kind = op::get;
  std::string key;
  std::string value; ///< put, typed hset: the value; set_topology: the topology; auth: the secret
  bool has_context = false;
  std::string context;              ///< a context token (see context_token)
  op_kind typed_op = op_kind::incr; ///< typed: incr, sadd, srem, hset, hdel or hincr
  std::string field;                ///< typed: the set member or map field
  int64_t delta = 0;                ///< typed incr, hincr: what to add
  uint64_t index = 0;               ///< typed text: where (code points)
  uint64_t count = 0;               ///< typed text delete: how many
  uint64_t after = 0;               ///< conflicts: records after this sequence number
  uint32_t limit = 0;               ///< conflicts: at most this many
};

struct client_response {
  enum class op : uint8_t {
    written,
    value,
    status,
    failure,
    number,
    typed,
    change,
    conflicts
  } kind = op::failure;
  std::string written;               ///< the dot, as text
  std::vector<std::string> siblings; ///< live values (deletes left out)
  std::string context;               ///< token naming every live version (typed: text's)
  std::string status_json;
  failure fail;
  int64_t number = 0;             ///< a typed write's answer
  std::string type_name;          ///< typed: the key's type
  std::vector<std::string> items; ///< typed: the value, rendered (see mlr.capnp)
  /// change: what a watch delivers (type_name: the key's type after it; written: the dot).
  std::string key, event, field, value;
  /// change of a text key: what it did, by index.
  struct text_edit {
    bool insert = true;
    uint64_t index = 0;
    std::string text;
    uint64_t count = 0;
  };
  std::vector<text_edit> edits;
  std::vector<conflict_record> conflicts;
};

frame encode(const wire_header& h);
frame encode(const hello& h);
frame encode(const hello_reply& h);
frame encode(const welcome& w);
frame encode_proof(const std::string& proof);
frame encode(const failure& f);
frame encode(const client_request& r);
frame encode(const client_response& r);

struct decode_limits;
result<wire_header> decode_header(const frame& f);
result<hello> decode_hello(const frame& f);
result<hello_reply> decode_hello_reply(const frame& f);
result<welcome> decode_welcome(const frame& f);
result<std::string> decode_proof(const frame& f);
result<failure> decode_failure(const frame& f);
result<client_request> decode_client_request(const frame& f);
result<client_response> decode_client_response(const frame& f);

/// A causal context as text, for clients: "node.incarnation.counter" dots joined by ','.
std::string to_context_token(const std::vector<dot>& dots);
/// Parses a token (at most `max_context_token_bytes`; counters below 2^48) into one dot per
/// origin incarnation; the error says what is wrong with which part.
inline constexpr size_t max_context_token_bytes = 64u << 10;
result<std::vector<dot>> parse_context_token(const std::string& token);

/// Cuts a byte stream into Cap'n Proto stream frames.
class frame_splitter {
public:
  explicit frame_splitter(size_t max_frame_bytes) : max_(max_frame_bytes) {}

  void append(const void* data, size_t size);

  /// The next whole frame; nullopt when more bytes are needed; an error for a frame whose
  /// segment table is malformed or announces more than the limit. After an error the
  /// stream cannot be resynchronised: close the connection.
  result<std::optional<frame>> next();

  size_t buffered() const { return buf_.size() - pos_; }
  /// Changes the limit for the frames still to come (a connection that proved itself may
  /// send larger ones than the handshake allows).
  void set_max(size_t max_frame_bytes) { max_ = max_frame_bytes; }

private:
  size_t max_;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;
};

/// Appends a frame to an output buffer (frames are already in stream framing).
inline void append_frame(std::vector<uint8_t>& out, const frame& f) {
  out.insert(out.end(), f.bytes.begin(), f.bytes.end());
}

} // namespace mlr::messages
