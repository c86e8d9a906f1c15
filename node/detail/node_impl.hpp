#pragma once
// Private to mlr_node: what a running node holds (node.cpp assembles it, node_api.cpp
// answers the blocking API through it).

#include "node/node.hpp"

#include "node/detail/plan.hpp"

#include "client/native_client.hpp"
#include "gateways/gateways.hpp"
#include "topology/wiring.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <optional>

namespace mlr::node {

using detail::address;
using detail::node_index;
using detail::plan;

// Members added at runtime: the topology key names where they listen; the leader's
// on_routing (on its thread) connects to them and hands the leader their sinks.
struct runtime_members {
  std::mutex m;
  actors::logger log;
  caf::actor_system* sys = nullptr;
  actors::transport* net = nullptr;
  actors::leader_actor leader;

  void on_routing(const core::routing& r);
};

struct node::impl {
  node_options opts;
  plan p;
  uint64_t incarnation = 0;
  std::unique_ptr<caf::actor_system_config> cfg;
  std::unique_ptr<caf::actor_system> sys;
  actors::leader_actor leader;
  resolvers::resolver_actor resolver;
  std::optional<actors::transport> net;
  std::vector<actors::link_actor> links;
  topology::out_links out_links;   ///< this member's links in the static topology
  std::vector<caf::actor> brokers; // every broker, as a plain handle: each gets one exit
  size_t dialers_at_start = 0;     // in brokers; the ones after were added at runtime
  std::shared_ptr<runtime_members> rt = std::make_shared<runtime_members>();
  actors::logger log;
  uint16_t client_port = 0, resp_port = 0;
  std::map<uint64_t, caf::actor> watchers; // subscription id -> the actor calling back
  std::string where;
  bool stopped = false;
  std::shared_ptr<std::atomic<bool>> failed = std::make_shared<std::atomic<bool>>(false);

  /// The leader's configuration; `links` gets this member's static out-links.
  actors::leader_config leader_config(topology::out_links& links) const;
  result<bool> start_system();
  result<bool> start_transport();
  result<bool> start_gateways();
  // Waits (up to `flush`) until every link has nothing in flight and has caught up.
  void flush_links(caf::scoped_actor& self, std::chrono::milliseconds flush);
  void stop(std::chrono::milliseconds flush);
  void kill();

  /// Asks the leader and waits (10 s) for its answer.
  template <class T, class... Ts> result<T> ask(Ts&&... xs) {
    caf::scoped_actor self{*sys};
    std::optional<result<T>> out;
    self->request(leader, std::chrono::seconds(10), std::forward<Ts>(xs)...)
      .receive([&](T& x) { out.emplace(std::move(x)); },
               [&](caf::error& err) { out.emplace(actors::from_caf(err)); });
    return std::move(*out);
  }
};

} // namespace mlr::node
