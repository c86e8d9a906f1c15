#pragma once
// The real editing traces in tests/data/editing-traces (josephg/editing-traces, CC BY 4.0;
// see the README there), read with `gzip -dc` and nlohmann::json. Positions and lengths
// are in Unicode code points.

#include <nlohmann/json.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace mlr::testing::traces {

struct patch {
  uint64_t position = 0;
  uint64_t deleted = 0;
  std::string inserted; ///< UTF-8
};

struct transaction {
  std::vector<size_t> parents; ///< indexes of earlier transactions
  size_t agent = 0;
  std::vector<patch> patches;
};

struct trace {
  std::string end_content; ///< UTF-8
  size_t agents = 1;
  std::vector<transaction> txns;
};

inline std::string directory() {
  return MLR_TRACES_DIR;
}

inline nlohmann::json read_gzip_json(const std::string& path) {
  auto* pipe = popen(("gzip -dc '" + path + "'").c_str(), "r");
  if (!pipe)
    throw std::runtime_error("cannot run gzip for " + path);
  std::string text;
  char buf[1 << 16];
  for (size_t n; (n = fread(buf, 1, sizeof buf, pipe)) > 0;)
    text.append(buf, n);
  if (pclose(pipe) != 0 || text.empty())
    throw std::runtime_error("cannot read " + path + " (gzip -dc failed)");
  return nlohmann::json::parse(text);
}

inline std::vector<patch> read_patches(const nlohmann::json& ps) {
  std::vector<patch> out;
  for (auto& p : ps)
    out.push_back(
      patch{p.at(0).get<uint64_t>(), p.at(1).get<uint64_t>(), p.at(2).get<std::string>()});
  return out;
}

/// `name` is "automerge-paper" (sequential: one agent, each transaction after the
/// previous) or "friendsforever" (concurrent: transactions name their parents).
inline trace load(const std::string& name) {
  auto j = read_gzip_json(directory() + "/" + name + ".json.gz");
  trace t;
  t.end_content = j.at("endContent").get<std::string>();
  t.agents = j.value("numAgents", size_t{1});
  size_t i = 0;
  for (auto& x : j.at("txns")) {
    transaction tx;
    if (x.contains("parents"))
      tx.parents = x.at("parents").get<std::vector<size_t>>();
    else if (i > 0)
      tx.parents = {i - 1};
    tx.agent = x.value("agent", size_t{0});
    tx.patches = read_patches(x.at("patches"));
    t.txns.push_back(std::move(tx));
    ++i;
  }
  return t;
}

} // namespace mlr::testing::traces
