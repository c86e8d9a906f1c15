#pragma once
// The cluster file every node of a cluster can share (`mlr-node --cluster-file FILE`):
//
//     # comments start with '#'
//     cluster shop                     # the cluster's name
//     topology ring                    # ring, star, mesh, or the path of an edge-list file
//     hub n0                           # the hub, for a star
//     standby-hubs n1,n2               # where spokes ship while the hub does not answer
//     hub-return spoke                 # a failed hub comes back as a spoke (or: resume)
//     resolver lww                     # lww, multi, max or tags
//     node n0 127.0.0.1:7000 client=127.0.0.1:7100 resp=127.0.0.1:6400
//     node n1 127.0.0.1:7001 client=127.0.0.1:7101
//
// Node order in the file is the node order of the cluster (a ring follows it).

#include "messages/error.hpp"

#include <string>
#include <vector>

namespace mlr::apps {

struct cluster_node {
  std::string id;
  std::string peer_address;   ///< host:port other nodes dial
  std::string client_address; ///< optional
  std::string resp_address;   ///< optional
};

struct cluster_file {
  std::string cluster;
  std::string topology;
  std::string hub;
  std::string standby_hubs; ///< comma-separated ids
  std::string hub_return;   ///< spoke or resume
  std::string resolver;
  std::vector<cluster_node> nodes;
};

result<cluster_file> parse_cluster_file(const std::string& text);
result<cluster_file> read_cluster_file(const std::string& path);

} // namespace mlr::apps
