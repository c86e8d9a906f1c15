#include "gateways/detail/node_status.hpp"

#include <caf/actor_system.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <optional>
#include <utility>
#include <vector>

namespace mlr::actors {

namespace {

std::string hex(uint64_t x) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

nlohmann::json vv_json(const messages::version_vector& vv,
                       const std::vector<std::string>& members) {
  auto out = nlohmann::json::object();
  for (auto& [s, c] : vv.entries()) {
    auto name = s.node < members.size() ? members[s.node] : "n" + std::to_string(s.node);
    out[name + "." + hex(s.incarnation)] = c;
  }
  return out;
}

struct collector {
  nlohmann::json doc;
  size_t waiting = 0;
  std::function<void(std::string)> done;
  // A dialer's lag is against the vector the leader last gossiped to it, which can trail the
  // leader's own: "0 behind" could then be read while the peer still missed events. So the lag
  // is counted again here against the leader's vector of this same status request.
  std::optional<messages::version_vector> own_applied;
  std::vector<messages::version_vector> peer_applied; // index = position in doc["peers"]
  void finish_one() {
    if (--waiting != 0)
      return;
    if (own_applied)
      for (size_t i = 0; i < peer_applied.size(); ++i) {
        auto& p = doc["peers"][i];
        auto missing = own_applied->missing_from(peer_applied[i]);
        p["lag_events"] = missing;
        if (missing == 0)
          p["lag_seconds"] = 0.0;
      }
    done(doc.dump());
  }
};

} // namespace

// The leader's part of the document.
static void leader_part(nlohmann::json& doc, std::optional<messages::version_vector>& own_applied,
                        node_status& s, const std::vector<std::string>& members) {
  doc["incarnation"] = hex(s.incarnation); // may have changed since start
  doc["epoch"] = s.epoch.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.epoch);
  if (!s.topology.empty())
    doc["topology_edges"] = s.topology;
  if (!s.pending_topology.empty())
    doc["topology_pending"] = s.pending_topology;
  doc["applied"] = vv_json(s.applied, members);
  own_applied = s.applied;
  doc["applied_total"] = s.applied.total();
  doc["caught_up"] = s.caught_up;
  if (!s.resolver.empty())
    doc["resolver"] = s.resolver; // what runs now, after any hot swap
  doc["retired"] = vv_json(s.retired, members);
  doc["log_begin"] = s.log_begin;
  auto from =
    s.transfer.from < members.size() ? members[s.transfer.from] : std::to_string(s.transfer.from);
  doc["state_transfer"] = s.transfer.active ? nlohmann::json{{"from", from},
                                                             {"keys_done", s.transfer.keys_done},
                                                             {"keys_total", s.transfer.keys_total}}
                                            : nlohmann::json(nullptr);
  doc["state_digest"] = hex(s.digest);
  doc["keys"] = s.keys;
  doc["live_keys"] = s.live_keys;
  doc["log_entries"] = s.log_end;
  auto stats = nlohmann::json::object();
  for_each_stat(s.stats,
                [&](const char* name, uint64_t value, const char*) { stats[name] = value; });
  doc["stats"] = std::move(stats);
}

namespace {

// One collection, for the requests that waited when it started.
void collect_once(gateway_actor::broker_pointer self, const node_context& ctx,
                  std::function<void(std::string json)> done) {
  auto c = std::make_shared<collector>();
  c->done = std::move(done);
  c->doc = {
    {"node", ctx.node_id},      {"cluster", ctx.cluster},   {"incarnation", hex(ctx.incarnation)},
    {"topology", ctx.topology}, {"resolver", ctx.resolver}, {"peers", nlohmann::json::array()}};
  auto members = ctx.members;
  c->waiting = 2;
  for (auto& d : ctx.dialers)
    if (d)
      ++c->waiting;
  auto timeout = std::chrono::seconds(5);
  self->request(ctx.leader, timeout, status_atom::value)
    .then(
      [c, members](node_status& s) {
        leader_part(c->doc, c->own_applied, s, members);
        c->finish_one();
      },
      [c](caf::error&) {
        c->doc["error"] = "the leader did not answer";
        c->finish_one();
      });
  self->request(ctx.acceptor, timeout, status_atom::value)
    .then(
      [c](acceptor_stats& a) {
        auto inbound = nlohmann::json::object();
        a.for_each_counter([&](const char* name, uint64_t value) { inbound[name] = value; });
        inbound["last_refusal"] = a.last_refusal;
        c->doc["inbound"] = std::move(inbound);
        c->finish_one();
      },
      [c](caf::error&) { c->finish_one(); });
  for (auto& d : ctx.dialers) {
    if (!d)
      continue;
    self->request(d, timeout, status_atom::value)
      .then(
        [c, members](peer_state& p) {
          c->doc["peers"].push_back({{"id", p.id},
                                     {"up", p.up},
                                     {"protocol_version", p.version},
                                     {"silent_ms", p.silent_ms},
                                     {"lag_events", p.lag_events},
                                     {"lag_seconds", static_cast<double>(p.lag_ms) / 1000.0},
                                     {"connects", p.connects},
                                     {"bytes_received", p.bytes_received},
                                     {"last_error", p.last_error},
                                     {"applied", vv_json(p.applied, members)}});
          c->peer_applied.push_back(p.applied);
          c->finish_one();
        },
        [c](caf::error&) { c->finish_one(); });
  }
}

void start_batch(gateway_actor::broker_pointer self, const node_context* ctx,
                 const std::shared_ptr<status_batch>& batch) {
  batch->running = true;
  collect_once(self, *ctx,
               [self, ctx, batch, waiters = std::exchange(batch->waiting, {})](std::string json) {
                 auto shared = std::make_shared<const std::string>(std::move(json));
                 batch->running = false;
                 for (auto& w : waiters)
                   w(shared);
                 if (!batch->running && !batch->waiting.empty())
                   start_batch(self, ctx, batch);
               });
}

} // namespace

void collect_status(gateway_actor::broker_pointer self, const node_context& ctx,
                    const std::shared_ptr<status_batch>& batch, status_batch::done_fn done) {
  batch->waiting.push_back(std::move(done));
  if (!batch->running)
    start_batch(self, &ctx, batch); // ctx is the gateway's, which outlives its requests
}

} // namespace mlr::actors
