#pragma once
// Where a node's brokers (transport, gateways) and its assembly write their log lines: a
// logger handed to them by whoever assembles the node (node_options::log), not a global.
// Without a sink it writes "level: line" to standard error; mlr-node passes a sink that
// writes through its spdlog logger.

#include <fmt/format.h>

#include <cstdio>
#include <functional>
#include <string>
#include <utility>

namespace mlr::actors {

enum class log_level { info, warn, error };

struct logger {
  /// Takes every line; empty: standard error.
  std::function<void(log_level, const std::string&)> sink;

  template <class... Ts> void info(fmt::format_string<Ts...> f, Ts&&... xs) const {
    write(log_level::info, fmt::format(f, std::forward<Ts>(xs)...));
  }
  template <class... Ts> void warn(fmt::format_string<Ts...> f, Ts&&... xs) const {
    write(log_level::warn, fmt::format(f, std::forward<Ts>(xs)...));
  }
  template <class... Ts> void error(fmt::format_string<Ts...> f, Ts&&... xs) const {
    write(log_level::error, fmt::format(f, std::forward<Ts>(xs)...));
  }

  void write(log_level level, const std::string& line) const {
    if (sink)
      return sink(level, line);
    static const char* const names[] = {"info", "warn", "error"};
    std::fprintf(stderr, "%s: %s\n", names[static_cast<int>(level)], line.c_str());
  }
};

} // namespace mlr::actors
