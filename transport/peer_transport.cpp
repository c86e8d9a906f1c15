#include "transport/detail/transport_detail.hpp"

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>

#include <algorithm>
#include <future>

namespace mlr::actors {

using detail::acceptor;
using detail::dialer;

result<transport> start_transport(caf::actor_system& sys, transport_config cfg,
                                  leader_actor leader) {
  auto shared = std::make_shared<const transport_config>(std::move(cfg));
  auto opened = std::make_shared<std::promise<result<uint16_t>>>();
  auto port_future = opened->get_future();
  transport t;
  t.acceptor = sys.middleman().spawn_broker(acceptor, shared, leader, opened);
  if (port_future.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
    return error{errc::timeout, "the listening socket did not open within 10 s"};
  auto port = port_future.get();
  if (!port)
    return port.err();
  t.port = *port;
  t.cfg = shared;
  auto n = shared->self.members.size();
  t.dialers.resize(n);
  t.sinks.resize(n);
  for (messages::node_index i = 0; i < n; ++i) {
    if (i == shared->self_index)
      continue;
    t.dialers[i] = sys.middleman().spawn_broker(dialer, shared, i, leader);
    t.sinks[i] = t.dialers[i];
  }
  return t;
}

sink_actor add_peer(caf::actor_system& sys, transport& t, leader_actor leader,
                    const std::string& name, peer_address where) {
  auto next = std::make_shared<transport_config>(*t.cfg);
  auto i = std::find(next->self.members.begin(), next->self.members.end(), name);
  if (i != next->self.members.end()) { // known already
    auto idx = static_cast<size_t>(i - next->self.members.begin());
    return idx < t.sinks.size() ? t.sinks[idx] : sink_actor{};
  }
  auto index = static_cast<messages::node_index>(next->self.members.size());
  next->self.members.push_back(name);
  next->addresses.push_back(std::move(where));
  t.cfg = next;
  caf::anon_send(t.acceptor, member_atom::value, t.cfg);
  t.dialers.push_back(sys.middleman().spawn_broker(dialer, t.cfg, index, leader));
  t.sinks.push_back(t.dialers.back());
  t.cfg->log.info("member {} added at runtime: dialing {}:{}", name, t.cfg->addresses[index].host,
                  t.cfg->addresses[index].port);
  return t.sinks.back();
}

} // namespace mlr::actors
