#pragma once
// mlr-node's flags (Boost.Program_options) and the cluster secret file: what `--help`
// prints, in one place.

#include "messages/error.hpp"
#include "node/node.hpp"

#include <boost/program_options.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mlr::apps {

struct node_options {
  std::string id;
  std::string cluster = "mlr";
  std::string listen;
  std::vector<std::string> peers;
  std::string topology = "mesh";
  std::string hub;
  std::string standby_hubs;
  std::string hub_return = "resume";
  std::string resolver = "lww";
  std::string client_listen;
  std::string resp_listen;
  std::string secret_file;
  std::string cluster_file;
  std::string config_file;
  std::string log_level = "info";
  size_t threads = 2;
  int64_t heartbeat_ms = 250;
  int64_t peer_timeout_ms = 2000;
  int64_t ack_timeout_ms = 1000;
  int64_t pull_grace_ms = 500;
  int64_t handshake_timeout_ms = 5000;
  size_t max_key_bytes = 64u << 10;
  size_t max_value_bytes = 16u << 20;
  std::string fault;
  std::string client_secret_file;
  std::string requirepass;
  std::string admin_secret_file;
  bool allow_unauthenticated = false;
  uint64_t log_retention = 10000;
  size_t conflict_feed_records = 10000;
  size_t conflict_feed_mib = 64;
  std::string data_dir;
  std::string sync = "batch";
};

/// Says what is wrong with the input on stderr, points at --help, and returns exit status 2.
int bad_input(const std::string& msg);

/// Every flag mlr-node takes, bound to `o`.
boost::program_options::options_description make_options(node_options& o);

/// The node's options from the flags (and the cluster file and secret files they name):
/// what `node::node::start` takes. Errors name the flag or the file.
result<node::node_options> to_node_options(node_options& o,
                                           const boost::program_options::variables_map& vm);

} // namespace mlr::apps
