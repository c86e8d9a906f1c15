#include "cli_commands.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>

namespace mlr::apps {

int fail_usage(const std::string& msg) {
  std::cerr << "mlr: " << msg << "\nRun 'mlr --help' for usage.\n";
  return 2;
}

std::string human_status(const nlohmann::json& j) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof(line),
                "node %s (cluster %s, incarnation %s, topology %s, resolver %s)\n",
                j.value("node", "?").c_str(), j.value("cluster", "?").c_str(),
                j.value("incarnation", "?").c_str(), j.value("topology", "?").c_str(),
                j.value("resolver", "?").c_str());
  out += line;
  if (j.contains("epoch") && j["epoch"].is_string())
    out += "topology epoch " + j["epoch"].get<std::string>() + "\n";
  out += "applied: " + std::to_string(j.value("applied_total", 0)) + " events, " +
         std::to_string(j.value("keys", 0)) + " keys, state digest " +
         j.value("state_digest", "?") + "\n";
  if (j.contains("caught_up") && !j["caught_up"].get<bool>())
    out += "catching up: started without data; writes wait until it holds what its peers "
           "reported\n";
  out += "version vector:";
  if (j.contains("applied"))
    for (auto& [k, v] : j["applied"].items())
      out += " " + k + "=" + std::to_string(v.get<uint64_t>());
  out += "\n";
  if (j.contains("stats")) {
    auto& s = j["stats"];
    out += "conflicts: " + std::to_string(s.value("conflicts", 0)) + " (unresolved " +
           std::to_string(s.value("unresolved", 0)) +
           "), duplicates dropped: " + std::to_string(s.value("duplicates_dropped", 0)) +
           ", buffered: " + std::to_string(s.value("buffered", 0)) +
           ", pulled: " + std::to_string(s.value("pulled_events", 0)) + "\n";
    out += "log: entries " + std::to_string(j.value("log_begin", 0)) + ".." +
           std::to_string(j.value("log_entries", 0)) + " kept (" +
           std::to_string(s.value("log_compacted", 0)) +
           " compacted), state transfers: " + std::to_string(s.value("transfers_received", 0)) +
           " received, " + std::to_string(s.value("transfers_served", 0)) +
           " served, retired incarnations: " +
           std::to_string(j.contains("retired") ? j["retired"].size() : 0) + "\n";
  }
  if (j.contains("state_transfer") && j["state_transfer"].is_object()) {
    auto& t = j["state_transfer"];
    out += "state transfer from " + t.value("from", std::string("?")) + ": " +
           std::to_string(t.value("keys_done", 0)) + " of ~" +
           std::to_string(t.value("keys_total", 0)) + " keys\n";
  }
  out += "peers:\n";
  std::snprintf(line, sizeof(line), "  %-12s %-5s %-8s %12s %10s %10s  %s\n", "id", "up",
                "protocol", "lag events", "lag s", "silent ms", "last error");
  out += line;
  if (j.contains("peers"))
    for (auto& p : j["peers"]) {
      std::snprintf(line, sizeof(line), "  %-12s %-5s %-8s %12llu %10.3f %10lld  %s\n",
                    p.value("id", "?").c_str(), p.value("up", false) ? "up" : "DOWN",
                    p.value("protocol_version", 0)
                      ? ("v" + std::to_string(p.value("protocol_version", 0))).c_str()
                      : "-",
                    static_cast<unsigned long long>(p.value("lag_events", 0)),
                    p.value("lag_seconds", 0.0), static_cast<long long>(p.value("silent_ms", -1)),
                    p.value("last_error", "").c_str());
      out += line;
    }
  if (j.contains("inbound")) {
    auto& in = j["inbound"];
    out += "inbound: " + std::to_string(in.value("accepted", 0)) + " accepted, " +
           std::to_string(in.value("refused", 0)) + " refused, " +
           std::to_string(in.value("bad_frames", 0)) + " closed for bad frames";
    auto last = in.value("last_refusal", std::string());
    if (!last.empty())
      out += " (last: " + last + ")";
    out += "\n";
  }
  return out;
}

namespace {

// mlr text get KEY | insert KEY INDEX TEXT | delete KEY INDEX COUNT.
int text_command(const std::vector<std::string>& w, client::connection& n,
                 const std::string* context) {
  auto fail = [](const error& e) {
    std::cerr << "mlr: " << e.message << "\n";
    return 1;
  };
  if (w[1] == "get" && w.size() == 3) {
    auto r = n.read(w[2]);
    if (!r)
      return fail(r.err());
    if (r->type_name != "text" && r->type_name != "none")
      return fail(error{errc::refused,
                        "WRONGTYPE the key holds a " + r->type_name + "; read it with 'read'"});
    std::cout << (r->items.empty() ? std::string() : r->items[0]) << "\n";
    if (!r->context.empty())
      std::cerr << "context: " << r->context << "\n";
    return r->type_name == "none" ? 1 : 0;
  }
  bool insert = w[1] == "insert";
  if ((!insert && w[1] != "delete") || w.size() != 5)
    return fail_usage("text takes: get KEY | insert KEY INDEX TEXT | delete KEY INDEX COUNT");
  auto number = [](const std::string& s) -> std::optional<uint64_t> {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 19)
      return std::nullopt;
    return std::stoull(s);
  };
  auto index = number(w[3]);
  auto count = insert ? std::optional<uint64_t>(0) : number(w[4]);
  if (!index || !count)
    return fail_usage("'" + (index ? w[4] : w[3]) + "' is not a non-negative integer");
  auto r = n.text(insert ? messages::op_kind::text_insert : messages::op_kind::text_delete, w[2],
                  *index, insert ? w[4] : std::string(), *count, context);
  if (!r)
    return fail(r.err());
  std::cout << *r << "\n";
  return 0;
}

} // namespace

std::optional<int> typed_command(const std::vector<std::string>& w, client::connection& n,
                                 const std::string* context) {
  using messages::op_kind;
  if (w[0] == "text")
    return text_command(w, n, context);
  static const std::map<std::string, std::pair<op_kind, size_t>> ops{
    {"incr", {op_kind::incr, 2}}, {"sadd", {op_kind::sadd, 3}}, {"srem", {op_kind::srem, 3}},
    {"hset", {op_kind::hset, 4}}, {"hdel", {op_kind::hdel, 3}}, {"hincr", {op_kind::hincr, 4}}};
  if (w[0] == "read") {
    auto r = n.read(w[1]);
    if (!r) {
      std::cerr << "mlr: " << r.err().message << "\n";
      return 1;
    }
    std::cout << "type: " << r->type_name << "\n";
    bool pairs = r->type_name == "hash";
    for (size_t i = 0; i < r->items.size(); i += pairs ? 2 : 1)
      std::cout << r->items[i] << (pairs && i + 1 < r->items.size() ? "=" + r->items[i + 1] : "")
                << "\n";
    return r->type_name == "none" ? 1 : 0;
  }
  auto i = ops.find(w[0]);
  if (i == ops.end())
    return std::nullopt;
  int64_t delta = 1;
  if (w[0] == "incr" || w[0] == "hincr") {
    const auto& by = w[0] == "incr" ? (w.size() > 2 ? w[2] : std::string("1")) : w[3];
    char* end = nullptr;
    errno = 0;
    delta = std::strtoll(by.c_str(), &end, 10);
    if (by.empty() || *end != '\0' || errno == ERANGE)
      return fail_usage("'" + by + "' is not a 64-bit integer");
  }
  auto field = w[0] == "incr" ? std::string() : w[2];
  auto value = w[0] == "hset" ? w[3] : std::string();
  auto r = n.typed(i->second.first, w[1], field, value, delta);
  if (!r) {
    std::cerr << "mlr: " << r.err().message << "\n";
    return 1;
  }
  std::cout << *r << "\n";
  return 0;
}

std::optional<std::pair<size_t, size_t>> typed_arity(const std::string& cmd) {
  static const std::map<std::string, std::pair<size_t, size_t>> arity{
    {"incr", {2, 3}}, {"sadd", {3, 3}},  {"srem", {3, 3}}, {"hset", {4, 4}},
    {"hdel", {3, 3}}, {"hincr", {4, 4}}, {"read", {2, 2}}, {"text", {3, 5}}};
  auto i = arity.find(cmd);
  return i == arity.end() ? std::nullopt : std::optional(i->second);
}

} // namespace mlr::apps
