// mlr-bench: figures for the replication core, in one process, in-memory.
//
// 1. Throughput and latency: for ring, star and mesh with N = 3 and 5, every node writes
//    (batched puts, a few batches in flight per node) until every node has applied every
//    write. Prints replicated writes/s, p50/p99 from a write to applied-at-every-node
//    (sampled), and the peak resident memory of that run (each run is a fresh child
//    process, so peaks do not accumulate).
// 2. Metadata on the wire: bytes per event beyond key and value, unpacked and packed, at
//    N = 3 and 32, for round-robin writes (each node writes once per round after applying
//    everyone else's: the worst case, N-1 entries in every deps delta) and bursty writes
//    (each node writes 100 in a row).
//
// It prints figures; it never passes or fails on them.

#include "actors/leader.hpp"
#include "bench/wire_figures.hpp"
#include "topology/wiring.hpp"

#include <boost/program_options.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

namespace po = boost::program_options;
using namespace mlr;
using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

namespace {

struct bench_options {
  size_t writes = 200000; // per node
  size_t batch = 256;     // puts per write_atom message
  size_t in_flight = 4;   // write batches outstanding per node
  size_t value_bytes = 16;
  size_t threads = 2;
  std::string policy = "stealing";
  messages::op_kind op = messages::op_kind::put; // put, or a typed operation (incr, sadd, hset)
};

// Write number `i` of `node`: a put of the node's own keys, or a typed operation on keys every
// node writes (so that counters, sets and maps really merge).
core::write_request bench_write(messages::op_kind op, size_t node, size_t i, size_t value_bytes) {
  core::write_request w;
  w.op = op;
  if (op == messages::op_kind::put) {
    w.key = "n" + std::to_string(node) + "-" + std::to_string(i % 10000);
    w.value = std::string(value_bytes, 'v');
    return w;
  }
  w.key = "k-" + std::to_string(i % 1000);
  w.delta = 1;
  if (op != messages::op_kind::incr)
    w.field = "f-" + std::to_string((i / 1000) % 16);
  if (op == messages::op_kind::hset)
    w.value = std::string(value_bytes, 'v');
  return w;
}

// Counts applications and samples latency from a write to its application everywhere.
class progress_observer : public core::replica_observer {
public:
  progress_observer(size_t nodes, uint64_t sample_every)
      : nodes_(nodes), sample_every_(sample_every) {}

  void on_apply(messages::node_index, const messages::event& e, bool local) override {
    applied_.fetch_add(1, std::memory_order_relaxed);
    if (e.id.counter % sample_every_ != 1 % sample_every_)
      return;
    auto now = clock_type::now();
    std::lock_guard<std::mutex> guard(mtx_);
    if (local) {
      pending_[e.id] = {now, nodes_ - 1};
      return;
    }
    auto i = pending_.find(e.id);
    if (i == pending_.end())
      return;
    if (--i->second.remaining == 0) {
      latencies_us_.push_back(
        std::chrono::duration<double, std::micro>(now - i->second.written).count());
      pending_.erase(i);
    }
  }
  void on_handled(const core::replica&) override {}

  uint64_t applied() const { return applied_.load(std::memory_order_relaxed); }
  std::vector<double> latencies() {
    std::lock_guard<std::mutex> guard(mtx_);
    return latencies_us_;
  }

private:
  struct sample {
    clock_type::time_point written;
    size_t remaining;
  };
  size_t nodes_;
  uint64_t sample_every_;
  std::atomic<uint64_t> applied_{0};
  std::mutex mtx_;
  std::map<messages::dot, sample> pending_;
  std::vector<double> latencies_us_;
};

// Feeds one leader: `total` puts in batches, at most `in_flight` batches outstanding.
caf::behavior writer(caf::event_based_actor* self, actors::leader_actor leader, size_t node,
                     size_t total, size_t batch, size_t in_flight, size_t value_bytes,
                     messages::op_kind op) {
  auto sent = std::make_shared<size_t>(0);
  auto send_next = std::make_shared<std::function<void()>>();
  *send_next = [=] {
    if (*sent >= total)
      return;
    std::vector<core::write_request> writes;
    auto n = std::min(batch, total - *sent);
    writes.reserve(n);
    for (size_t i = 0; i < n; ++i, ++*sent)
      writes.push_back(bench_write(op, node, *sent, value_bytes));
    self->request(leader, caf::infinite, actors::write_atom::value, std::move(writes))
      .then([=](std::vector<messages::dot>&) { (*send_next)(); });
  };
  for (size_t i = 0; i < in_flight; ++i)
    (*send_next)();
  return {[](caf::unit_t) {}};
}

using tick_atom = caf::atom_constant<caf::atom("tick")>;

// Writes `per_ms` puts every millisecond (one message each) until `total` are written.
caf::behavior paced_writer(caf::event_based_actor* self, actors::leader_actor leader, size_t node,
                           size_t total, double per_ms, size_t value_bytes) {
  auto sent = std::make_shared<size_t>(0);
  auto credit = std::make_shared<double>(0);
  self->send(self, tick_atom::value);
  return {
    [=](tick_atom) {
      *credit += per_ms;
      for (; *credit >= 1 && *sent < total; *credit -= 1, ++*sent)
        self
          ->request(leader, caf::infinite, actors::put_atom::value,
                    "n" + std::to_string(node) + "-" + std::to_string(*sent % 10000),
                    std::string(value_bytes, 'v'))
          .then([](messages::dot&) {});
      if (*sent < total)
        self->delayed_send(self, std::chrono::milliseconds(1), tick_atom::value);
    },
  };
}

double percentile(std::vector<double> xs, double p) {
  if (xs.empty())
    return 0;
  std::sort(xs.begin(), xs.end());
  return xs[std::min(xs.size() - 1, static_cast<size_t>(p * static_cast<double>(xs.size())))];
}

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

// rate == 0: every node writes as fast as the cluster takes it (throughput). rate > 0:
// writes are paced at `rate` per second across the cluster, and every write is sampled.
json run_cluster(const std::string& kind, size_t n, const bench_options& o, double rate,
                 const std::string& policy) {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", static_cast<int64_t>(o.threads));
  cfg.set("scheduler.policy", policy == "sharing" ? caf::atom("sharing") : caf::atom("stealing"));
  caf::actor_system sys{cfg};
  auto names = topology::default_names(n);
  topology::cluster_spec spec;
  spec.topology = kind == "ring"   ? topology::make_ring(names)
                  : kind == "star" ? topology::make_star(names, 0)
                                   : topology::make_mesh(names);
  spec.make_resolver = resolvers::builtin_resolver("lww");
  auto observer = std::make_shared<progress_observer>(n, rate > 0 ? 1 : 64);
  spec.observer = observer;
  spec.link.max_batch_events = 1024;
  spec.link.window = 4;
  auto h = topology::wire_cluster(sys, spec);
  if (!h)
    throw std::runtime_error(h.err().message);
  auto writes_per_node = rate > 0 ? static_cast<size_t>(rate * 2 / static_cast<double>(n))
                                  : o.writes; // paced runs last two seconds
  auto expected = static_cast<uint64_t>(n * n * writes_per_node);
  auto t0 = clock_type::now();
  for (size_t node = 0; node < n; ++node)
    if (rate > 0)
      sys.spawn(paced_writer, h->leaders[node], node, writes_per_node,
                rate / static_cast<double>(n) / 1000.0, o.value_bytes);
    else
      sys.spawn(writer, h->leaders[node], node, writes_per_node, o.batch, o.in_flight,
                o.value_bytes, o.op);
  auto deadline = t0 + std::chrono::seconds(120);
  while (observer->applied() < expected && clock_type::now() < deadline)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  auto secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  auto lat = observer->latencies();
  json out = {{"topology", kind},
              {"nodes", n},
              {"policy", policy},
              {"rate", rate},
              {"writes", n * writes_per_node},
              {"complete", observer->applied() >= expected},
              {"seconds", secs},
              {"writes_per_s", static_cast<double>(n * writes_per_node) / secs},
              {"p50_us", percentile(lat, 0.50)},
              {"p99_us", percentile(lat, 0.99)},
              {"latency_samples", lat.size()},
              {"peak_rss_mb", peak_rss_mb()}};
  for (auto& l : h->leaders)
    caf::anon_send_exit(l, caf::exit_reason::user_shutdown);
  for (auto& r : h->resolvers)
    caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
  return out;
}

// Runs `fn` in a child process and returns what it printed as JSON, so every run starts
// with a fresh heap and its own peak-memory figure.
json in_child(const std::function<json()>& fn) {
  int fds[2];
  if (pipe(fds) != 0)
    throw std::runtime_error("pipe failed");
  auto pid = fork();
  if (pid == 0) {
    close(fds[0]);
    std::string text;
    try {
      text = fn().dump();
    } catch (const std::exception& e) {
      text = json{{"error", e.what()}}.dump();
    }
    auto ignored = write(fds[1], text.data(), text.size());
    (void)ignored;
    close(fds[1]);
    _exit(0);
  }
  close(fds[1]);
  std::string text;
  char buf[4096];
  ssize_t got;
  while ((got = read(fds[0], buf, sizeof(buf))) > 0)
    text.append(buf, static_cast<size_t>(got));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (text.empty())
    return json{{"error", "child process died"}};
  return json::parse(text);
}

std::string machine() {
  std::ifstream cpu("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  while (std::getline(cpu, line))
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return std::to_string(std::thread::hardware_concurrency()) + " cores (" + model + "), " +
         std::to_string(pages * page / (1024L * 1024 * 1024)) + " GiB";
}

} // namespace

int main(int argc, char** argv) {
  bench_options o;
  bool as_json = false;
  bool quick = false;
  double rate = 10000;
  po::options_description desc("mlr-bench: throughput, latency, memory and wire-size figures "
                               "of the in-process replication core\n\nOptions");
  desc.add_options()("help,h", "print this help")(
    "writes", po::value(&o.writes)->default_value(o.writes), "writes per node in each run")(
    "batch", po::value(&o.batch)->default_value(o.batch), "puts per batched write message")(
    "in-flight", po::value(&o.in_flight)->default_value(o.in_flight),
    "batched writes outstanding per node")(
    "threads", po::value(&o.threads)->default_value(o.threads),
    "CAF worker threads")("policy", po::value(&o.policy)->default_value(o.policy),
                          "CAF scheduler policy: stealing or sharing")(
    "rate", po::value(&rate)->default_value(rate),
    "writes/s across the cluster for the latency runs")("quick", po::bool_switch(&quick),
                                                        "a short run (20000 writes per node)")(
    "json", po::bool_switch(&as_json), "print the figures as JSON");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "mlr-bench: " << e.what() << "\nRun 'mlr-bench --help' for the options.\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  if (o.policy != "stealing" && o.policy != "sharing") {
    std::cerr << "mlr-bench: --policy must be stealing or sharing\n";
    return 2;
  }
  if (quick)
    o.writes = 20000;

  json report = {{"machine", machine()}, {"writes_per_node", o.writes}, {"batch", o.batch}};
  if (!as_json)
    std::printf("mlr-bench on %s; in-memory, Release; %zu writes per node, %zu-put batches, "
                "%zu threads, %s scheduler\n\n%-6s %5s %14s %10s %10s %9s\n",
                machine().c_str(), o.writes, o.batch, o.threads, o.policy.c_str(), "topo", "nodes",
                "writes/s", "p50 ms", "p99 ms", "peak MB");
  for (std::string kind : {"ring", "star", "mesh"})
    for (size_t n : {3, 5}) {
      auto r = in_child([&] { return run_cluster(kind, n, o, 0, o.policy); });
      report["throughput"].push_back(r);
      if (as_json)
        continue;
      if (r.contains("error")) {
        std::printf("%-6s %5zu  error: %s\n", kind.c_str(), n,
                    r["error"].get<std::string>().c_str());
        continue;
      }
      std::printf("%-6s %5zu %14.0f %10.2f %10.2f %9.1f%s\n", kind.c_str(), n,
                  r["writes_per_s"].get<double>(), r["p50_us"].get<double>() / 1000,
                  r["p99_us"].get<double>() / 1000, r["peak_rss_mb"].get<double>(),
                  r["complete"].get<bool>() ? "" : "  (did not complete in 120 s)");
      std::fflush(stdout);
    }
  // Typed operations beside puts: mesh of 3, the same batches (typed writes read their key).
  if (!as_json)
    std::printf("\nmesh of 3, operations/s by type (counters, sets and maps on 1,000 keys every "
                "node writes)\n%-6s %14s %9s\n",
                "op", "ops/s", "peak MB");
  const std::pair<const char*, messages::op_kind> kinds[] = {{"put", messages::op_kind::put},
                                                             {"incr", messages::op_kind::incr},
                                                             {"sadd", messages::op_kind::sadd},
                                                             {"hset", messages::op_kind::hset}};
  for (auto& [name, op] : kinds) {
    auto typed_o = o;
    typed_o.op = op;
    auto r = in_child([&] { return run_cluster("mesh", 3, typed_o, 0, o.policy); });
    r["op"] = name;
    report["typed"].push_back(r);
    if (as_json)
      continue;
    if (r.contains("error")) {
      std::printf("%-6s  error: %s\n", name, r["error"].get<std::string>().c_str());
      continue;
    }
    std::printf("%-6s %14.0f %9.1f%s\n", name, r["writes_per_s"].get<double>(),
                r["peak_rss_mb"].get<double>(),
                r["complete"].get<bool>() ? "" : "  (did not complete in 120 s)");
    std::fflush(stdout);
  }
  if (!as_json)
    std::printf("\nlatency from a write to applied at every node, at a moderate rate (%.0f "
                "writes/s across the cluster for 2 s, every write sampled)\n%-6s %5s %-9s "
                "%10s %10s\n",
                rate, "topo", "nodes", "scheduler", "p50 ms", "p99 ms");
  for (std::string kind : {"ring", "star", "mesh"})
    for (std::string policy : {"stealing", "sharing"}) {
      auto r = in_child([&] { return run_cluster(kind, 3, o, rate, policy); });
      report["latency"].push_back(r);
      if (as_json)
        continue;
      if (r.contains("error")) {
        std::printf("%-6s %5d %-9s error: %s\n", kind.c_str(), 3, policy.c_str(),
                    r["error"].get<std::string>().c_str());
        continue;
      }
      std::printf("%-6s %5d %-9s %10.3f %10.3f%s\n", kind.c_str(), 3, policy.c_str(),
                  r["p50_us"].get<double>() / 1000, r["p99_us"].get<double>() / 1000,
                  r["complete"].get<bool>() ? "" : "  (did not complete)");
      std::fflush(stdout);
    }
  if (!as_json)
    std::printf("\nbytes per event beyond key and value (batches of 64, what one link ships)\n"
                "%-6s %-12s %10s %10s\n",
                "nodes", "workload", "unpacked", "packed");
  for (size_t n : {3, 32})
    for (bool bursty : {false, true}) {
      auto w = bench::measure_wire(n, bursty, 1000);
      report["wire"].push_back({{"nodes", n},
                                {"workload", bursty ? "bursty" : "round-robin"},
                                {"unpacked", w.unpacked},
                                {"packed", w.packed}});
      if (!as_json)
        std::printf("%-6zu %-12s %10.1f %10.1f\n", n, bursty ? "bursty" : "round-robin", w.unpacked,
                    w.packed);
    }
  // Typed operations (counters, sets, maps), the same round-robin workload at 3 nodes.
  const std::pair<const char*, messages::op_kind> typed_ops[] = {{"INCR", messages::op_kind::incr},
                                                                 {"SADD", messages::op_kind::sadd},
                                                                 {"HSET", messages::op_kind::hset}};
  for (auto& [name, op] : typed_ops) {
    auto w = bench::measure_wire(3, false, 1000, op);
    report["wire"].push_back({{"nodes", 3},
                              {"workload", std::string("round-robin ") + name},
                              {"unpacked", w.unpacked},
                              {"packed", w.packed}});
    if (!as_json)
      std::printf("%-6d %-12s %10.1f %10.1f\n", 3, (std::string("rr ") + name).c_str(), w.unpacked,
                  w.packed);
  }
  if (as_json)
    std::cout << report.dump(2) << "\n";
  return 0;
}
