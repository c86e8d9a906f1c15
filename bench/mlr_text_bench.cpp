// mlr-text-bench: the text CRDT (core/text.hpp) on the automerge-paper trace, edit by edit:
// applied locally at one document (index to id, as an origin does), and the operations
// that produced applied at a second document (by id, as a receiver does). Each document is
// checked against the trace's endContent. Prints ops/s, items (runs and tombstones) and
// peak RSS. In process, no actors yet: replication through nodes comes with the text key
// type (issue 13). Usage: mlr-text-bench [--rounds N]

#include "bench/editing_traces.hpp"
#include "core/text.hpp"

#include <malloc.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <variant>
#include <vector>

using namespace mlr;
using clock_type = std::chrono::steady_clock;

namespace {

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

struct edit {
  uint64_t position;
  uint64_t deleted;
  std::u32string inserted;
};

} // namespace

int main(int argc, char** argv) {
  int rounds = 3;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: mlr-text-bench [--rounds N]   (default 3)\n");
      return 2;
    }
  }
  auto trace = testing::traces::load("automerge-paper");
  std::vector<edit> edits;
  for (auto& tx : trace.txns)
    for (auto& p : tx.patches)
      edits.push_back(edit{p.position, p.deleted, *core::text::from_utf8(p.inserted)});
  auto want = *core::text::from_utf8(trace.end_content);
  std::printf("automerge-paper: %zu edits, %zu characters at the end\n", edits.size(), want.size());
  std::printf("%-6s %14s %14s %10s %8s\n", "round", "local ops/s", "remote ops/s", "items", "ok");
  bool all_ok = true;
  const messages::source origin{0, 1};
  uint64_t counter = 0;
  for (int r = 1; r <= rounds; ++r) {
    using op = std::variant<core::text::insert_op, core::text::delete_op>;
    std::vector<op> ops;
    ops.reserve(edits.size());
    core::text::document local;
    auto t = clock_type::now();
    for (auto& e : edits) {
      if (e.deleted > 0)
        ops.emplace_back(local.erase(messages::dot{origin, ++counter}, e.position, e.deleted));
      if (!e.inserted.empty())
        ops.emplace_back(local.insert(messages::dot{origin, ++counter}, e.position, e.inserted));
    }
    double local_s = seconds_since(t);
    core::text::document remote;
    t = clock_type::now();
    for (auto& o : ops)
      std::visit([&](auto& x) { remote.apply(x); }, o);
    double remote_s = seconds_since(t);
    bool ok = local.read() == want && remote.read() == want;
    all_ok &= ok;
    std::printf("%-6d %14.0f %14.0f %10zu %8s\n", r, edits.size() / local_s,
                edits.size() / remote_s, local.items(), ok ? "yes" : "NO");
  }
  // The document's own heap: what malloc holds more once it is built.
  auto before = mallinfo2().uordblks;
  auto doc = std::make_unique<core::text::document>();
  for (auto& e : edits) {
    if (e.deleted > 0)
      doc->erase(messages::dot{origin, ++counter}, e.position, e.deleted);
    if (!e.inserted.empty())
      doc->insert(messages::dot{origin, ++counter}, e.position, e.inserted);
  }
  auto bytes = mallinfo2().uordblks - before;
  std::printf("document in memory: %.2f MB (%.1f bytes per visible character, %zu items)\n",
              bytes / 1e6, static_cast<double>(bytes) / want.size(), doc->items());
  std::printf("peak RSS %.1f MB (the trace as parsed JSON, its operations and the documents)\n",
              peak_rss_mb());
  return all_ok ? 0 : 1;
}
