// Shared counters and dicts, one suite over both pool kinds: the host
// creates them on the pool, the testing plugin's shared_* tasks use them
// through their context, and both must see the same state.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "troupe/errors.hpp"
#include "troupe/shared.hpp"
#include "unit/executor/executor_kinds.hpp"

namespace {

using ::testing::HasSubstr;
using troupe::Future;
using troupe::SharedStateError;
using troupe::Value;
using troupe::test::PoolSpec;

template <class Kind>
class SharedState : public ::testing::Test {
 protected:
  static std::unique_ptr<troupe::Executor> make(std::size_t workers = 1) {
    PoolSpec spec;
    spec.max_workers = workers;
    return Kind::make(spec);
  }
};

TYPED_TEST_SUITE(SharedState, troupe::test::Kinds, troupe::test::KindNames);

// What a future failed with (its message), or "" when it did not fail.
std::string error_of(Future<Value> f) {
  try {
    f.get();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TYPED_TEST(SharedState, CounterAddsFromEveryWorkerAreExact) {
  auto pool = this->make(4);
  const auto hits = pool->counter("hits");
  std::vector<Future<Value>> runs;
  for (int w = 0; w < 4; ++w) {
    runs.push_back(pool->call("testing.shared_add", "hits", 100000));
  }
  for (auto& f : runs) {
    f.get();
  }
  EXPECT_EQ(hits.load(), 400000);
  EXPECT_EQ(pool->call("testing.shared_load", "hits").get(), 400000);
}

TYPED_TEST(SharedState, DictUpdatesFromEveryWorkerAreExact) {
  auto pool = this->make(4);
  const auto tally = pool->dict("tally");
  std::vector<Future<Value>> runs;
  for (int w = 0; w < 4; ++w) {
    runs.push_back(pool->call("testing.shared_increment", "tally", "seen", 25000));
    runs.push_back(pool->call("testing.shared_increment", "tally", "other" + std::to_string(w), 100));
  }
  for (auto& f : runs) {
    f.get();
  }
  EXPECT_EQ(tally.get("seen"), Value(100000));
  for (int w = 0; w < 4; ++w) {
    EXPECT_EQ(tally.get("other" + std::to_string(w)), Value(100));
  }
}

TYPED_TEST(SharedState, WhatTheHostSetsATaskReadsAndTheOtherWayRound) {
  auto pool = this->make();
  const auto cache = pool->dict("cache");
  cache.set("from-host", Value{{"a", 1}});
  EXPECT_EQ(pool->call("testing.shared_get", "cache", "from-host").get(), (Value{{"a", 1}}));
  pool->call("testing.shared_set", "cache", "from-task", "hello").get();
  EXPECT_EQ(cache.get("from-task"), Value("hello"));
  EXPECT_EQ(pool->call("testing.shared_get", "cache", "missing").get(), (Value{{"absent", true}}));
  EXPECT_EQ(cache.get("missing"), std::nullopt);
}

TYPED_TEST(SharedState, EveryValueKindRoundTripsWithItsKind) {
  auto pool = this->make();
  const auto kinds = pool->dict("kinds");
  troupe::Binary tagged({1, 2, 255});
  tagged.set_subtype(7);
  const std::vector<Value> values = {
      nullptr,
      true,
      false,
      Value(std::int64_t{5}),
      Value(std::int64_t{-7}),
      Value(std::numeric_limits<std::int64_t>::min()),
      Value(std::uint64_t{5}),
      Value(std::numeric_limits<std::uint64_t>::max()),
      2.5,
      "text with \0 inside",
      std::string(""),
      troupe::binary({0, 1, 2}),
      Value::binary(std::move(tagged)),
      Value::array(),
      Value::object(),
      Value{{"nested", {1, "two", {{"three", nullptr}}}}, {"u", std::uint64_t{3}}},
  };
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::string key = "v" + std::to_string(i);
    kinds.set(key, values[i]);
    const auto back = kinds.get(key);
    ASSERT_TRUE(back.has_value()) << key;
    EXPECT_EQ(*back, values[i]) << key;
    EXPECT_EQ(back->type(), values[i].type()) << key;
    const Value from_task = pool->call("testing.shared_get", "kinds", key).get();
    EXPECT_EQ(from_task, values[i]) << key;
    EXPECT_EQ(from_task.type(), values[i].type()) << key;
  }
  const Value integer = pool->call("testing.shared_get", "kinds", "v3").get();
  EXPECT_TRUE(integer.is_number_integer() && !integer.is_number_unsigned());
}

TYPED_TEST(SharedState, DictTakesTenTimesItsCapacityInUpdates) {
  auto pool = this->make();
  constexpr std::size_t capacity = 16 << 10;
  const auto ring = pool->dict("ring", {.capacity = capacity});
  std::size_t written = 0;
  for (int i = 0; written < 10 * capacity; ++i) {
    const std::string value(static_cast<std::size_t>(40 + (i * 37) % 300), 'x');
    ring.set("key" + std::to_string(i % 20), value);
    written += value.size();
    if (i % 7 == 0) {
      ring.erase("key" + std::to_string((i + 3) % 20));
    }
  }
  // A task's updates go through the same heap.
  pool->call("testing.shared_increment", "ring", "count", 2000).get();
  EXPECT_EQ(ring.get("count"), Value(2000));
  EXPECT_GE(ring.snapshot().size(), 2u);
}

TYPED_TEST(SharedState, AFullDictNamesItsCapacity) {
  auto pool = this->make();
  const auto small = pool->dict("small", {.capacity = 1024});
  try {
    small.set("big", std::string(2000, 'x'));
    FAIL() << "a 2000-byte value fit a 1024-byte dict";
  } catch (const SharedStateError& e) {
    EXPECT_THAT(e.what(), HasSubstr("shared dict 'small' is full"));
    EXPECT_THAT(e.what(), HasSubstr("capacity of 1024 bytes"));
  }
  // Filling it up entry by entry ends the same way, from a task too.
  std::string error;
  for (int i = 0; i < 100 && error.empty(); ++i) {
    error = error_of(pool->call("testing.shared_set", "small", "k" + std::to_string(i), std::string(100, 'y')));
  }
  EXPECT_THAT(error, HasSubstr("shared dict 'small' is full"));
  EXPECT_THAT(error, HasSubstr("capacity of 1024 bytes"));
  // What was stored is intact; erasing makes room again.
  EXPECT_EQ(small.get("k0"), Value(std::string(100, 'y')));
  EXPECT_TRUE(small.erase("k0"));
  EXPECT_FALSE(small.erase("k0"));
  EXPECT_EQ(error_of(pool->call("testing.shared_set", "small", "again", std::string(100, 'z'))), "");
}

TYPED_TEST(SharedState, AnUnknownNameFromATaskIsAClearError) {
  auto pool = this->make();
  pool->counter("hits");
  EXPECT_THAT(error_of(pool->call("testing.shared_add", "nope", 1)),
              HasSubstr("no shared counter 'nope' on this pool"));
  EXPECT_THAT(error_of(pool->call("testing.shared_get", "hits", "k")), HasSubstr("no shared dict 'hits' on this pool"));
}

TYPED_TEST(SharedState, ObjectsCreatedAfterWorkersStartedReachThem) {
  auto pool = this->make(2);
  pool->counter("early");
  // Both workers run before the objects below exist: they can only get them
  // while running (over the channel, on a process pool).
  pool->spawn_workers(2);
  std::vector<Future<Value>> warm;
  for (int i = 0; i < 4; ++i) {
    warm.push_back(pool->call("testing.shared_add", "early", 1));
  }
  for (auto& f : warm) {
    f.get();
  }
  const auto late = pool->counter("late");
  const auto later = pool->dict("later");
  std::vector<Future<Value>> runs;
  for (int i = 0; i < 8; ++i) {
    runs.push_back(pool->call("testing.shared_add", "late", 10));
    runs.push_back(pool->call("testing.shared_increment", "later", "n", 1));
  }
  for (auto& f : runs) {
    f.get();
  }
  EXPECT_EQ(late.load(), 80);
  EXPECT_EQ(later.get("n"), Value(8));
}

TYPED_TEST(SharedState, SnapshotAndSharedValuesSeeEveryEntry) {
  auto pool = this->make();
  const auto d = pool->dict("d");
  pool->counter("c").add(3);
  d.set("a", 1);
  d.set("b", Value{{"x", true}});
  d.set("a", 2);
  const auto snap = d.snapshot();
  EXPECT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap.at("a"), Value(2));
  EXPECT_EQ(pool->call("testing.shared_snapshot", "d").get(), (Value{{"a", 2}, {"b", {{"x", true}}}}));
  EXPECT_EQ(pool->shared_values(),
            (Value{{"counters", {{"c", 3}}}, {"dicts", {{"d", {{"a", 2}, {"b", {{"x", true}}}}}}}}));
}

TYPED_TEST(SharedState, NamesAndCapacitiesAreChecked) {
  auto pool = this->make();
  pool->counter("x");
  pool->dict("y", {.capacity = 4096});
  EXPECT_THROW(pool->dict("x"), troupe::UsageError);
  EXPECT_THROW(pool->counter("y"), troupe::UsageError);
  EXPECT_THROW(pool->dict("y", {.capacity = 8192}), troupe::UsageError);
  EXPECT_THROW(pool->counter(""), troupe::ArgumentError);
  EXPECT_THROW(pool->counter(std::string(101, 'n')), troupe::ArgumentError);
  EXPECT_THROW(pool->dict("z", {.capacity = 0}), troupe::ArgumentError);
  // Asking again gives the same object.
  pool->counter("x").add(2);
  EXPECT_EQ(pool->counter("x").load(), 2);
}

TYPED_TEST(SharedState, WhatAnUpdateThrowsChangesNothing) {
  auto pool = this->make();
  const auto d = pool->dict("d");
  d.set("k", 1);
  EXPECT_THROW(d.update("k", [](std::optional<Value>) -> std::optional<Value> { throw std::runtime_error("no"); }),
               std::runtime_error);
  EXPECT_EQ(d.get("k"), Value(1));
  d.update("k", [](std::optional<Value>) -> std::optional<Value> { return std::nullopt; });
  EXPECT_EQ(d.get("k"), std::nullopt);
}

}  // namespace
