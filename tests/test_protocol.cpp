// The actor protocol's types: what the leader and links send each other travels through
// CAF's serializer whole.

#include "actors/protocol.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

TEST_CASE("stats are declared once: every counter has its own name and a description, and "
          "all of them travel through CAF's serializer") {
  mlr::core::replica_stats in;
  std::set<std::string> names;
  uint64_t next = 1;
  mlr::core::for_each_stat(in, [&](const char* name, uint64_t& value, const char* doc) {
    names.insert(name);
    CHECK(std::string(doc).size() > 10);
    value = next++;
  });
  CHECK(names.size() == next - 1);
  CHECK(names.count("duplicates_dropped") == 1);
  std::vector<char> buf;
  caf::binary_serializer sink{static_cast<caf::execution_unit*>(nullptr), buf};
  REQUIRE_FALSE(sink(in));
  mlr::core::replica_stats out;
  caf::binary_deserializer source{static_cast<caf::execution_unit*>(nullptr), buf};
  REQUIRE_FALSE(source(out));
  std::vector<uint64_t> a, b;
  mlr::core::for_each_stat(in, [&](const char*, uint64_t v, const char*) { a.push_back(v); });
  mlr::core::for_each_stat(out, [&](const char*, uint64_t v, const char*) { b.push_back(v); });
  CHECK(a == b); // the hand-written inspect lost four counters
}
