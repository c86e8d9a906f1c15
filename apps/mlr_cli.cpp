// mlr: the command-line client and admin tool of mlr-node.
//
//   mlr --node HOST:PORT put KEY VALUE [--context TOKEN]
//   mlr --node HOST:PORT get KEY
//   mlr --node HOST:PORT del KEY [--context TOKEN]
//   mlr --node HOST:PORT incr|sadd|srem|hset|hdel|hincr KEY ...
//   mlr --node HOST:PORT read KEY
//   mlr --node HOST:PORT status [--json]
//   mlr --node HOST:PORT watch [--interval SECONDS] [--count N]
//   mlr --node HOST:PORT watch-keys PREFIX [--count N]
//   mlr --node HOST:PORT conflicts [--since N] [--follow] [--count N] [--json] [--replay]
//   mlr --node HOST:PORT resolver set lww|multi|max|tags
//   mlr topology check FILE|ring:N|star:N|mesh:N
//
// Exit status: 0 success, 1 the node answered with an error or the key does not exist,
// 2 bad usage, 3 the node could not be reached.

#include "cli_commands.hpp"
#include "cli_conflicts.hpp"
#include "client/native_client.hpp"
#include "core/analysis.hpp"
#include "secret_file.hpp"
#include "topology/text_file.hpp"

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

namespace po = boost::program_options;
using namespace mlr;
using apps::fail_usage;
using apps::human_status;
using apps::typed_arity;
using apps::typed_command;

namespace {

const char* usage =
  "mlr: talk to an mlr-node through its client port (--client-listen).\n\n"
  "Usage:\n"
  "  mlr --node HOST:PORT put KEY VALUE [--context TOKEN]\n"
  "  mlr --node HOST:PORT get KEY\n"
  "  mlr --node HOST:PORT del KEY [--context TOKEN]\n"
  "  mlr --node HOST:PORT incr KEY [BY]            counter: add BY (default 1); prints the value\n"
  "  mlr --node HOST:PORT sadd|srem KEY MEMBER      set: add or remove; prints 1 if it changed\n"
  "  mlr --node HOST:PORT hset KEY FIELD VALUE      map: set a field; prints 1 if it is new\n"
  "  mlr --node HOST:PORT hdel KEY FIELD            map: remove a field; prints 1 if it was there\n"
  "  mlr --node HOST:PORT hincr KEY FIELD BY        map: a counter field; prints its value\n"
  "                                                 (   a negative BY goes after '--': incr K -- "
  "-2)\n"
  "  mlr --node HOST:PORT read KEY                  any type: prints 'type: T', then the value\n"
  "                                                 (a set's members, a map's FIELD=VALUE lines)\n"
  "  mlr --node HOST:PORT text get KEY              text: prints the document (and, on stderr,\n"
  "                                                 'context: TOKEN', its version)\n"
  "  mlr --node HOST:PORT text insert KEY INDEX TEXT [--context TOKEN]\n"
  "  mlr --node HOST:PORT text delete KEY INDEX COUNT [--context TOKEN]\n"
  "                                                 text: INDEX and COUNT in code points (past\n"
  "                                                 the end: the end); prints the new length;\n"
  "                                                 with the context a text get printed, INDEX\n"
  "                                                 counts in the document as it was then\n"
  "  mlr --node HOST:PORT status [--json]\n"
  "  mlr --node HOST:PORT watch [--interval SECONDS] [--count N]\n"
  "  mlr --node HOST:PORT watch-keys PREFIX [--count N]\n"
  "                                                 every change under PREFIX ('' for all), local\n"
  "                                                 or remote, in the order the node applied "
  "them,\n"
  "                                                 one line each: EVENT KEY [FIELD] [= VALUE]\n"
  "                                                 [+INDEX 'TEXT' | -INDEX COUNT ...] (TYPE,\n"
  "                                                 DOT); --count N: stop after N\n"
  "  mlr --node HOST:PORT conflicts [--since N] [--follow] [--count N] [--json]\n"
  "                                   [--replay [--resolver NAME]]\n"
  "                                                 the node's conflict feed, oldest first:\n"
  "                                                 #SEQ TIME KEY OUTCOME by RESOLVER: inputs\n"
  "                                                 -> what was kept or merged; --since N: after\n"
  "                                                 record N; --follow: wait for new ones;\n"
  "                                                 --replay: ask the resolver each question\n"
  "                                                 again (here, a built-in one: the recorded\n"
  "                                                 name, or --resolver) and compare; exits 1\n"
  "                                                 if an outcome differs\n"
  "  mlr --node HOST:PORT resolver set lww|multi|max|tags\n"
  "                                                 swap the running node's resolver (admin);\n"
  "                                                 swap every member's\n"
  "  mlr topology check FILE|ring:N|star:N|mesh:N\n"
  "  mlr --node HOST:PORT topology set ring|mesh|star:HUB|FILE\n\n"
  "get prints each live value on its own line (several when concurrent writes left\n"
  "siblings, under --resolver multi), then 'context: TOKEN'. Pass that token to put or del\n"
  "with --context to replace exactly the versions you saw; without it a write replaces\n"
  "whatever the node holds. A write is acknowledged once that node has applied it;\n"
  "replication to the others is asynchronous.\n\n"
  "topology check prints whether a topology is strongly connected, its single points of\n"
  "failure (nodes and links whose loss disconnects it), its diameter, messages per write\n"
  "and fan-out per node; it exits 1 for a graph that is not strongly connected.\n"
  "topology set changes a running cluster's topology through one node: a replicated\n"
  "write whose dot, printed, is the new epoch; every node routes by it once the write\n"
  "reaches it ('status' shows each node's epoch). FILE holds optional lines 'members A B\n"
  "...' (the current members in order, new ones last), 'address NAME HOST:PORT' (where a\n"
  "new member listens) and 'removed NAME ...', then ring, mesh, star:HUB or 'a -> b' lines.\n"
  "A topology that is not strongly connected or names a stranger is refused.\n\n"
  "A node started with --client-secret-file takes requests only after its secret:\n"
  "give --secret-file FILE (or set MLR_SECRET). topology set needs the node's admin\n"
  "secret: --admin-secret-file FILE (or MLR_ADMIN_SECRET).\n\n"
  "Exit status: 0 ok, 1 error from the node or key not found, 2 bad usage, 3 unreachable.\n\n";

// The secret from a file, or from the environment variable; empty when neither is given.
result<std::string> secret_from(const std::string& file, const char* env, const char* what) {
  if (!file.empty())
    return apps::read_secret(file, what);
  if (auto* v = std::getenv(env))
    return std::string(v);
  return std::string();
}

struct cli {
  std::string node;
  std::string context;
  bool has_context = false;
  bool as_json = false;
  double interval = 1.0;
  int64_t count = -1;
  std::vector<std::string> words;
  std::string secret, admin_secret;
  apps::conflicts_options feed;

  // Opens the connection and proves the secret (the admin one when `admin`), if any.
  result<std::unique_ptr<client::connection>> open(bool admin) const {
    auto conn = client::connection::open(node);
    if (!conn)
      return conn.err();
    auto& key = admin && !admin_secret.empty() ? admin_secret : secret;
    if (!key.empty())
      if (auto ok = (*conn)->auth(key); !ok)
        return error{errc::invalid_argument, ok.err().message};
    return conn;
  }
};

// Parses the command line into `c`; returns the exit status when there is nothing to run.
std::optional<int> parse(int argc, char** argv, cli& c) {
  std::string secret_file, admin_secret_file;
  po::options_description desc("Options");
  desc.add_options()("help,h", "print this help")("node", po::value(&c.node),
                                                  "HOST:PORT of the node's client port")(
    "secret-file", po::value(&secret_file),
    "file holding the node's client secret (default: $MLR_SECRET)")(
    "admin-secret-file", po::value(&admin_secret_file),
    "file holding the node's admin secret, for topology set (default: $MLR_ADMIN_SECRET)")(
    "context", po::value(&c.context),
    "for put/del: the context token a get printed; for text insert/delete: a text get's")(
    "json", po::bool_switch(&c.as_json), "for status: print JSON")(
    "interval", po::value(&c.interval)->default_value(c.interval),
    "for watch: seconds between updates")("count", po::value(&c.count)->default_value(c.count),
                                          "for watch and watch-keys: stop after N updates or "
                                          "changes (-1: never); for conflicts: after N "
                                          "records")(
    "since", po::value(&c.feed.since)->default_value(0),
    "for conflicts: records after sequence number N")("follow", po::bool_switch(&c.feed.follow),
                                                      "for conflicts: keep printing new records")(
    "replay", po::bool_switch(&c.feed.replay),
    "for conflicts: ask each record's question again and compare the outcome")(
    "resolver", po::value(&c.feed.resolver),
    "for conflicts --replay: replay through this built-in resolver instead of the recorded "
    "one")("words", po::value(&c.words), "command and arguments");
  po::positional_options_description pos;
  pos.add("words", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return fail_usage(e.what());
  }
  if (vm.count("help") || c.words.empty()) {
    std::cout << usage << desc;
    return vm.count("help") ? 0 : 2;
  }
  c.has_context = vm.count("context") > 0;
  c.feed.json = c.as_json;
  c.feed.count = c.count;
  auto secret = secret_from(secret_file, "MLR_SECRET", "client secret");
  auto admin_secret = secret_from(admin_secret_file, "MLR_ADMIN_SECRET", "admin secret");
  for (auto* s : {&secret, &admin_secret})
    if (!*s)
      return fail_usage(s->err().message);
  c.secret = *secret;
  c.admin_secret = *admin_secret;
  return std::nullopt;
}

int cannot_open(const error& e) {
  std::cerr << "mlr: " << e.message << "\n";
  return e.code == errc::invalid_argument ? 1 : 3;
}

int topology_set(const cli& c) {
  if (c.node.empty())
    return fail_usage("--node HOST:PORT is required for 'topology set'");
  auto spec = c.words[2];
  if (spec != "ring" && spec != "mesh" && spec.rfind("star", 0) != 0) {
    std::ifstream f(spec);
    if (!f) {
      std::cerr << "mlr: cannot read topology file '" << spec
                << "'; write ring, mesh, star:HUB or the path of an edge list\n";
      return 2;
    }
    std::stringstream text;
    text << f.rdbuf();
    spec = text.str();
  }
  auto conn = c.open(true);
  if (!conn)
    return cannot_open(conn.err());
  auto r = (*conn)->set_topology(spec);
  if (!r) {
    std::cerr << "mlr: " << r.err().message << "\n";
    return 1;
  }
  std::cout << "epoch " << *r << "\n";
  return 0;
}

int resolver_set(const cli& c) {
  if (c.node.empty())
    return fail_usage("--node HOST:PORT is required for 'resolver set'");
  auto conn = c.open(true);
  if (!conn)
    return cannot_open(conn.err());
  auto r = (*conn)->set_resolver(c.words[2]);
  if (!r) {
    std::cerr << "mlr: " << r.err().message << "\n";
    return 1;
  }
  std::cout << "resolver " << c.words[2] << " (" << *r
            << " questions in flight go on with the previous one)\n";
  return 0;
}

int topology_check(const cli& c) {
  if (c.words.size() != 3 || c.words[1] != "check")
    return fail_usage("write 'mlr topology check FILE|ring:N|star:N|mesh:N' or "
                      "'mlr --node HOST:PORT topology set ring|mesh|star:HUB|FILE'");
  auto g = core::graph_from_spec(c.words[2], topology::read_text_file);
  if (!g) {
    std::cerr << "mlr: " << g.err().message << "\n";
    return 1;
  }
  auto report = core::analyze(*g);
  std::cout << core::to_text(*g, report);
  return report.strongly_connected ? 0 : 1;
}

int get(client::connection& conn, const std::string& key) {
  auto r = conn.get(key);
  if (!r) {
    std::cerr << "mlr: " << r.err().message << "\n";
    return 1;
  }
  for (auto& v : r->siblings)
    std::cout << v << "\n";
  if (!r->context.empty())
    std::cout << "context: " << r->context << "\n";
  if (r->siblings.empty()) {
    std::cerr << "mlr: key '" << key << "' not found\n";
    return 1;
  }
  return 0;
}

int status(const cli& c, client::connection& conn, bool watch) {
  for (int64_t i = 0; c.count < 0 || i < c.count; ++i) {
    auto s = conn.status();
    if (!s) {
      std::cerr << "mlr: " << s.err().message << "\n";
      return 1;
    }
    if (c.as_json) {
      std::cout << *s << "\n";
    } else {
      auto j = nlohmann::json::parse(*s, nullptr, false);
      if (watch)
        std::cout << "\x1b[2J\x1b[H"; // clear the screen between updates
      std::cout << human_status(j);
    }
    std::cout.flush();
    if (!watch)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(c.interval * 1000)));
  }
  return 0;
}

// watch-keys PREFIX: one line per change, until --count changes or the node drops it.
int watch_keys(const cli& c, client::connection& n) {
  int64_t seen = 0;
  if (c.count == 0)
    return 0;
  auto r = n.watch(c.words[1], [&](const messages::client_response& ch) {
    std::cout << ch.event << " " << ch.key << (ch.field.empty() ? "" : " " + ch.field)
              << (ch.value.empty() ? "" : " = " + ch.value);
    for (auto& e : ch.edits) // text: what it did, by index
      std::cout << (e.insert ? " +" : " -") << e.index << " "
                << (e.insert ? "'" + e.text + "'" : std::to_string(e.count));
    std::cout << " (" << ch.type_name << ", " << ch.written << ")\n";
    std::cout.flush();
    return c.count < 0 || ++seen < c.count;
  });
  if (!r) {
    std::cerr << "mlr: " << r.err().message << "\n";
    return 1;
  }
  return 0;
}

// put, get, del, status, watch and the typed commands: requests to one node.
int data_command(const cli& c) {
  if (c.node.empty())
    return fail_usage("--node HOST:PORT is required (the node's --client-listen address)");
  auto& cmd = c.words[0];
  auto need = [&](size_t n) { return c.words.size() == n; };
  if ((cmd == "put" && !need(3)) || ((cmd == "get" || cmd == "del") && !need(2)) ||
      ((cmd == "status" || cmd == "watch" || cmd == "conflicts") && !need(1)) ||
      (cmd == "watch-keys" && !need(2)))
    return fail_usage("wrong number of arguments for '" + cmd + "'");
  auto typed = typed_arity(cmd);
  if (typed && (c.words.size() < typed->first || c.words.size() > typed->second))
    return fail_usage("wrong number of arguments for '" + cmd + "'");
  if (!typed && cmd != "put" && cmd != "get" && cmd != "del" && cmd != "status" && cmd != "watch" &&
      cmd != "watch-keys" && cmd != "conflicts")
    return fail_usage("unknown command '" + cmd +
                      "' (put, get, del, incr, sadd, srem, hset, hdel, hincr, read, text, status, "
                      "watch, watch-keys, conflicts, resolver set, topology)");
  auto conn = c.open(false);
  if (!conn)
    return cannot_open(conn.err());
  auto& n = **conn;
  const std::string* ctx = c.has_context ? &c.context : nullptr;
  if (typed)
    return *typed_command(c.words, n, ctx);
  if (cmd == "put" || cmd == "del") {
    auto r = cmd == "put" ? n.put(c.words[1], c.words[2], ctx) : n.del(c.words[1], ctx);
    if (!r) {
      std::cerr << "mlr: " << r.err().message << "\n";
      return 1;
    }
    std::cout << "ok " << *r << "\n";
    return 0;
  }
  if (cmd == "get")
    return get(n, c.words[1]);
  if (cmd == "watch-keys")
    return watch_keys(c, n);
  if (cmd == "conflicts")
    return apps::print_conflicts(n, c.feed);
  return status(c, n, cmd == "watch");
}

} // namespace

int main(int argc, char** argv) {
  cli c;
  if (auto done = parse(argc, argv, c))
    return *done;
  if (c.words[0] == "topology" && c.words.size() == 3 && c.words[1] == "set")
    return topology_set(c);
  if (c.words[0] == "topology")
    return topology_check(c);
  if (c.words[0] == "resolver") {
    if (c.words.size() != 3 || c.words[1] != "set")
      return fail_usage("write 'mlr --node HOST:PORT resolver set lww|multi|max|tags'");
    return resolver_set(c);
  }
  return data_command(c);
}
