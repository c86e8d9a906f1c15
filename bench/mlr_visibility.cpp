// mlr-visibility: the time from a write acknowledged at one node to the write being visible
// at another node, over loopback, at a moderate rate (one write in flight at a time).
// Visibility is detected by polling the second node's client port in a tight loop, so each
// figure is an upper bound, coarse by one get round trip (about 30-60 us here).
//
//   mlr-visibility --writer HOST:PORT --reader HOST:PORT [--count N] [--rate W]

#include "client/native_client.hpp"

#include <boost/program_options.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

namespace po = boost::program_options;
using clock_type = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string writer, reader;
  size_t count = 2000;
  double rate = 1000;
  po::options_description desc(
    "mlr-visibility: write at one node, time until visible at another\n\nOptions");
  desc.add_options()("help,h", "print this help")(
    "writer", po::value(&writer), "client HOST:PORT of the node that takes the writes")(
    "reader", po::value(&reader), "client HOST:PORT of the node that is polled")(
    "count", po::value(&count)->default_value(count),
    "writes to time")("rate", po::value(&rate)->default_value(rate), "writes per second at most");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "mlr-visibility: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("help") || writer.empty() || reader.empty()) {
    std::cout << desc;
    return vm.count("help") ? 0 : 2;
  }
  auto w = mlr::client::connection::open(writer);
  auto r = mlr::client::connection::open(reader);
  if (!w || !r) {
    std::cerr << "mlr-visibility: " << (!w ? w.err().message : r.err().message) << "\n";
    return 3;
  }
  std::vector<double> us;
  auto gap = std::chrono::duration<double>(1.0 / rate);
  auto run_id = std::to_string(clock_type::now().time_since_epoch().count());
  for (size_t i = 0; i < count; ++i) {
    auto start = clock_type::now();
    auto key = "vis-" + run_id + "-" + std::to_string(i);
    if (!(*w)->put(key, "x")) {
      std::cerr << "mlr-visibility: write failed\n";
      return 1;
    }
    auto acked = clock_type::now();
    for (;;) {
      auto g = (*r)->get(key);
      if (g && !g->siblings.empty())
        break;
      if (clock_type::now() - acked > std::chrono::seconds(5)) {
        std::cerr << "mlr-visibility: write " << i << " not visible after 5 s\n";
        return 1;
      }
    }
    us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - acked).count());
    std::this_thread::sleep_until(start + gap);
  }
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) {
    return us[std::min(us.size() - 1, static_cast<size_t>(p * us.size()))];
  };
  std::printf("visibility over %zu writes at <= %.0f/s: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
              us.size(), rate, pct(0.50) / 1000, pct(0.99) / 1000, us.back() / 1000);
  return 0;
}
