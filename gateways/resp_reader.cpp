#include "gateways/resp_reader.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <memory>
#include <new>

namespace mlr::actors {

// hiredis's reader, owned: freed with the impl, on every path.
struct reader_free {
  void operator()(redisReader* r) const { redisReaderFree(r); }
};

struct resp_reader::impl {
  std::unique_ptr<redisReader, reader_free> reader;
  size_t max_bulk = 0;
  size_t max_args = max_multibulk;
  size_t max_request_bytes = 0;
  size_t request_bytes = 0; // of the request being parsed
  bool authenticated = true;
  std::string refusal; // set by the object functions when they refuse the input
};

namespace {

using impl_t = resp_reader::impl;

// hiredis object functions that build a request (an array of bulk strings) directly as a
// std::vector<std::string>, refusing anything else before allocating for it. A refusal
// returns nullptr, which hiredis reports as an error; impl::refusal says why.
impl_t& state_of(const redisReadTask* t) {
  return *static_cast<impl_t*>(t->privdata);
}

void* refuse_object(const redisReadTask* t, std::string why) {
  if (state_of(t).refusal.empty())
    state_of(t).refusal = std::move(why);
  return nullptr;
}

void* make_array(const redisReadTask* t, int elements) {
  if (t->parent)
    return refuse_object(t, "nested arrays are not commands");
  auto& st = state_of(t);
  if (elements < 0 || static_cast<size_t>(elements) > st.max_args)
    return refuse_object(t, std::string(st.authenticated ? "" : "unauthenticated ") +
                              "invalid multibulk length " + std::to_string(elements) +
                              " (at most " + std::to_string(st.max_args) + ")");
  st.request_bytes = 0;
  auto* args = new std::vector<std::string>();
  args->reserve(std::min<size_t>(static_cast<size_t>(elements), 16)); // grows as they arrive
  return args;
}

void* make_string(const redisReadTask* t, char* str, size_t len) {
  if (!t->parent || t->type != REDIS_REPLY_STRING)
    return refuse_object(t, "expected an array of bulk strings");
  auto& st = state_of(t);
  if (len > st.max_bulk)
    return refuse_object(t, "bulk string of " + std::to_string(len) + " bytes");
  st.request_bytes += len + 16;
  if (st.request_bytes > st.max_request_bytes)
    return refuse_object(t, std::string(st.authenticated ? "" : "unauthenticated ") +
                              "request of more than " + std::to_string(st.max_request_bytes) +
                              " bytes");
  auto* args = static_cast<std::vector<std::string>*>(t->parent->obj);
  args->emplace_back(str, len);
  return args; // any non-null pointer: hiredis only frees the root
}

void* make_integer(const redisReadTask* t, long long) {
  return refuse_object(t, "expected an array of bulk strings");
}

void* make_nil(const redisReadTask* t) {
  return refuse_object(t, "expected an array of bulk strings");
}

void free_request(void* obj) {
  delete static_cast<std::vector<std::string>*>(obj);
}

redisReplyObjectFunctions request_functions{make_string, make_array, make_integer, make_nil,
                                            free_request};

// The length of a bulk string whose header arrived but whose bytes have not (hiredis keeps
// its position at the length digits until the whole string is there), if any.
std::optional<unsigned long long> pending_bulk_length(const redisReader* r) {
  if (r->ridx < 0 || r->rstack[r->ridx].type != REDIS_REPLY_STRING)
    return std::nullopt;
  unsigned long long n = 0;
  for (size_t i = r->pos; i < r->len && i < r->pos + 20; ++i) {
    auto c = r->buf[i];
    if (c == '\r')
      return n;
    if (c < '0' || c > '9')
      return std::nullopt;
    n = n * 10 + static_cast<unsigned long long>(c - '0');
  }
  return std::nullopt;
}

std::string limit_text(size_t max_bulk) {
  return std::to_string(max_bulk) + " bytes (--max-value-bytes plus 1 MiB)";
}

} // namespace

resp_reader::resp_reader(size_t max_bulk) : impl_(std::make_unique<impl>()), max_bulk_(max_bulk) {
  impl_->max_bulk = max_bulk;
  impl_->max_request_bytes = max_bulk + (64u << 10);
  impl_->reader.reset(redisReaderCreateWithFunctions(&request_functions));
  if (!impl_->reader)
    throw std::bad_alloc();
  impl_->reader->privdata = impl_.get();
}

resp_reader::~resp_reader() = default;

void resp_reader::set_authenticated(bool yes) {
  impl_->authenticated = yes;
  impl_->max_args = yes ? max_multibulk : 10;
  impl_->max_bulk = yes ? max_bulk_ : 16384;
  impl_->max_request_bytes = yes ? max_bulk_ + (64u << 10) : 16384;
}

void resp_reader::feed(const char* data, size_t size) {
  redisReaderFeed(impl_->reader.get(), data, size);
}

size_t resp_reader::buffered() const {
  return impl_->reader->len - impl_->reader->pos;
}

// The limit a bulk string was refused by, in words: the node's, or the one before AUTH.
std::string resp_reader::limit_words() const {
  return impl_->authenticated ? "this node's limit of " + limit_text(max_bulk_)
                              : std::string("16384 bytes (unauthenticated)");
}

result<std::optional<std::vector<std::string>>> resp_reader::next() {
  auto* r = impl_->reader.get();
  void* raw = nullptr;
  if (redisReaderGetReply(r, &raw) != REDIS_OK) {
    auto why = impl_->refusal.empty() ? std::string(r->errstr) : impl_->refusal;
    if (impl_->refusal.rfind("bulk string of ", 0) == 0)
      why += " is above " + limit_words();
    return error{errc::malformed_frame, why};
  }
  if (!raw) {
    // Needs more bytes. Refuse now what would only be refused once it all arrived.
    auto pending = pending_bulk_length(r);
    if (pending && *pending > impl_->max_bulk)
      return error{errc::oversized_frame, "bulk string of " + std::to_string(*pending) +
                                            " bytes is above " + limit_words()};
    if (buffered() > impl_->max_request_bytes)
      return error{errc::oversized_frame,
                   "a request of more than " + std::to_string(impl_->max_request_bytes) + " bytes"};
    return std::optional<std::vector<std::string>>{};
  }
  std::unique_ptr<std::vector<std::string>> req(static_cast<std::vector<std::string>*>(raw));
  return std::optional<std::vector<std::string>>{std::move(*req)};
}

} // namespace mlr::actors
