// Topology graphs: builders, the edge-list format and its errors, validation that names
// the unreachable nodes, and spanning trees that reach every node exactly once.

#include "core/analysis.hpp"
#include "core/router.hpp"

#include <map>
#include <optional>

#include <catch2/catch.hpp>

#include <fstream>

using namespace mlr::core;

namespace {

// Every tree must reach each node exactly once: N-1 edges, all of them graph edges.
void check_trees(const graph& g) {
  auto trees = spanning_trees(g);
  for (node_index o = 0; o < g.size(); ++o) {
    std::vector<int> parents(g.size(), 0);
    size_t edges = 0;
    for (node_index x = 0; x < g.size(); ++x)
      for (auto child : trees[o][x]) {
        CHECK(g.has_edge(x, child));
        ++parents[child];
        ++edges;
      }
    CHECK(edges == g.size() - 1);
    for (node_index x = 0; x < g.size(); ++x)
      CHECK(parents[x] == (x == o ? 0 : 1));
  }
}

} // namespace

TEST_CASE("ring, star and mesh have the expected edges and are strongly connected") {
  auto names = default_names(5);
  auto ring = make_ring(names);
  auto star = make_star(names, 2);
  auto mesh = make_mesh(names);
  CHECK(ring.edge_count() == 5);
  CHECK(ring.has_edge(4, 0));
  CHECK_FALSE(ring.has_edge(0, 4));
  CHECK(star.edge_count() == 8);
  CHECK(star.has_edge(2, 0));
  CHECK(star.has_edge(0, 2));
  CHECK_FALSE(star.has_edge(0, 1));
  CHECK(mesh.edge_count() == 20);
  for (auto* g : {&ring, &star, &mesh}) {
    CHECK(validate(*g));
    check_trees(*g);
  }
}

TEST_CASE("edge-list format: nodes line, arrows both ways, lists and comments") {
  auto g = parse_edge_list("# a small graph\n"
                           "nodes: x y z w\n"
                           "x -> y, z   # two edges\n"
                           "y <-> w\n"
                           "z -> w\n"
                           "w -> x\n");
  REQUIRE(g);
  CHECK(g->names() == std::vector<std::string>{"x", "y", "z", "w"});
  CHECK(g->edge_count() == 6);
  CHECK(g->has_edge(3, 1));
  CHECK(validate(*g));
  check_trees(*g);
}

TEST_CASE("edge-list format: each mistake is named with its line") {
  auto err = [](const std::string& text) {
    auto g = parse_edge_list(text);
    REQUIRE_FALSE(g);
    CHECK(g.err().code == mlr::errc::bad_topology);
    return g.err().message;
  };
  CHECK(err("a -> b\nb => a\n").find("line 2") != std::string::npos);
  CHECK(err("a -> a\n").find("to itself") != std::string::npos);
  CHECK(err("nodes: a b\na -> c\n").find("'c' is not in the 'nodes:' list") != std::string::npos);
  CHECK(err("a -> b\nnodes: a b\n").find("before any edge") != std::string::npos);
  CHECK(err("a b -> c\n").find("is not a node name") != std::string::npos);
  CHECK(err("# nothing\n").find("no nodes") != std::string::npos);
}

TEST_CASE("validation refuses a graph that is not strongly connected, naming the nodes") {
  auto g = parse_edge_list("a -> b\nb -> a\nb -> c\nd -> a\n");
  REQUIRE(g);
  auto ok = validate(*g);
  REQUIRE_FALSE(ok);
  auto& msg = ok.err().message;
  CHECK(msg.find("not strongly connected") != std::string::npos);
  CHECK(msg.find("cannot reach d") != std::string::npos);               // nothing reaches d
  CHECK(msg.find("writes from c cannot reach a") != std::string::npos); // c is a dead end
}

// The core reads no files: a topology named by a file comes through the reader it is given.
text_reader files(std::map<std::string, std::string> contents) {
  return [contents](const std::string& path) -> std::optional<std::string> {
    auto i = contents.find(path);
    return i == contents.end() ? std::nullopt : std::optional<std::string>(i->second);
  };
}

TEST_CASE("make_topology reads files through its reader and explains a missing one") {
  auto read = files({{"topology.txt", "p <-> q\nq <-> r\n"}});
  auto g = make_topology("topology.txt", {}, {}, read);
  REQUIRE(g);
  CHECK(g->size() == 3);
  auto missing = make_topology("no-such-file.txt", {}, {}, read);
  REQUIRE_FALSE(missing);
  CHECK(missing.err().message.find("neither ring, mesh, star nor star:HUB") != std::string::npos);
  CHECK_FALSE(make_topology("topology.txt", {})); // without a reader, only the three shapes
  auto star = make_topology("star", default_names(3), "n9");
  REQUIRE_FALSE(star);
  CHECK(star.err().message.find("hub 'n9'") != std::string::npos);
}

TEST_CASE("topology check: star names its hub, ring every node, mesh none") {
  auto star = analyze(*graph_from_spec("star:5"));
  CHECK(star.strongly_connected);
  CHECK(star.spof_nodes == std::vector<std::string>{"n0"});
  CHECK(star.spof_links.size() == 8); // every spoke hangs on its two links
  CHECK(star.diameter == 2);
  CHECK(star.messages_per_write == 4);

  auto ring = analyze(*graph_from_spec("ring:5"));
  CHECK(ring.spof_nodes == std::vector<std::string>{"n0", "n1", "n2", "n3", "n4"});
  CHECK(ring.spof_links.size() == 5);
  CHECK(ring.diameter == 4);
  CHECK(ring.messages_per_write == 4);
  for (auto f : ring.tree_fan_out)
    CHECK(f == Approx(0.8)); // forwards every write but the one it is the last hop for

  auto mesh = analyze(*graph_from_spec("mesh:5"));
  CHECK(mesh.spof_nodes.empty());
  CHECK(mesh.spof_links.empty());
  CHECK(mesh.diameter == 1);
  CHECK(mesh.messages_per_write == 4);
  CHECK(mesh.out_degree == std::vector<size_t>(5, 4));
}

TEST_CASE("topology check: a disconnected file is refused, naming the nodes") {
  auto g = graph_from_spec("disconnected.txt", files({{"disconnected.txt", "a <-> b\nc <-> d\n"}}));
  REQUIRE(g);
  auto r = analyze(*g);
  CHECK_FALSE(r.strongly_connected);
  CHECK(r.problem.find("cannot reach c, d") != std::string::npos);
  CHECK(to_text(*g, r).find("strongly connected: no") != std::string::npos);
  CHECK_FALSE(graph_from_spec("ring:0"));
}

TEST_CASE("one shape grammar: every keyword a node starts with is accepted by topology set and "
          "routes the same") {
  auto names = default_names(4);
  auto route = make_router(names, 0);
  for (std::string spec : {"ring", "mesh", "all-to-all", "star", "star:n2", " mesh\n"}) {
    INFO(spec);
    auto at_start = make_topology(spec, names);
    REQUIRE(at_start);
    auto changed = route(spec, nullptr);
    INFO((changed ? std::string() : changed.err().message));
    REQUIRE(changed);
    CHECK(changed->trees == spanning_trees(*at_start));
    auto s = parse_shape(spec);
    REQUIRE(s);
  }
  // star:HUB at start-up names its hub as a separate --hub does.
  auto by_name = make_topology("star:n2", names);
  auto by_flag = make_topology("star", names, "n2");
  REQUIRE(by_name);
  REQUIRE(by_flag);
  CHECK(by_name->edges() == by_flag->edges());
  CHECK(by_name->has_edge(2, 0));
  CHECK_FALSE(by_name->has_edge(0, 1));
  // Refused the same way at both ends.
  CHECK_FALSE(make_topology("star:n9", names));
  CHECK_FALSE(route("star:n9", nullptr));
  CHECK_FALSE(parse_shape("rings"));
  CHECK_FALSE(parse_shape("star:"));
  CHECK_FALSE(parse_shape("n0 -> n1"));
}
