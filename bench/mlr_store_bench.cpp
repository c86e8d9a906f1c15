// mlr-store-bench: durable write throughput of one leader, in one run, under each storage
// configuration: the in-memory store, RocksDB with --sync none, batch and always. Writers
// are concurrent actors (each with one batched write outstanding), so group commit has
// something to group. Also the machine's fsync latency (p50/p99), which bounds `always`.
// Prints figures and ratios; never fails on them.
//
//   mlr-store-bench [--dir DIR] [--writes N] [--writers W] [--batch B]

#include "actors/leader.hpp"

#include <boost/program_options.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

namespace po = boost::program_options;
using namespace mlr;
using clock_type = std::chrono::steady_clock;

namespace {

// Sends `total` puts in batches of `batch`, one batch outstanding at a time.
caf::behavior writer(caf::event_based_actor* self, actors::leader_actor leader, size_t id,
                     size_t total, size_t batch, std::shared_ptr<std::atomic<size_t>> done) {
  auto sent = std::make_shared<size_t>(0);
  auto next = std::make_shared<std::function<void()>>();
  *next = [=] {
    if (*sent >= total) {
      done->fetch_add(1);
      return;
    }
    std::vector<core::write_request> ws;
    for (size_t i = 0; i < batch && *sent < total; ++i, ++*sent)
      ws.push_back(core::write_request{"w" + std::to_string(id) + "-" + std::to_string(*sent),
                                       messages::op_kind::put,
                                       std::string(16, 'v'),
                                       false,
                                       {}});
    self->request(leader, caf::infinite, actors::write_atom::value, std::move(ws))
      .then([=](std::vector<messages::dot>&) { (*next)(); });
  };
  (*next)();
  return {[](caf::unit_t) {}};
}

double run(const std::string& mode, const std::string& dir, size_t writes, size_t writers,
           size_t batch) {
  std::unique_ptr<storage::store> store;
  actors::leader_config cfg;
  cfg.replica.self = 0;
  cfg.replica.incarnation = 1;
  cfg.replica.forward_to = {{}};
  cfg.tick_interval = std::chrono::milliseconds(0);
  if (mode == "memory") {
    store = storage::make_memory_store();
  } else {
    std::filesystem::remove_all(dir);
    auto s = storage::open_rocksdb_store(dir);
    if (!s) {
      std::cerr << "mlr-store-bench: " << s.err().message << "\n";
      std::exit(1);
    }
    store = std::move(*s);
    cfg.replica.sync = mode == "always"  ? actors::sync_policy::always
                       : mode == "batch" ? actors::sync_policy::batch
                                         : actors::sync_policy::none;
  }
  caf::actor_system_config sc;
  sc.set("scheduler.max-threads", int64_t{2});
  caf::actor_system sys{sc};
  auto leader =
    actors::spawn_leader(sys, cfg, std::move(store), resolvers::builtin_resolver("lww")(sys));
  auto done = std::make_shared<std::atomic<size_t>>(0);
  auto t0 = clock_type::now();
  for (size_t w = 0; w < writers; ++w)
    sys.spawn(writer, leader, w, writes / writers, batch, done);
  while (done->load() < writers)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  auto secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  caf::anon_send_exit(leader, caf::exit_reason::user_shutdown);
  return static_cast<double>(writes / writers * writers) / secs;
}

void fsync_latency(const std::string& dir, double& p50, double& p99) {
  std::filesystem::create_directories(dir);
  auto path = dir + "/fsync-probe";
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  std::vector<double> us;
  std::string block(4096, 'x');
  for (int i = 0; i < 300; ++i) {
    auto t = clock_type::now();
    if (::write(fd, block.data(), block.size()) < 0 || ::fdatasync(fd) != 0)
      break;
    us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t).count());
  }
  ::close(fd);
  std::filesystem::remove(path);
  std::sort(us.begin(), us.end());
  p50 = us.empty() ? 0 : us[us.size() / 2];
  p99 = us.empty() ? 0 : us[std::min(us.size() - 1, us.size() * 99 / 100)];
}

} // namespace

int main(int argc, char** argv) {
  std::string dir = "/tmp/mlr-store-bench";
  size_t writes = 200000, writers = 8, batch = 16;
  po::options_description desc("mlr-store-bench: durable writes/s per --sync policy\n\nOptions");
  desc.add_options()("help,h", "print this help")("dir", po::value(&dir)->default_value(dir),
                                                  "scratch directory (on the disk to measure)")(
    "writes", po::value(&writes)->default_value(writes), "writes per configuration")(
    "writers", po::value(&writers)->default_value(writers), "concurrent writers")(
    "batch", po::value(&batch)->default_value(batch), "puts per write message");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "mlr-store-bench: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  double p50 = 0, p99 = 0;
  fsync_latency(dir, p50, p99);
  std::printf("fsync (4 KiB write + fdatasync) in %s: p50 %.3f ms, p99 %.3f ms\n", dir.c_str(),
              p50 / 1000, p99 / 1000);
  std::printf("%zu writes, %zu writers, %zu puts per message, one leader\n%-16s %12s %14s\n",
              writes, writers, batch, "store", "writes/s", "vs sync none");
  double none = 0;
  for (std::string mode : {"memory", "none", "batch", "always"}) {
    auto n = mode == "always" ? std::min<size_t>(writes, 20000) : writes;
    auto rate = run(mode, dir + "/db-" + mode, n, writers, batch);
    if (mode == "none")
      none = rate;
    std::printf("%-16s %12.0f %14s\n", (mode == "memory" ? "memory" : "rocksdb " + mode).c_str(),
                rate, none > 0 ? (std::to_string(rate / none).substr(0, 4) + "x").c_str() : "-");
    std::fflush(stdout);
    std::filesystem::remove_all(dir + "/db-" + mode);
  }
  return 0;
}
