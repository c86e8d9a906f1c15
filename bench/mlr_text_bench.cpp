// mlr-text-bench: text on the automerge-paper trace, edit by edit, each result checked
// against the trace's endContent:
// - the CRDT alone (core/text.hpp): applied locally at one document (index to id, as an
//   origin does), and the operations that produced applied at a second one (by id);
// - a text key replicated across 3 replicas (core/replica.hpp, memory stores, in one
//   process, no actors or sockets): every edit a write at the first, its log shipped to the
//   other two in encoded batches (what links send) as it goes, stability and log compaction
//   running, until all three hold endContent. Prints edits/s, the bytes on the wire and at
//   rest (what a store keeps for the document once stable: its snapshot record and the
//   operation records it does not cover) per character, and peak RSS.
// Usage: mlr-text-bench [--rounds N]

#include "bench/editing_traces.hpp"
#include "core/replica.hpp"
#include "core/text.hpp"
#include "messages/codec.hpp"
#include "storage/serialize.hpp"

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

struct replicated {
  double seconds = 0;
  bool ok = false;
  uint64_t wire_bytes = 0, rest_bytes = 0, records = 0, log_kept = 0;
};

// The trace through three replicas (see the file's comment).
replicated replicate(const std::vector<testing::traces::patch>& patches, const std::string& want) {
  std::vector<std::unique_ptr<core::replica>> rs;
  for (messages::node_index i = 0; i < 3; ++i) {
    core::replica_config cfg;
    cfg.self = i;
    cfg.incarnation = i + 1;
    cfg.forward_to.resize(3);
    for (messages::node_index j = 0; j < 3; ++j)
      if (j != i)
        cfg.forward_to[i].push_back(j);
    rs.push_back(std::make_unique<core::replica>(cfg, storage::make_memory_store()));
  }
  replicated out;
  uint64_t cursor[3] = {0, 0, 0}, now = 1000;
  auto ship = [&](messages::node_index to) {
    for (;;) {
      auto got = rs[0]->fetch(to, cursor[to], 4096, 1u << 20);
      cursor[to] = got.next;
      if (got.batch.events.empty())
        return;
      auto f = messages::encode(got.batch);
      out.wire_bytes += f.bytes.size();
      auto back = messages::decode_batch(f); // as a link's receiver takes it
      rs[to]->receive(std::move(*back), now);
      rs[to]->take_ready();
    }
  };
  auto gossip = [&] {
    for (messages::node_index a = 0; a < 3; ++a)
      for (messages::node_index b = 0; b < 3; ++b)
        if (a != b)
          rs[b]->observe_report(a, rs[a]->applied(), rs[a]->stable(), now);
    for (auto& r : rs)
      r->collect_garbage(now);
  };
  auto t = clock_type::now();
  size_t n = 0;
  for (auto& p : patches) {
    core::write_request w;
    w.key = "doc";
    w.index = p.position;
    if (p.deleted > 0) {
      w.op = messages::op_kind::text_delete;
      w.count = p.deleted;
      rs[0]->write(w, ++now);
    }
    if (!p.inserted.empty()) {
      w.op = messages::op_kind::text_insert;
      w.value = p.inserted;
      rs[0]->write(w, ++now);
    }
    rs[0]->take_ready();
    if (++n % 256 == 0) {
      ship(1);
      ship(2);
    }
    if (n % 8192 == 0)
      gossip();
  }
  ship(1);
  ship(2);
  out.ok = true;
  for (auto& r : rs) {
    auto doc = r->read_text("doc");
    out.ok &= doc && doc->text == want;
  }
  out.seconds = seconds_since(t);
  gossip(); // stability takes two rounds: then what is at rest is what a settled node keeps
  gossip();
  out.log_kept = rs[1]->log_end() - rs[1]->store().log_begin();
  rs[1]->store().for_each_prefix(core::text_op_prefix, [&](const std::string& k, auto& vs) {
    out.rest_bytes += k.size() + storage::serialize(vs).size();
    ++out.records;
  });
  return out;
}

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
  std::vector<testing::traces::patch> patches;
  for (auto& tx : trace.txns)
    for (auto& p : tx.patches) {
      edits.push_back(edit{p.position, p.deleted, *core::text::from_utf8(p.inserted)});
      patches.push_back(p);
    }
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
  std::printf("encoded with every deleter: %zu bytes (%.2f bytes per visible character)\n",
              doc->encode().size(), static_cast<double>(doc->encode().size()) / want.size());
  // Tombstone collection: with every delete stable (one replica), all deleters go.
  auto t = clock_type::now();
  auto collected = doc->collect([](const messages::dot&) { return true; });
  double collect_s = seconds_since(t);
  auto after = mallinfo2().uordblks - before;
  std::printf("after collecting %zu tombstones (%.1f ms): %.2f MB (%.1f bytes per visible "
              "character, %zu items)\n",
              collected, collect_s * 1e3, after / 1e6, static_cast<double>(after) / want.size(),
              doc->items());
  all_ok &= doc->read() == want;
  t = clock_type::now();
  auto encoded = doc->encode();
  double encode_s = seconds_since(t);
  t = clock_type::now();
  auto back = core::text::document::decode(encoded);
  double decode_s = seconds_since(t);
  bool round_trip = back && back->read() == want && back->encode() == encoded;
  all_ok &= round_trip;
  std::printf("encoded after collection: %zu bytes (%.2f bytes per visible character), encoded "
              "in %.1f ms, "
              "decoded in %.1f ms, round trip %s\n",
              encoded.size(), static_cast<double>(encoded.size()) / want.size(), encode_s * 1e3,
              decode_s * 1e3, round_trip ? "ok" : "WRONG");
  std::printf("peak RSS %.1f MB (the trace as parsed JSON, its operations and the documents)\n",
              peak_rss_mb());

  std::printf("\nreplicated: every edit a write at replica 1 of 3, shipped in encoded batches\n");
  std::printf("%-6s %14s %12s %12s %10s %8s\n", "round", "edits/s", "wire B/char", "rest B/char",
              "records", "ok");
  for (int r = 1; r <= rounds; ++r) {
    auto f = replicate(patches, trace.end_content);
    all_ok &= f.ok;
    std::printf("%-6d %14.0f %12.1f %12.1f %10llu %8s\n", r, edits.size() / f.seconds,
                static_cast<double>(f.wire_bytes) / want.size(),
                static_cast<double>(f.rest_bytes) / want.size(),
                static_cast<unsigned long long>(f.records), f.ok ? "yes" : "NO");
    if (r == rounds)
      std::printf("wire %.2f MB, at rest %.2f MB (the snapshot record and the operation "
                  "records it does not cover, before RocksDB's compression), log entries kept "
                  "after compaction %llu\n",
                  f.wire_bytes / 1e6, f.rest_bytes / 1e6,
                  static_cast<unsigned long long>(f.log_kept));
  }
  std::printf("peak RSS %.1f MB\n", peak_rss_mb());
  return all_ok ? 0 : 1;
}
