// A pool's `shared:` key: counters and dicts declared in the file, created
// by the Engine with the pool, and refused with their place when malformed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/paths.hpp"
#include "troupe/config.hpp"
#include "troupe/engine.hpp"
#include "troupe/executor.hpp"

namespace {

using ::testing::HasSubstr;

const std::string kHead =
    "version: 1\nplugins:\n  - path: " + troupe::test::plugin_path("testing").string() + "\npools:\n";

std::vector<troupe::ConfigProblem> problems_of(const std::string& yaml) {
  try {
    troupe::config::load_string(yaml, "/cfg/troupe.yaml");
  } catch (const troupe::ConfigError& e) {
    return e.problems();
  }
  return {};
}

TEST(SharedKey, DeclaresCountersAndDictsWithCapacity) {
  const auto spec =
      troupe::config::load_string(kHead +
                                      "  cpu:\n    kind: thread\n    shared:\n"
                                      "      counters: [hits, misses]\n"
                                      "      dicts:\n        cache: {capacity: 2MiB}\n        small: {}\n",
                                  "/cfg/troupe.yaml");
  ASSERT_EQ(spec.pools.size(), 1u);
  EXPECT_EQ(spec.pools[0].shared.counters, (std::vector<std::string>{"hits", "misses"}));
  EXPECT_EQ(spec.pools[0].shared.dicts.at("cache").capacity, 2u << 20);
  EXPECT_EQ(spec.pools[0].shared.dicts.at("small").capacity, troupe::DictOptions{}.capacity);
  // The resolved configuration keeps them.
  const auto again = troupe::config::load_string(troupe::config::to_yaml(spec), "/cfg/resolved.yaml");
  EXPECT_EQ(again.pools[0].shared.counters, spec.pools[0].shared.counters);
  EXPECT_EQ(again.pools[0].shared.dicts.at("cache").capacity, 2u << 20);
}

TEST(SharedKey, TheEngineCreatesThemWithThePoolAndTasksReachThem) {
  troupe::Engine engine(
      troupe::config::load_string(kHead + "  cpu:\n    kind: process\n    workers: 1\n    worker_executable: " +
                                      troupe::test::binary_path("troupe-worker").string() +
                                      "\n    shared: {counters: [hits], dicts: {cache: {capacity: 64KiB}}}\n",
                                  "/cfg/troupe.yaml"));
  const auto pool = engine.pool("cpu");
  pool->call("testing.shared_add", "hits", 5).get();
  pool->call("testing.shared_set", "cache", "k", "v").get();
  EXPECT_EQ(pool->shared_values(), (troupe::Value{{"counters", {{"hits", 5}}}, {"dicts", {{"cache", {{"k", "v"}}}}}}));
}

TEST(SharedKey, MalformedDeclarationsAreRefusedWithTheirPlace) {
  const auto bad_list = problems_of(kHead + "  cpu:\n    kind: thread\n    shared:\n      counters: hits\n");
  ASSERT_FALSE(bad_list.empty());
  EXPECT_EQ(bad_list[0].path, "pools.cpu.shared.counters");
  EXPECT_THAT(bad_list[0].message, HasSubstr("a list of counter names"));

  const auto zero = problems_of(kHead + "  cpu:\n    kind: thread\n    shared:\n      dicts: {cache: {capacity: 0}}\n");
  ASSERT_FALSE(zero.empty());
  EXPECT_EQ(zero[0].path, "pools.cpu.shared.dicts.cache.capacity");
  EXPECT_EQ(zero[0].line, 8);  // the dicts line, after the 4 head lines

  const auto unknown = problems_of(kHead + "  cpu:\n    kind: thread\n    shared:\n      counter: [hits]\n");
  ASSERT_FALSE(unknown.empty());
  EXPECT_THAT(unknown[0].message, HasSubstr("did you mean 'counters'"));

  const auto both = problems_of(kHead + "  cpu:\n    kind: thread\n    shared: {counters: [x], dicts: {x: {}}}\n");
  ASSERT_FALSE(both.empty());
  EXPECT_THAT(both[0].message, HasSubstr("'x' is declared as both a counter and a dict"));
}

}  // namespace
