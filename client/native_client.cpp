#include "client/native_client.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace mlr::client {

result<std::pair<std::string, uint16_t>> parse_address(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size())
    return error{errc::invalid_argument,
                 "'" + address + "' is not an address; write host:port, e.g. 127.0.0.1:7100"};
  auto port_text = address.substr(colon + 1);
  char* end = nullptr;
  auto port = std::strtoul(port_text.c_str(), &end, 10);
  if (*end != '\0' || port == 0 || port > 65535)
    return error{errc::invalid_argument,
                 "'" + port_text + "' in '" + address + "' is not a port number (1-65535)"};
  return std::make_pair(address.substr(0, colon), static_cast<uint16_t>(port));
}

connection::~connection() = default;

result<std::unique_ptr<connection>> connection::open(const std::string& address,
                                                     std::chrono::milliseconds timeout) {
  auto hp = parse_address(address);
  if (!hp)
    return hp.err();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  auto port = std::to_string(hp->second);
  if (getaddrinfo(hp->first.c_str(), port.c_str(), &hints, &res) != 0 || !res)
    return error{errc::invalid_argument, "cannot resolve host '" + hp->first + "'"};
  unique_fd fd{::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (!fd || ::connect(fd.get(), res->ai_addr, res->ai_addrlen) != 0) {
    auto why = std::string(std::strerror(errno));
    freeaddrinfo(res);
    return error{errc::timeout, "cannot connect to " + address + ": " + why +
                                  " (is mlr-node running with --client-listen " + address + "?)"};
  }
  freeaddrinfo(res);
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  auto c = std::make_unique<connection>();
  c->fd_ = std::move(fd);
  c->timeout_ = timeout;
  return c;
}

uint64_t connection::send_request(const messages::client_request& req,
                                  std::optional<error>& failed) {
  auto id = ++next_id_;
  std::vector<uint8_t> out;
  messages::append_frame(
    out, messages::encode(messages::wire_header{messages::wire_kind::client_request, id}));
  messages::append_frame(out, messages::encode(req));
  size_t sent = 0;
  while (sent < out.size()) {
    auto n = ::send(fd_.get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      failed = error{errc::timeout,
                     std::string("the node closed the connection: ") + std::strerror(errno)};
      return id;
    }
    sent += static_cast<size_t>(n);
  }
  return id;
}

result<messages::client_response> connection::receive(uint64_t id,
                                                      std::chrono::milliseconds timeout) {
  std::optional<messages::wire_header> header;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto next = splitter_.next();
    if (!next)
      return next.err();
    if (*next) {
      if (!header) {
        auto h = messages::decode_header(**next);
        if (!h)
          return h.err();
        header = *h;
        continue;
      }
      if (header->request_id != id) {
        header.reset();
        continue; // an answer to an abandoned request
      }
      return messages::decode_client_response(**next);
    }
    int wait_ms = -1;
    if (timeout.count() > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return error{errc::timeout,
                     "no answer from the node within " + std::to_string(timeout.count()) + " ms"};
      wait_ms = static_cast<int>(left.count());
    }
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, wait_ms) <= 0)
      continue;
    char buf[65536];
    auto n = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (n <= 0)
      return error{errc::timeout, "the node closed the connection"};
    splitter_.append(buf, static_cast<size_t>(n));
  }
}

result<messages::client_response> connection::call(const messages::client_request& req) {
  std::optional<error> failed;
  auto id = send_request(req, failed);
  if (failed)
    return *failed;
  return receive(id, timeout_);
}

result<bool>
connection::watch(const std::string& prefix,
                  const std::function<bool(const messages::client_response&)>& on_change,
                  std::chrono::milliseconds idle) {
  messages::client_request req;
  req.kind = messages::client_request::op::watch;
  req.key = prefix;
  std::optional<error> failed;
  auto id = send_request(req, failed);
  if (failed)
    return *failed;
  auto first = receive(id, timeout_);
  if (!first)
    return first.err();
  if (first->kind == messages::client_response::op::failure)
    return error{first->fail.code, first->fail.message};
  for (;;) {
    auto next = receive(id, idle);
    if (!next)
      return next.err();
    if (next->kind == messages::client_response::op::failure)
      return error{next->fail.code, "the node dropped the watch: " + next->fail.message};
    if (next->kind == messages::client_response::op::change && !on_change(*next))
      return true;
  }
}

namespace {

result<std::string> written_or_error(result<messages::client_response> r) {
  if (!r)
    return r.err();
  if (r->kind == messages::client_response::op::failure)
    return error{r->fail.code, r->fail.message};
  return r->written;
}

} // namespace

result<std::string> connection::put(const std::string& key, const std::string& value,
                                    const std::string* context) {
  messages::client_request req;
  req.kind = messages::client_request::op::put;
  req.key = key;
  req.value = value;
  if (context) {
    req.has_context = true;
    req.context = *context;
  }
  return written_or_error(call(req));
}

result<std::string> connection::del(const std::string& key, const std::string* context) {
  messages::client_request req;
  req.kind = messages::client_request::op::del;
  req.key = key;
  if (context) {
    req.has_context = true;
    req.context = *context;
  }
  return written_or_error(call(req));
}

result<messages::client_response> connection::get(const std::string& key) {
  messages::client_request req;
  req.kind = messages::client_request::op::get;
  req.key = key;
  auto r = call(req);
  if (r && r->kind == messages::client_response::op::failure)
    return error{r->fail.code, r->fail.message};
  return r;
}

namespace {

result<int64_t> number_or_error(result<messages::client_response> r) {
  if (!r)
    return r.err();
  if (r->kind == messages::client_response::op::failure)
    return error{r->fail.code, r->fail.message};
  if (r->kind != messages::client_response::op::number)
    return error{errc::malformed_frame, "the node answered a typed write with something else"};
  return r->number;
}

} // namespace

result<int64_t> connection::typed(messages::op_kind op, const std::string& key,
                                  const std::string& field, const std::string& value,
                                  int64_t delta) {
  messages::client_request req;
  req.kind = messages::client_request::op::typed;
  req.typed_op = op;
  req.key = key;
  req.field = field;
  req.value = value;
  req.delta = delta;
  return number_or_error(call(req));
}

result<int64_t> connection::text(messages::op_kind op, const std::string& key, uint64_t index,
                                 const std::string& text, uint64_t count,
                                 const std::string* context) {
  messages::client_request req;
  req.kind = messages::client_request::op::typed;
  req.typed_op = op;
  req.key = key;
  req.index = index;
  req.value = text;
  req.count = count;
  if (context) {
    req.has_context = true;
    req.context = *context;
  }
  return number_or_error(call(req));
}

result<messages::client_response> connection::read(const std::string& key) {
  messages::client_request req;
  req.kind = messages::client_request::op::read;
  req.key = key;
  auto r = call(req);
  if (r && r->kind == messages::client_response::op::failure)
    return error{r->fail.code, r->fail.message};
  return r;
}

result<std::string> connection::auth(const std::string& secret) {
  messages::client_request req;
  req.kind = messages::client_request::op::auth;
  req.value = secret;
  return written_or_error(call(req));
}

result<std::string> connection::set_topology(const std::string& spec) {
  messages::client_request req;
  req.kind = messages::client_request::op::set_topology;
  req.value = spec;
  return written_or_error(call(req));
}

result<uint32_t> connection::set_resolver(const std::string& name) {
  messages::client_request req;
  req.kind = messages::client_request::op::set_resolver;
  req.value = name;
  auto w = written_or_error(call(req));
  if (!w)
    return w.err();
  return static_cast<uint32_t>(std::strtoul(w->c_str(), nullptr, 10));
}

result<std::vector<messages::conflict_record>> connection::conflicts(uint64_t after,
                                                                     uint32_t limit) {
  messages::client_request req;
  req.kind = messages::client_request::op::conflicts;
  req.after = after;
  req.limit = limit;
  auto r = call(req);
  if (!r)
    return r.err();
  if (r->kind == messages::client_response::op::failure)
    return error{r->fail.code, r->fail.message};
  if (r->kind != messages::client_response::op::conflicts)
    return error{errc::malformed_frame,
                 "the node answered a conflicts request with something else"};
  return std::move(r->conflicts);
}

result<std::string> connection::status() {
  messages::client_request req;
  req.kind = messages::client_request::op::status;
  auto r = call(req);
  if (!r)
    return r.err();
  if (r->kind == messages::client_response::op::failure)
    return error{r->fail.code, r->fail.message};
  return r->status_json;
}

} // namespace mlr::client
