// Text keys between real processes with real redis-cli clients: three mlr-node processes
// speak TEXT.INSERT, TEXT.DEL, TEXT.GET and TEXT.LEN; text typed at one node reads the same
// at the others, and edits made on both sides of a partition merge after the heal, keeping
// what each side meant. Bad input gets a clear error and the node goes on serving.

#include "process_harness.hpp"
#include "process_partition.hpp"

using namespace mlr;
using namespace mlr::testing;
using namespace std::chrono_literals;

TEST_CASE("processes mesh N=3: text typed at one node reads the same at every node, and edits "
          "on both sides of a partition merge (redis-cli)") {
  process_cluster c(3, "mesh", {}, "batch");
  INFO(c.logs());
  CHECK(redis_cli(c, 0, "TEXT.INSERT doc 0 \"hello world\"\\nTEXT.INSERT doc 5 \",\"\\n") ==
        "11\n12\n");
  REQUIRE(c.wait_converged());
  for (size_t i = 0; i < 3; ++i) {
    INFO("node n" << i);
    CHECK(redis_cli(c, i, "TEXT.GET doc\\nTEXT.LEN doc\\nTYPE doc\\n") ==
          "hello, world\n12\ntext\n");
    CHECK(redis_cli(c, i, "TEXT.GET doc 0 4\\nTEXT.GET doc -5 -1\\n") == "hello\nworld\n");
    // GETRANGE's clamping: an end before the start counts as 0, a start past the end gives "".
    CHECK(redis_cli(c, i, "TEXT.GET doc 0 -100\\nTEXT.GET doc -100 2\\nTEXT.GET doc 20 30\\n") ==
          "h\nhel\n\n");
  }
  // Code points, not bytes.
  CHECK(
    redis_cli(c, 1, "TEXT.INSERT uni 0 \"h\xc3\xa9llo\"\\nTEXT.DEL uni 1 1\\nTEXT.GET uni\\n") ==
    "5\n4\nhllo\n");

  cut_off_n2(c);
  CHECK(redis_cli(c, 0, "TEXT.INSERT doc 7 \"big \"\\n") == "16\n"); // hello, big world
  CHECK(redis_cli(c, 2, "TEXT.DEL doc 0 5\\nTEXT.INSERT doc 0 HELLO\\n") ==
        "7\n12\n");                                              // HELLO, world
  CHECK(redis_cli(c, 2, "TEXT.GET doc\\n") == "HELLO, world\n"); // the cut holds
  for (size_t i = 0; i < 3; ++i)
    restart(c, i);
  REQUIRE(c.wait_converged(30s));
  for (size_t i = 0; i < 3; ++i) {
    INFO("node n" << i);
    CHECK(redis_cli(c, i, "TEXT.GET doc\\n") == "HELLO, big world\n");
  }

  // Careless input: a clear error each, and the node goes on serving.
  auto wrong = "WRONGTYPE Operation against a key holding the wrong kind of value\n\n";
  CHECK(redis_cli(c, 0, "SET s x\\nTEXT.INSERT s 0 a\\n") == std::string("OK\n") + wrong);
  CHECK(redis_cli(c, 0, "TEXT.GET s\\n") == wrong);
  CHECK(redis_cli(c, 0, "TEXT.INSERT doc -1 a\\n") ==
        "ERR index is not a non-negative integer\n\n");
  CHECK(redis_cli(c, 0, "TEXT.DEL doc 0 x\\n") == "ERR count is not a non-negative integer\n\n");
  CHECK(redis_cli(c, 0, "TEXT.INSERT doc 0 \"\\\\xff\"\\n") ==
        "ERR the text to insert is not valid UTF-8; nothing was written\n\n");
  CHECK(redis_cli(c, 0, "TEXT.DEL doc 100 5\\nTEXT.LEN missing\\n") == "16\n0\n");
  // A delete of the key removes it; text typed there later starts afresh.
  CHECK(redis_cli(c, 1, "DEL doc\\nTEXT.LEN doc\\nTEXT.INSERT doc 0 new\\n") == "1\n0\n3\n");
  REQUIRE(c.wait_converged());
  for (size_t i = 0; i < 3; ++i)
    CHECK(redis_cli(c, i, "TEXT.GET doc\\n") == "new\n");
}

TEST_CASE("processes mesh N=2: the mlr CLI edits text, an edit at a read's context counts in the "
          "document as read, and watch-keys shows remote edits by index") {
  process_cluster c(2, "mesh");
  INFO(c.logs());
  auto mlr = [&](size_t i, std::vector<std::string> args) {
    args.insert(args.begin(), {MLR_CLI_BIN, "--node", c.client_address(i)});
    return run_command(args);
  };
  auto doc_at = [&](size_t i) { // the document alone (the context goes to stderr)
    return run_command({"/bin/sh", "-c",
                        std::string(MLR_CLI_BIN) + " --node " + c.client_address(i) +
                          " text get doc 2>/dev/null"})
      .second;
  };
  auto out = c.dir() + "/watch-keys.txt";
  auto watcher =
    process::start({MLR_CLI_BIN, "--node", c.client_address(1), "watch-keys", "doc"}, out);
  REQUIRE(eventually(
    [&] {
      mlr(0, {"put", "doc-probe", "1"});
      return read_file(out).find("set doc-probe") != std::string::npos;
    },
    10s));
  CHECK(mlr(0, {"text", "insert", "doc", "0", "hello world"}) ==
        std::make_pair(0, std::string("11\n")));
  CHECK(mlr(0, {"text", "delete", "doc", "0", "1"}) == std::make_pair(0, std::string("10\n")));
  CHECK(eventually([&] { return doc_at(1) == "ello world\n"; }, 10s));
  CHECK(eventually(
    [&] {
      auto t = read_file(out);
      return t.find("text.insert doc +0 'hello world' (text, ") != std::string::npos &&
             t.find("text.del doc -0 1 (text, ") != std::string::npos;
    },
    10s));
  watcher.signal(SIGTERM);
  watcher.wait(5s);

  // An editor reads (with the context on stderr), another edit lands, and the editor's
  // index still means the place it saw.
  auto read = run_command({"/bin/sh", "-c",
                           std::string(MLR_CLI_BIN) + " --node " + c.client_address(0) +
                             " text get doc 2>&1 >/dev/null"});
  auto at = read.second.find("context: ");
  REQUIRE(at != std::string::npos);
  auto token = read.second.substr(at + 9, read.second.find('\n', at) - at - 9);
  CHECK(mlr(1, {"text", "insert", "doc", "0", "H"}).first == 0); // Hello world
  CHECK(eventually([&] { return doc_at(0) == "Hello world\n"; }, 10s));
  // "ello world" as read: after "ello" (index 4) goes ","
  CHECK(mlr(0, {"text", "insert", "doc", "4", ",", "--context", token}).first == 0);
  CHECK(doc_at(0) == "Hello, world\n");

  // Careless use: a clear message and the usage exit status.
  CHECK(mlr(0, {"text", "insert", "doc", "x", "a"}).first == 2);
  CHECK(mlr(0, {"text", "frob", "doc", "1", "a"}).first == 2);
  CHECK(mlr(0, {"text", "get", "doc-probe"}).first == 1); // a string
  CHECK(mlr(0, {"text", "get", "nothing"}).first == 1);
}
