#include "cli_conflicts.hpp"

#include "resolvers/replay.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <iostream>
#include <map>
#include <thread>

namespace mlr::apps {

namespace {

// A value as a line shows it: printable bytes as they are, others as \xNN, cut at 64.
std::string shown(const std::string& v) {
  std::string out = "\"";
  for (size_t i = 0; i < v.size() && i < 64; ++i) {
    auto c = static_cast<unsigned char>(v[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  out += v.size() > 64 ? "\"... (" + std::to_string(v.size()) + " bytes)" : "\"";
  return out;
}

std::string iso_time(uint64_t ms) {
  auto secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03uZ", buf, static_cast<unsigned>(ms % 1000));
  return out;
}

std::string line(const messages::conflict_record& r) {
  std::string out = "#" + std::to_string(r.seq) + " " + iso_time(r.at_ms) + " " + shown(r.key) +
                    " " + r.outcome() + " by " + (r.resolver.empty() ? "?" : r.resolver) + ":";
  for (auto& v : r.versions)
    out += " " + messages::to_string(v.id) + "=" + (v.tombstone ? "(deleted)" : shown(v.value));
  if (r.merged)
    out += " -> " + shown(r.value);
  else if (r.resolved) {
    out += " -> kept";
    for (auto& d : r.kept)
      out += " " + messages::to_string(d);
  } else {
    out += " -> siblings kept: " + r.reason;
  }
  if (r.values_cut)
    out += " (values cut to 1 KiB)";
  return out;
}

nlohmann::json as_json(const messages::conflict_record& r) {
  nlohmann::json j{{"seq", r.seq},           {"at_ms", r.at_ms},
                   {"key", r.key},           {"outcome", r.outcome()},
                   {"resolver", r.resolver}, {"values_cut", r.values_cut}};
  auto& vs = j["versions"] = nlohmann::json::array();
  for (auto& v : r.versions)
    vs.push_back({{"dot", messages::to_string(v.id)},
                  {"hlc", v.time.value},
                  {"deleted", v.tombstone},
                  {"value", v.value}});
  auto& kept = j["kept"] = nlohmann::json::array();
  for (auto& d : r.kept)
    kept.push_back(messages::to_string(d));
  if (r.merged)
    j["value"] = r.value;
  if (!r.resolved)
    j["reason"] = r.reason;
  return j;
}

// Replays records through built-in resolvers, one instance per name, spawned on first use.
class replayer {
public:
  explicit replayer(std::string fixed) : fixed_(std::move(fixed)) {}
  ~replayer() {
    for (auto& [name, r] : resolvers_)
      caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
  }
  // Empty: not replayed (say why in `why`).
  std::optional<resolvers::replay_outcome> run(const messages::conflict_record& r,
                                               std::string& why) {
    auto name = fixed_.empty() ? r.resolver : fixed_;
    auto i = resolvers_.find(name);
    if (i == resolvers_.end()) {
      auto make = resolvers::builtin_resolver(name);
      if (!make) {
        why = "resolver '" + name + "' is not built in (replay it from C++ with resolvers::replay)";
        return std::nullopt;
      }
      i = resolvers_.emplace(name, make(sys_)).first;
    }
    return resolvers::replay(sys_, i->second, {r}).front();
  }

private:
  std::string fixed_;
  caf::actor_system_config cfg_;
  caf::actor_system sys_{cfg_};
  std::map<std::string, resolvers::resolver_actor> resolvers_;
};

struct tally {
  uint64_t same = 0, different = 0, skipped = 0;
};

void show(const messages::conflict_record& r, const conflicts_options& o, replayer* rp, tally& t) {
  std::string verdict;
  if (rp) {
    std::string why;
    auto got = rp->run(r, why);
    if (!got || !got->compared) {
      ++t.skipped;
      verdict = "not replayed: " + (got ? got->why : why);
    } else if (got->same) {
      ++t.same;
      verdict = "same";
    } else {
      ++t.different;
      verdict = "DIFFERENT: " + got->why;
    }
  }
  if (o.json) {
    auto j = as_json(r);
    if (rp)
      j["replay"] = verdict;
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cout << line(r) << (rp ? " [replay: " + verdict + "]" : "") << "\n";
  }
  std::cout.flush();
}

} // namespace

int print_conflicts(client::connection& conn, const conflicts_options& o) {
  std::unique_ptr<replayer> rp;
  if (o.replay)
    rp = std::make_unique<replayer>(o.resolver);
  tally t;
  uint64_t after = o.since;
  int64_t shown_n = 0;
  bool first_page = true;
  while (o.count < 0 || shown_n < o.count) {
    auto page = conn.conflicts(after, 1000);
    if (!page) {
      std::cerr << "mlr: " << page.err().message << "\n";
      return 1;
    }
    // A gap: trimmed before they were read (on any page: a follower can fall behind too).
    if (!page->empty() && page->front().seq > after + 1 && (after > 0 || !first_page))
      std::cerr << "mlr: records " << after + 1 << ".." << page->front().seq - 1
                << " were trimmed before they were read (the node keeps the latest "
                   "--conflict-feed-records, about --conflict-feed-mib of them)\n";
    first_page = false;
    for (auto& r : *page) {
      if (o.count >= 0 && shown_n >= o.count)
        break;
      show(r, o, rp.get(), t);
      after = r.seq;
      ++shown_n;
    }
    if (page->empty()) {
      if (!o.follow)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  if (rp)
    std::cerr << "replayed " << shown_n << " records: " << t.same << " same, " << t.different
              << " different, " << t.skipped << " not replayed\n";
  return t.different > 0 ? 1 : 0;
}

} // namespace mlr::apps
