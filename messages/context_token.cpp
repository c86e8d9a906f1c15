// Context tokens (wire.hpp): what a get hands out and a put or del gives back, as text.

#include "messages/wire.hpp"

#include "messages/detail/capnp_io.hpp"

#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace mlr::messages {

using detail::max_counter;

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

} // namespace mlr::messages
