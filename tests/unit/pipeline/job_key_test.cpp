// KeySet (engine/src/pipeline/job_key.cpp): duplicates found with their
// first position, in bounded memory per key.
#include "pipeline/job_key.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace {

using troupe::Value;
using troupe::detail::pipeline::describe;
using troupe::detail::pipeline::JobKey;
using troupe::detail::pipeline::key_from_json;
using troupe::detail::pipeline::key_to_json;
using troupe::detail::pipeline::KeySet;

constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

TEST(JobKey, JsonRoundTripsIntegersAndStrings) {
  EXPECT_EQ(key_to_json(JobKey(std::int64_t{42})), Value(42));
  EXPECT_EQ(key_to_json(JobKey(std::string("a/b.txt"))), Value("a/b.txt"));
  EXPECT_EQ(key_from_json(Value(-7)), JobKey(std::int64_t{-7}));
  EXPECT_EQ(key_from_json(Value("x")), JobKey(std::string("x")));
  EXPECT_EQ(key_from_json(Value(std::uint64_t{9})), JobKey(std::int64_t{9}));
}

TEST(JobKey, JsonRefusesWhatIsNeitherIntegerNorString) {
  EXPECT_FALSE(key_from_json(Value(1.5)));
  EXPECT_FALSE(key_from_json(Value(true)));
  EXPECT_FALSE(key_from_json(Value(nullptr)));
  EXPECT_FALSE(key_from_json(Value::array()));
  EXPECT_FALSE(key_from_json(Value::object()));
  EXPECT_FALSE(key_from_json(Value(std::numeric_limits<std::uint64_t>::max())));
}

TEST(JobKey, DescribeWritesJson) {
  EXPECT_EQ(describe(JobKey(std::int64_t{42})), "42");
  EXPECT_EQ(describe(JobKey(std::string("a\"b"))), "\"a\\\"b\"");
  EXPECT_EQ(describe(JobKey(std::string("\xff"))), "\"\xEF\xBF\xBD\"");
}

TEST(KeySet, InOrderIntegerKeysStayTiny) {
  KeySet keys;
  constexpr std::int64_t kCount = 20'000'000;
  for (std::int64_t k = 0; k < kCount; ++k) {
    ASSERT_FALSE(keys.insert(JobKey(k), static_cast<std::uint64_t>(k)));
  }
  EXPECT_EQ(keys.size(), static_cast<std::uint64_t>(kCount));
  EXPECT_LT(keys.memory_bytes(), 4096U);
  EXPECT_EQ(keys.insert(JobKey(std::int64_t{12'345'678}), kCount), 12'345'678U);
  EXPECT_TRUE(keys.contains(JobKey(kCount - 1)));
  EXPECT_FALSE(keys.contains(JobKey(kCount)));
  EXPECT_FALSE(keys.contains(JobKey(std::int64_t{-1})));
}

TEST(KeySet, LineNumberKeysWithGapsStayOneRunPerGap) {
  // jsonl keys: line numbers, 1-based, blank lines skipped; positions 0-based.
  KeySet keys;
  std::uint64_t position = 0;
  for (std::int64_t line = 1; line <= 1'000'000; ++line) {
    if (line % 100'000 == 0) {
      continue;  // a blank line
    }
    ASSERT_FALSE(keys.insert(JobKey(line), position++));
  }
  EXPECT_LT(keys.memory_bytes(), 4096U);
  EXPECT_EQ(keys.insert(JobKey(std::int64_t{150'001}), 0), 150'000U - 1);
  EXPECT_EQ(keys.insert(JobKey(std::int64_t{1}), 0), 0U);
  EXPECT_FALSE(keys.contains(JobKey(std::int64_t{100'000})));
}

TEST(KeySet, OutOfOrderIntegerKeysKeepTheirPositions) {
  std::vector<std::int64_t> order(200'000);
  std::iota(order.begin(), order.end(), -100'000);
  std::mt19937_64 random(7);
  std::shuffle(order.begin(), order.end(), random);
  KeySet keys;
  for (std::size_t i = 0; i < order.size(); ++i) {
    ASSERT_FALSE(keys.insert(JobKey(order[i]), i)) << order[i];
  }
  EXPECT_EQ(keys.size(), order.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    ASSERT_EQ(keys.insert(JobKey(order[i]), 999'999'999), i) << order[i];
  }
  EXPECT_EQ(keys.size(), order.size());
  // At most one slot's worth (16 bytes at 80% load, grown by half) a key.
  EXPECT_LT(keys.memory_bytes(), order.size() * 32);
}

TEST(KeySet, RunsJoinFromBothSides) {
  KeySet keys;
  // key k at position k, inserted as 0, 2, 1, 4, 3: every key ends in one run.
  for (std::int64_t k : {0, 2, 1, 4, 3, 6, 5, 8, 7}) {
    ASSERT_FALSE(keys.insert(JobKey(k), static_cast<std::uint64_t>(k)));
  }
  for (std::int64_t k = 0; k <= 8; ++k) {
    EXPECT_EQ(keys.insert(JobKey(k), 100), static_cast<std::uint64_t>(k));
  }
  EXPECT_FALSE(keys.contains(JobKey(std::int64_t{9})));
}

TEST(KeySet, IntegerLimitsAreKeysLikeAnyOther) {
  KeySet keys;
  EXPECT_FALSE(keys.insert(JobKey(kMax), 0));
  EXPECT_FALSE(keys.insert(JobKey(kMax - 1), 1));
  EXPECT_FALSE(keys.insert(JobKey(kMin), 2));
  EXPECT_FALSE(keys.insert(JobKey(kMin + 1), 3));
  EXPECT_FALSE(keys.insert(JobKey(std::int64_t{-1}), 4));
  EXPECT_FALSE(keys.insert(JobKey(std::int64_t{0}), 5));
  EXPECT_EQ(keys.insert(JobKey(kMax), 9), 0U);
  EXPECT_EQ(keys.insert(JobKey(kMax - 1), 9), 1U);
  EXPECT_EQ(keys.insert(JobKey(kMin), 9), 2U);
  EXPECT_EQ(keys.insert(JobKey(kMin + 1), 9), 3U);
  EXPECT_EQ(keys.insert(JobKey(std::int64_t{-1}), 9), 4U);
  EXPECT_EQ(keys.insert(JobKey(std::int64_t{0}), 9), 5U);
  EXPECT_EQ(keys.size(), 6U);
}

TEST(KeySet, StringKeysCostAtMostSixteenBytesEach) {
  KeySet keys;
  constexpr std::uint64_t kCount = 1'000'000;
  for (std::uint64_t i = 0; i < kCount; ++i) {
    ASSERT_FALSE(keys.insert(JobKey("data/part-" + std::to_string(i) + ".txt"), i));
    // Checked as the table fills and grows, not only at one size.
    if (i % 99'991 == 99'990) {
      EXPECT_LE(keys.memory_bytes(), 4096 + (i + 1) * 16) << "after " << i + 1 << " keys";
    }
  }
  EXPECT_EQ(keys.size(), kCount);
  EXPECT_LE(keys.memory_bytes(), kCount * 16);
  EXPECT_EQ(keys.insert(JobKey(std::string("data/part-777.txt")), kCount), 777U);
  EXPECT_TRUE(keys.contains(JobKey(std::string("data/part-0.txt"))));
  EXPECT_FALSE(keys.contains(JobKey(std::string("data/part-1000000.txt"))));
  EXPECT_EQ(keys.size(), kCount);
}

TEST(KeySet, PositionsPastFourBillionAreKeptWhole) {
  KeySet keys;
  constexpr std::uint64_t kFar = 5'000'000'000ULL;
  ASSERT_FALSE(keys.insert(JobKey(std::string("far")), kFar));
  ASSERT_FALSE(keys.insert(JobKey(std::string("near")), 7));
  ASSERT_FALSE(keys.insert(JobKey(std::int64_t{-40}), kFar + 1));  // a loose integer
  EXPECT_EQ(keys.insert(JobKey(std::string("far")), kFar + 9), kFar);
  EXPECT_EQ(keys.insert(JobKey(std::string("near")), kFar + 9), 7U);
  EXPECT_EQ(keys.insert(JobKey(std::int64_t{-40}), kFar + 9), kFar + 1);
  EXPECT_EQ(keys.size(), 3U);
}

TEST(KeySet, StringAndIntegerKeysAreDistinct) {
  KeySet keys;
  EXPECT_FALSE(keys.insert(JobKey(std::int64_t{1}), 0));
  EXPECT_FALSE(keys.insert(JobKey(std::string("1")), 1));
  EXPECT_EQ(keys.insert(JobKey(std::string("1")), 2), 1U);
  EXPECT_EQ(keys.insert(JobKey(std::int64_t{1}), 2), 0U);
  EXPECT_EQ(keys.size(), 2U);
}

TEST(KeySet, EmptyStringIsAKey) {
  KeySet keys;
  EXPECT_FALSE(keys.contains(JobKey(std::string())));
  EXPECT_FALSE(keys.insert(JobKey(std::string()), 3));
  EXPECT_EQ(keys.insert(JobKey(std::string()), 4), 3U);
}

TEST(KeySet, MovedSetKeepsItsKeys) {
  KeySet keys;
  keys.insert(JobKey(std::int64_t{5}), 0);
  KeySet moved(std::move(keys));
  EXPECT_TRUE(moved.contains(JobKey(std::int64_t{5})));
  KeySet assigned;
  assigned = std::move(moved);
  EXPECT_EQ(assigned.size(), 1U);
}

}  // namespace
