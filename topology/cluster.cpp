#include "topology/cluster.hpp"

#include "topology/text_file.hpp"
#include "topology/wiring.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <algorithm>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace mlr::topology {

struct cluster::impl {
  cluster_options options;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  cluster_handles handles;
  cluster_spec spec;     ///< as wired (add_node uses it)
  std::mutex membership; ///< add_node and remove_node one at a time

  // Sends a request from a fresh scoped actor (one per call, so threads may share the
  // cluster) and waits for the answer.
  template <class T, class... Ts> result<T> ask(size_t node, Ts&&... xs) {
    if (node >= handles.leaders.size())
      return error{errc::unknown_node, "node " + std::to_string(node) + " does not exist; the " +
                                         "cluster has " + std::to_string(handles.leaders.size())};
    caf::scoped_actor self{*sys};
    std::optional<result<T>> out;
    self->request(handles.leaders[node], options.request_timeout, std::forward<Ts>(xs)...)
      .receive([&](T& x) { out.emplace(std::move(x)); },
               [&](caf::error& err) { out.emplace(actors::from_caf(err)); });
    return std::move(*out);
  }
};

cluster::cluster(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

cluster::~cluster() {
  if (impl_ && impl_->sys) {
    for (auto& l : impl_->handles.leaders)
      caf::anon_send_exit(l, caf::exit_reason::user_shutdown);
    for (auto& r : impl_->handles.resolvers)
      caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
  }
}

result<std::unique_ptr<cluster>> cluster::start(cluster_options options) {
  auto names = options.names.empty() ? default_names(options.nodes) : options.names;
  if (names.empty())
    return error{errc::invalid_argument, "a cluster needs at least one node"};
  auto g = make_topology(options.topology, names, options.hub, read_text_file);
  if (!g)
    return g.err();
  cluster_spec spec;
  spec.topology = std::move(*g);
  spec.seed = options.seed;
  spec.make_resolver = options.custom_resolver ? options.custom_resolver
                                               : resolvers::builtin_resolver(options.resolver);
  spec.resolver_name = options.custom_resolver ? "custom" : options.resolver;
  if (!spec.make_resolver)
    return error{errc::invalid_argument,
                 "unknown resolver '" + options.resolver + "'; use lww, multi, max or tags"};
  auto p = std::make_unique<impl>();
  p->options = options;
  p->cfg.set("scheduler.max-threads", static_cast<int64_t>(std::max<size_t>(1, options.threads)));
  p->sys = std::make_unique<caf::actor_system>(p->cfg);
  auto h = wire_cluster(*p->sys, spec);
  if (!h)
    return h.err();
  p->handles = std::move(*h);
  p->spec = std::move(spec);
  return std::unique_ptr<cluster>(new cluster(std::move(p)));
}

size_t cluster::size() const {
  return impl_->handles.leaders.size();
}

const graph& cluster::topology() const {
  return impl_->handles.topology;
}

result<messages::dot> cluster::put(size_t node, const std::string& key, const std::string& value) {
  return impl_->ask<messages::dot>(node, actors::put_atom::value, key, value);
}

result<messages::dot> cluster::put(size_t node, const std::string& key, const std::string& value,
                                   const causal_context& context) {
  return impl_->ask<messages::dot>(node, actors::put_atom::value, key, value, context);
}

result<size_t> cluster::add_node(const std::string& name, const std::string& shape, size_t via) {
  std::lock_guard<std::mutex> guard(impl_->membership);
  auto n = topology::add_node(*impl_->sys, impl_->spec, impl_->handles, name, shape,
                              static_cast<node_index>(via));
  if (!n)
    return n.err();
  return static_cast<size_t>(*n);
}

result<messages::dot> cluster::remove_node(const std::string& name, const std::string& shape,
                                           size_t via) {
  std::lock_guard<std::mutex> guard(impl_->membership);
  auto& members = impl_->handles.members;
  if (std::find(members.begin(), members.end(), name) == members.end())
    return error{errc::unknown_node, "'" + name + "' is not a member"};
  // The removed ones so far, from the topology the writing node routes by.
  auto s = status(via);
  if (!s)
    return s.err();
  std::string removed = name;
  auto at = s->topology.find("removed ");
  if (at != std::string::npos)
    removed += " " + s->topology.substr(at + 8, s->topology.find('\n', at) - at - 8);
  std::string spec = "members";
  for (auto& m : members)
    spec += " " + m;
  spec += "\nremoved " + removed + "\n" + shape;
  return set_topology(via, spec);
}

const std::vector<std::string>& cluster::members() const {
  return impl_->handles.members;
}

result<messages::dot> cluster::set_topology(size_t node, const std::string& spec) {
  return impl_->ask<messages::dot>(node, actors::topology_atom::value, spec);
}

result<messages::dot> cluster::del(size_t node, const std::string& key) {
  return impl_->ask<messages::dot>(node, actors::del_atom::value, key);
}

result<messages::dot> cluster::del(size_t node, const std::string& key,
                                   const causal_context& context) {
  return impl_->ask<messages::dot>(node, actors::del_atom::value, key, context);
}

result<std::vector<messages::dot>>
cluster::put_batch(size_t node, const std::vector<std::pair<std::string, std::string>>& kvs) {
  std::vector<core::write_request> writes;
  writes.reserve(kvs.size());
  for (auto& [k, v] : kvs)
    writes.push_back(core::write_request{k, messages::op_kind::put, v, false, {}});
  return impl_->ask<std::vector<messages::dot>>(node, actors::write_atom::value, std::move(writes));
}

result<get_result> cluster::get(size_t node, const std::string& key) {
  return impl_->ask<get_result>(node, actors::get_atom::value, key);
}

result<node_status> cluster::status(size_t node) {
  return impl_->ask<node_status>(node, actors::status_atom::value);
}

result<std::vector<core::conflict_record>> cluster::conflicts(size_t node, uint64_t after,
                                                              uint32_t limit) {
  return impl_->ask<std::vector<core::conflict_record>>(node, actors::conflicts_atom::value, after,
                                                        limit);
}

bool cluster::wait_converged(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::vector<node_status> all;
    for (size_t n = 0; n < size(); ++n)
      if (auto s = status(n))
        all.push_back(std::move(*s));
    // Members removed by the topology (as the first node routes) are left out.
    std::set<std::string> removed;
    if (!all.empty()) {
      auto at = all.front().topology.find("removed ");
      if (at != std::string::npos) {
        auto& t = all.front().topology;
        std::istringstream in(t.substr(at + 8, t.find('\n', at) - at - 8));
        for (std::string w; in >> w;)
          removed.insert(w);
      }
    }
    auto expected = size();
    std::vector<node_status> live;
    for (auto& s : all)
      if (!removed.count(impl_->handles.members.at(s.node)))
        live.push_back(s);
    expected -= std::min(expected, removed.size());
    if (live.size() == expected && converged(live))
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

bool converged(const std::vector<node_status>& nodes) {
  for (auto& n : nodes) {
    if (n.stats.buffered != 0 || n.pending_resolutions != 0)
      return false;
    if (n.applied != nodes.front().applied || n.digest != nodes.front().digest ||
        n.epoch != nodes.front().epoch)
      return false;
  }
  return true;
}

} // namespace mlr::topology
