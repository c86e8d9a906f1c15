#pragma once
// Partitions between mlr-node processes of a process_cluster, for process tests: a node is
// cut off by restarting it (from its data directory) with a cluster file in which the
// other side's peer addresses lead nowhere, and the others with one in which its address
// does. Restarting every node with the shared file heals it.

#include "process_harness.hpp"

#include <csignal>
#include <fstream>

namespace mlr::testing {

// The shared cluster file with the peer addresses of `dead` pointing at unused ports.
inline std::string cluster_file_without(process_cluster& c, const std::vector<size_t>& dead,
                                        const std::string& name) {
  auto text = read_file(c.dir() + "/cluster.txt");
  for (auto i : dead) {
    auto real = "127.0.0.1:" + std::to_string(c.ports(i).peer) + " ";
    auto pos = text.find(real);
    REQUIRE(pos != std::string::npos);
    text.replace(pos, real.size(), "127.0.0.1:" + std::to_string(free_port()) + " ");
  }
  auto path = c.dir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

inline void restart(process_cluster& c, size_t i, const std::string& file = {}) {
  c.node(i).signal(SIGTERM);
  REQUIRE(c.node(i).wait(std::chrono::seconds(10)) == 0);
  c.start(i, file);
  REQUIRE(c.wait_ready(i));
}

// Cuts n2 off from n0 and n1 (each side restarted with a cluster file in which the other
// side's addresses lead nowhere).
inline void cut_off_n2(process_cluster& c) {
  restart(c, 2, cluster_file_without(c, {0, 1}, "cut-n2.txt"));
  auto side = cluster_file_without(c, {2}, "cut-n01.txt");
  restart(c, 0, side);
  restart(c, 1, side);
}

} // namespace mlr::testing
