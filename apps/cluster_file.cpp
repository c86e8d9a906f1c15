#include "cluster_file.hpp"

#include <fstream>
#include <optional>
#include <sstream>

namespace mlr::apps {

result<cluster_file> parse_cluster_file(const std::string& text) {
  cluster_file out;
  std::istringstream in(text);
  std::string raw;
  size_t line_no = 0;
  auto bad = [&](const std::string& what) {
    return error{errc::invalid_argument, "line " + std::to_string(line_no) + ": " + what};
  };
  while (std::getline(in, raw)) {
    ++line_no;
    auto line = raw.substr(0, raw.find('#'));
    std::istringstream words(line);
    std::string key;
    if (!(words >> key))
      continue;
    std::vector<std::string> rest;
    for (std::string w; words >> w;)
      rest.push_back(w);
    auto one = [&](std::string& field) -> std::optional<error> {
      if (rest.size() != 1)
        return bad("'" + key + "' takes exactly one value");
      field = rest[0];
      return std::nullopt;
    };
    std::optional<error> err;
    if (key == "cluster")
      err = one(out.cluster);
    else if (key == "topology")
      err = one(out.topology);
    else if (key == "hub")
      err = one(out.hub);
    else if (key == "standby-hubs")
      err = one(out.standby_hubs);
    else if (key == "hub-return")
      err = one(out.hub_return);
    else if (key == "resolver")
      err = one(out.resolver);
    else if (key == "node") {
      if (rest.size() < 2)
        return bad("write 'node ID HOST:PORT [client=HOST:PORT] [resp=HOST:PORT]'");
      cluster_node n{rest[0], rest[1], {}, {}};
      for (size_t i = 2; i < rest.size(); ++i) {
        if (rest[i].rfind("client=", 0) == 0)
          n.client_address = rest[i].substr(7);
        else if (rest[i].rfind("resp=", 0) == 0)
          n.resp_address = rest[i].substr(5);
        else
          return bad("unknown node attribute '" + rest[i] + "' (client=, resp=)");
      }
      for (auto& other : out.nodes)
        if (other.id == n.id)
          return bad("node '" + n.id + "' is listed twice");
      out.nodes.push_back(std::move(n));
    } else {
      return bad("unknown statement '" + key +
                 "' (cluster, topology, hub, standby-hubs, hub-return, resolver, node)");
    }
    if (err)
      return *err;
  }
  if (out.nodes.empty())
    return error{errc::invalid_argument, "no 'node' lines: a cluster file lists every node"};
  return out;
}

result<cluster_file> read_cluster_file(const std::string& path) {
  std::ifstream f(path);
  if (!f)
    return error{errc::invalid_argument, "cannot read cluster file '" + path + "'"};
  std::stringstream buf;
  buf << f.rdbuf();
  auto r = parse_cluster_file(buf.str());
  if (!r)
    return error{r.err().code, path + ": " + r.err().message};
  return r;
}

} // namespace mlr::apps
