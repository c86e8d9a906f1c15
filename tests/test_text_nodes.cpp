// Text through whole nodes (node/node.hpp): three nodes in this process, each with its own
// actor system, joined over loopback TCP. The automerge-paper trace is typed at one node
// through the embedding API, edit by edit; every node ends with exactly its endContent, and
// an editor at another node that keeps its copy only from the edits its subscription
// delivers (by index) ends with it too.

#include "../bench/editing_traces.hpp"
#include "core/text.hpp"
#include "node/node.hpp"
#include "process_harness.hpp"
#include "trace_share.hpp"

#include <mutex>

#include <catch2/catch.hpp>

using namespace mlr;
using namespace std::chrono_literals;

TEST_CASE("text nodes: automerge-paper typed at one node of a 3-node cluster gives endContent "
          "at every node and at an editor that applies its subscription's edits") {
  auto trace = testing::sanitized_share(testing::traces::load("automerge-paper"), 20);
  std::vector<node::member> members;
  for (auto id : {"a", "b", "c"})
    members.push_back({id, "127.0.0.1:" + std::to_string(testing::free_port())});
  std::vector<std::unique_ptr<node::node>> nodes;
  for (auto& m : members) {
    node::node_options o;
    o.cluster = "text";
    o.id = m.id;
    o.members = members;
    o.secret = "text-nodes-secret";
    o.log = [](const std::string&, const std::string&) {};
    o.max_watch_backlog = 10'000'000; // the editor must not be dropped on a loaded machine
    auto n = node::node::start(o);
    REQUIRE(n);
    nodes.push_back(std::move(*n));
  }
  std::mutex m;
  std::u32string copy;
  uint64_t edits_seen = 0;
  std::string broken;
  auto sub = nodes[1]->watch("doc", [&](const node::change& c) {
    std::lock_guard<std::mutex> guard(m);
    for (auto& e : c.edits) {
      ++edits_seen;
      if (e.insert && e.index <= copy.size())
        copy.insert(e.index, *core::text::from_utf8(e.text));
      else if (!e.insert && e.index + e.count <= copy.size())
        copy.erase(e.index, e.count);
      else if (broken.empty())
        broken = c.event + " at " + std::to_string(e.index) + " past the copy's end";
    }
  });
  REQUIRE(sub);

  size_t n = 0;
  uint64_t length = 0;
  for (auto& tx : trace.txns)
    for (auto& p : tx.patches) {
      ++n;
      if (p.deleted > 0) {
        auto r = nodes[0]->text_delete("doc", p.position, p.deleted);
        REQUIRE(r);
        length = *r;
      }
      if (!p.inserted.empty()) {
        auto r = nodes[0]->text_insert("doc", p.position, p.inserted);
        REQUIRE(r);
        length = *r;
      }
    }
  CHECK(n >= 259778 / 20);
  CHECK(length == core::text::from_utf8(trace.end_content)->size());
  for (size_t i = 0; i < 3; ++i) {
    INFO("node " << members[i].id);
    CHECK(testing::eventually(
      [&] {
        auto t = nodes[i]->text_read("doc");
        return t && t->text == trace.end_content;
      },
      180s));
  }
  CHECK(testing::eventually(
    [&] {
      std::lock_guard<std::mutex> guard(m);
      return core::text::to_utf8(copy) == trace.end_content;
    },
    60s));
  std::lock_guard<std::mutex> guard(m);
  CHECK(broken.empty());
  CHECK(edits_seen > n / 2);
}
