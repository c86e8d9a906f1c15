// The conflict feed and the resolver swap between real mlr-node processes, through the mlr
// CLI: concurrent SETs during a partition become records at every node, kept under
// --data-dir across restarts; `mlr conflicts` lists them (--since, --json, --follow) and
// --replay asks the resolver each question again; `mlr resolver set` swaps the resolver of
// a running node, for the admin only.

#include "process_harness.hpp"
#include "process_partition.hpp"

#include <nlohmann/json.hpp>

#include <csignal>
#include <sstream>

using namespace mlr;
using namespace mlr::testing;
using namespace std::chrono_literals;

namespace {

std::pair<int, std::string> mlr_at(process_cluster& c, size_t i, std::vector<std::string> args) {
  args.insert(args.begin(), {MLR_CLI_BIN, "--node", c.client_address(i)});
  return run_command(args);
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty())
      out.push_back(l);
  return out;
}

void heal(process_cluster& c) {
  for (size_t i = 0; i < c.size(); ++i)
    restart(c, i);
  REQUIRE(c.wait_converged(30s));
}

} // namespace

TEST_CASE("processes mesh N=3: conflicts are recorded under --data-dir, listed, replayed to the "
          "same outcomes and followed, and the resolver is swapped from the CLI by the admin") {
  process_cluster c(3, "mesh", {}, "batch");
  INFO(c.logs());
  // Something every node holds first: a node cut off before it heard a peer with data would
  // wait to catch up (and refuse writes) rather than take them.
  REQUIRE(redis_cli(c, 0, "SET seed 1\\n") == "OK\n");
  REQUIRE(c.wait_converged());
  cut_off_n2(c);
  for (int k = 1; k <= 5; ++k) {
    auto key = "k" + std::to_string(k);
    REQUIRE(redis_cli(c, 0, "SET " + key + " left" + std::to_string(k) + "\\n") == "OK\n");
    REQUIRE(redis_cli(c, 2, "SET " + key + " right" + std::to_string(k) + "\\n") == "OK\n");
  }
  heal(c);

  // n1 received n2's versions while it held n0's: five conflicts, decided by lww.
  std::pair<int, std::string> feed;
  CHECK(eventually(
    [&] {
      feed = mlr_at(c, 1, {"conflicts"});
      return lines(feed.second).size() == 5;
    },
    10s));
  INFO("mlr conflicts at n1:\n" << feed.second);
  REQUIRE(feed.first == 0);
  auto records = lines(feed.second);
  REQUIRE(records.size() == 5);
  for (size_t r = 0; r < 5; ++r) {
    CHECK(records[r].rfind("#" + std::to_string(r + 1) + " 20", 0) == 0); // seq, then the time
    CHECK(records[r].find(" selected by lww:") != std::string::npos);
    CHECK(records[r].find("=\"left") != std::string::npos);
    CHECK(records[r].find("=\"right") != std::string::npos);
    CHECK(records[r].find("-> kept") != std::string::npos);
  }

  // Replayed through the resolver that decided, every outcome is the same; through another
  // one (multi keeps both versions) they differ, and mlr says so with exit status 1.
  auto same = mlr_at(c, 1, {"conflicts", "--replay"});
  INFO(same.second);
  CHECK(same.first == 0);
  CHECK(lines(same.second).size() == 6); // five records and the summary (stderr)
  CHECK(same.second.find("replayed 5 records: 5 same, 0 different, 0 not replayed") !=
        std::string::npos);
  auto other = mlr_at(c, 1, {"conflicts", "--replay", "--resolver", "multi"});
  CHECK(other.first == 1);
  CHECK(other.second.find("0 same, 5 different") != std::string::npos);

  auto since = mlr_at(c, 1, {"conflicts", "--since", "3"});
  REQUIRE(lines(since.second).size() == 2);
  CHECK(lines(since.second)[0].rfind("#4 ", 0) == 0);
  auto json = mlr_at(c, 1, {"conflicts", "--json", "--count", "1"});
  auto j = nlohmann::json::parse(json.second);
  CHECK(j["seq"] == 1);
  CHECK(j["outcome"] == "selected");
  CHECK(j["resolver"] == "lww");
  CHECK(j["versions"].size() == 2);
  CHECK(j["kept"].size() == 1);
  CHECK(j["at_ms"].get<uint64_t>() > 1700000000000); // a wall-clock time

  // The feed is kept under --data-dir: every node restarted reads it back.
  for (size_t i = 0; i < 3; ++i)
    restart(c, i);
  REQUIRE(c.wait_converged(30s));
  CHECK(mlr_at(c, 1, {"conflicts"}).second == feed.second);

  // Swapping the resolver needs the admin secret, and a resolver that exists.
  auto refused = mlr_at(c, 1, {"resolver", "set", "tags"});
  CHECK(refused.first == 1);
  CHECK(refused.second.find("resolver changes need the admin secret") != std::string::npos);
  auto unknown =
    mlr_at(c, 1, {"--admin-secret-file", c.admin_secret_file(), "resolver", "set", "nope"});
  CHECK(unknown.first == 1);
  CHECK(unknown.second.find("unknown resolver name of 4 bytes; use lww, multi, max or tags") !=
        std::string::npos);

  // A follower started now prints what comes after record 5, and nothing before.
  auto follow_out = c.dir() + "/follow.txt";
  auto follower = process::start({MLR_CLI_BIN, "--node", c.client_address(1), "conflicts",
                                  "--follow", "--since", "5", "--count", "1"},
                                 follow_out);
  for (size_t i = 0; i < 3; ++i) { // every member: each node resolves what it receives
    auto set =
      mlr_at(c, i, {"--admin-secret-file", c.admin_secret_file(), "resolver", "set", "tags"});
    INFO(set.second);
    CHECK(set.first == 0);
    CHECK(set.second.rfind("resolver tags", 0) == 0);
  }
  auto status = nlohmann::json::parse(mlr_at(c, 1, {"status", "--json"}).second);
  CHECK(status["resolver"] == "tags"); // status tells what runs now
  // Two clients replace the same version they read (a read-modify-write race): concurrent
  // versions at n1, which the swapped-in resolver merges.
  REQUIRE(mlr_at(c, 1, {"put", "labels", "base"}).first == 0);
  auto read = lines(mlr_at(c, 1, {"get", "labels"}).second);
  REQUIRE(read.size() == 2);
  auto token = read[1].substr(std::string("context: ").size());
  REQUIRE(mlr_at(c, 1, {"put", "labels", "red,base", "--context", token}).first == 0);
  REQUIRE(mlr_at(c, 1, {"put", "labels", "sale", "--context", token}).first == 0);
  CHECK(eventually([&] { return redis_cli(c, 1, "GET labels\\n") == "base,red,sale\n"; }, 10s));
  CHECK(follower.wait(10s) == 0);
  auto followed = lines(read_file(follow_out));
  INFO("mlr conflicts --follow:\n" << read_file(follow_out));
  REQUIRE(followed.size() == 1);
  CHECK(followed[0].rfind("#6 ", 0) == 0);
  CHECK(followed[0].find("\"labels\" merged by tags:") != std::string::npos);
  CHECK(followed[0].find("-> \"base,red,sale\"") != std::string::npos);
  auto replayed = mlr_at(c, 1, {"conflicts", "--since", "5", "--replay"});
  CHECK(replayed.first == 0);
  CHECK(replayed.second.find("1 same, 0 different") != std::string::npos);
}
