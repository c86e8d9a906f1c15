#pragma once
// Where a node's brokers (transport, gateways) and its assembly write their log lines: a
// logger handed to them by whoever assembles the node (node_options::log), not a global.
// Without a sink it writes to spdlog's default logger (what mlr-node configures).

#include <spdlog/spdlog.h>

#include <functional>
#include <string>
#include <utility>

namespace mlr::actors {

enum class log_level { info, warn, error };

struct logger {
  /// Takes every line; empty: spdlog's default logger.
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
    switch (level) {
    case log_level::info:
      spdlog::info("{}", line);
      break;
    case log_level::warn:
      spdlog::warn("{}", line);
      break;
    case log_level::error:
      spdlog::error("{}", line);
      break;
    }
  }
};

} // namespace mlr::actors
