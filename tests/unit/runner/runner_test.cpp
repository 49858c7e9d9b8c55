// Runner<Key> on both pool kinds: outcomes per key, retries, the run-once
// rules and duplicate keys. Interrupts: runner_interrupt_test.cpp; the
// streaming form: runner_stream_test.cpp.
#include "troupe/runner.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <mutex>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "troupe/log.hpp"
#include "troupe/process_errors.hpp"
#include "troupe/thread_pool.hpp"
#include "unit/runner/runner_kinds.hpp"

namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using troupe::Backoff;
using troupe::Call;
using troupe::Retry;
using troupe::Runner;
using troupe::RunnerOptions;
using troupe::UsageError;
using troupe::Value;
using troupe::test::key_of;
using troupe::test::Marker;

template <class Kind>
using RunnerTest = troupe::test::RunnerKinds<Kind>;
TYPED_TEST_SUITE(RunnerTest, troupe::test::Kinds, troupe::test::KindNames);

RunnerOptions quick_retries(std::size_t max, Retry on) {
  RunnerOptions o;
  o.retries = {.max = max, .on = on, .backoff = Backoff::fixed(1ms)};
  return o;
}

TYPED_TEST(RunnerTest, EveryKeyEndsExactlyOnceWithItsValue) {
  auto pool = this->make();
  Runner<std::string> runner(*pool);
  std::vector<std::string> keys;
  for (int i = 0; i < 300; ++i) {
    keys.push_back(key_of(i));
    runner.add(keys.back(), Call{"testing.double", {i}, {}});
  }
  auto report = runner.run();
  troupe::test::expect_each_key_once(report, keys);
  EXPECT_TRUE(report.aborted.empty());
  EXPECT_FALSE(report.interrupted);
  EXPECT_EQ(report.ok, 300u);
  for (int i = 0; i < 300; ++i) {
    const auto& outcome = report.outcomes.at(key_of(i));
    ASSERT_TRUE(outcome.ok()) << troupe::describe_exception(outcome.error);
    EXPECT_EQ(outcome.get(), Value(2 * i));
    EXPECT_EQ(outcome.attempts, 1u);
    EXPECT_TRUE(outcome.worker.has_value());
  }
}

TYPED_TEST(RunnerTest, AFailedKeyKeepsItsErrorAndTheOthersGoOn) {
  auto pool = this->make();
  Runner<int> runner(*pool);
  for (int i = 0; i < 20; ++i) {
    runner.add(i, i % 5 == 0 ? Call{"testing.fail", {"bad " + std::to_string(i)}, {}} : Call{"testing.echo", {i}, {}});
  }
  auto report = runner.run();
  EXPECT_EQ(report.ok, 16u);
  EXPECT_EQ(report.failed, 4u);
  const auto& failed = report.outcomes.at(5);
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(troupe::describe_exception(failed.error), HasSubstr("bad 5"));
  EXPECT_EQ(failed.attempt_errors.size(), 1u);
  EXPECT_THROW(failed.get(), std::exception);
  EXPECT_EQ(report.outcomes.at(6).get(), Value(6));
}

TYPED_TEST(RunnerTest, AKeyThatFailsOnceSucceedsOnItsRetry) {
  auto pool = this->make();
  Runner<std::string> runner(*pool, quick_retries(1, Retry::any));
  std::vector<Marker> markers(10);
  for (int i = 0; i < 10; ++i) {
    runner.add(key_of(i), Call{"testing.fail_once", {markers[i].path(), i}, {}});
  }
  auto report = runner.run();
  EXPECT_EQ(report.ok, 10u);
  EXPECT_EQ(report.retried, 10u);
  for (int i = 0; i < 10; ++i) {
    const auto& outcome = report.outcomes.at(key_of(i));
    ASSERT_TRUE(outcome.ok()) << troupe::describe_exception(outcome.error);
    EXPECT_EQ(outcome.get(), Value(i));
    EXPECT_EQ(outcome.attempts, 2u);
    ASSERT_EQ(outcome.attempt_errors.size(), 1u);
    EXPECT_THAT(troupe::describe_exception(outcome.attempt_errors[0]), HasSubstr("first attempt"));
  }
}

TYPED_TEST(RunnerTest, WithoutRetriesTheFirstFailureIsFinal) {
  auto pool = this->make();
  Runner<std::string> runner(*pool);
  Marker marker;
  runner.add("a", Call{"testing.fail_once", {marker.path(), 1}, {}});
  auto report = runner.run();
  const auto& outcome = report.outcomes.at("a");
  EXPECT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.attempts, 1u);
  EXPECT_EQ(report.retried, 0u);
}

TYPED_TEST(RunnerTest, RetryOnCrashDoesNotRetryAnOrdinaryError) {
  auto pool = this->make();
  Runner<std::string> runner(*pool, quick_retries(3, Retry::crash_or_timeout));
  Marker marker;
  runner.add("a", Call{"testing.fail_once", {marker.path(), 1}, {}});
  auto report = runner.run();
  EXPECT_FALSE(report.outcomes.at("a").ok());
  EXPECT_EQ(report.outcomes.at("a").attempts, 1u);
}

TYPED_TEST(RunnerTest, RetriesStopAtTheirMaximum) {
  auto pool = this->make();
  Runner<std::string> runner(*pool, quick_retries(2, Retry::any));
  runner.add("a", Call{"testing.fail", {"always"}, {}});
  auto report = runner.run();
  const auto& outcome = report.outcomes.at("a");
  EXPECT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.attempts, 3u);  // retries are extra attempts
  EXPECT_EQ(outcome.attempt_errors.size(), 3u);
  EXPECT_EQ(report.retried, 2u);
}

// A crash ends the process itself on a thread pool: process pools only.
TEST(RunnerProcessTest, ACrashTheFirstTimeAKeyIsSeenIsRetried) {
  troupe::test::PoolSpec spec;
  spec.max_workers = 2;
  auto pool = troupe::test::ProcessKind::make(spec);
  RunnerOptions options = quick_retries(1, Retry::crash);
  options.batch = 1;  // a crash fails every unfinished item of its pool task
  Runner<int> runner(*pool, options);
  std::vector<Marker> markers(4);
  for (int i = 0; i < 4; ++i) {
    runner.add(i, Call{"testing.crash_once", {markers[i].path(), 10 * i}, {}});
  }
  auto report = runner.run();
  for (int i = 0; i < 4; ++i) {
    const auto& outcome = report.outcomes.at(i);
    ASSERT_TRUE(outcome.ok()) << troupe::describe_exception(outcome.error);
    EXPECT_EQ(outcome.get(), Value(10 * i));
    EXPECT_EQ(outcome.attempts, 2u);
    ASSERT_EQ(outcome.attempt_errors.size(), 1u);
    EXPECT_THROW(std::rethrow_exception(outcome.attempt_errors[0]), troupe::WorkerCrashedError);
  }
}

TYPED_TEST(RunnerTest, DuplicateKeyIsRefusedNamingBoth) {
  auto pool = this->make();
  Runner<std::string> runner(*pool);
  runner.add("d1", Call{"testing.echo", {1}, {}});
  runner.add("d2", Call{"testing.echo", {2}, {}});
  try {
    runner.add("d1", Call{"testing.echo", {3}, {}});
    FAIL() << "a duplicate key was accepted";
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("'d1'"));
    EXPECT_THAT(e.what(), HasSubstr("item 2"));
    EXPECT_THAT(e.what(), HasSubstr("item 0"));
  }
  EXPECT_EQ(runner.size(), 2u);
  EXPECT_EQ(runner.run().outcomes.at("d1").get(), Value(1));
}

TYPED_TEST(RunnerTest, ADuplicateOfALaterItemNamesThatItem) {
  auto pool = this->make();
  Runner<int> runner(*pool);
  for (int i = 0; i < 1000; ++i) {
    runner.add(i, Call{"testing.echo", {i}, {}});
  }
  try {
    runner.add(737, Call{"testing.echo", {0}, {}});
    FAIL() << "a duplicate key was accepted";
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("key 737: item 1000 has the key of item 737"));
  }
  auto report = runner.run();
  EXPECT_EQ(report.outcomes.size(), 1000u);
  EXPECT_EQ(report.outcomes.at(737).get(), Value(737));
}

// A hash that throws for one key: that add() throws and adds nothing; the
// runner goes on with the others as if it had never been called.
struct HashRefusingSeven {
  std::size_t operator()(int key) const {
    if (key == 7) {
      throw std::runtime_error("no hash for 7");
    }
    return std::hash<int>{}(key);
  }
};

TYPED_TEST(RunnerTest, AnAddThatThrowsLeavesTheRunnerAsItWas) {
  auto pool = this->make();
  Runner<int, HashRefusingSeven> runner(*pool);
  for (int i = 0; i < 10; ++i) {
    if (i == 7) {
      EXPECT_THROW(runner.add(i, Call{"testing.echo", {i}, {}}), std::runtime_error);
    } else {
      runner.add(i, Call{"testing.echo", {i}, {}});
    }
  }
  EXPECT_EQ(runner.size(), 9u);
  auto report = runner.run();
  EXPECT_EQ(report.outcomes.size(), 9u);
  EXPECT_EQ(report.ok, 9u);
  EXPECT_TRUE(report.aborted.empty());
  EXPECT_EQ(report.outcomes.at(9).get(), Value(9));
}

// NaN equals nothing, itself included: each NaN key is a key of its own,
// and run() never has to find one again by key.
TYPED_TEST(RunnerTest, KeysUnequalToThemselvesEndOnceEach) {
  auto pool = this->make();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const bool stopped : {false, true}) {
    Runner<double> runner(*pool);
    runner.add(1.0, Call{"testing.echo", {1}, {}});
    runner.add(nan, Call{"testing.echo", {2}, {}});
    runner.add(nan, Call{"testing.echo", {3}, {}});
    if (stopped) {
      runner.stop();
    }
    auto report = runner.run();
    if (stopped) {
      EXPECT_TRUE(report.outcomes.empty());
      ASSERT_EQ(report.aborted.size(), 3u);
      EXPECT_EQ(report.aborted[0], 1.0);
      EXPECT_TRUE(std::isnan(report.aborted[1]));
      EXPECT_TRUE(std::isnan(report.aborted[2]));
    } else {
      EXPECT_EQ(report.outcomes.size(), 3u);
      EXPECT_TRUE(report.aborted.empty());
      EXPECT_EQ(report.ok, 3u);
    }
  }
}

// A key whose operator<< throws: report_errors names it by its place, and
// the run goes on with every key ending once.
struct Unprintable {
  int id;
  bool operator==(const Unprintable&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Unprintable& key) {
  if (key.id == 1) {
    throw std::runtime_error("cannot print key 1");
  }
  return os << key.id;
}
struct UnprintableHash {
  std::size_t operator()(const Unprintable& key) const noexcept { return std::hash<int>{}(key.id); }
};

TYPED_TEST(RunnerTest, AKeyThatWillNotPrintIsLoggedByItsPlace) {
  auto pool = this->make();
  std::vector<std::string> lines;
  std::mutex mutex;
  troupe::set_log_sink([&](troupe::LogLevel, std::string_view line) {
    std::lock_guard lock(mutex);
    lines.emplace_back(line);
  });
  RunnerOptions options;
  options.report_errors = true;
  options.window = 1;
  Runner<Unprintable, UnprintableHash> runner(*pool, options);
  runner.add({0}, Call{"testing.echo", {0}, {}});
  runner.add({1}, Call{"testing.fail", {"no", ""}, {}});
  runner.add({2}, Call{"testing.echo", {2}, {}});
  auto report = runner.run();
  troupe::set_log_sink(nullptr);
  EXPECT_EQ(report.outcomes.size(), 3u);
  EXPECT_EQ(report.ok, 2u);
  EXPECT_FALSE(report.outcomes.at({1}).ok());
  std::lock_guard lock(mutex);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("item 1 failed after 1 attempt"));
}

TYPED_TEST(RunnerTest, RunTwiceIsAUsageError) {
  auto pool = this->make();
  Runner<int> runner(*pool);
  runner.add(1, Call{"testing.echo", {1}, {}});
  runner.run();
  EXPECT_THROW(runner.run(), UsageError);
}

TYPED_TEST(RunnerTest, AddAfterRunIsAUsageError) {
  auto pool = this->make();
  Runner<int> runner(*pool);
  runner.run();
  EXPECT_THROW(runner.add(1, Call{"testing.echo", {1}, {}}), UsageError);
}

TYPED_TEST(RunnerTest, ACallableRunsOnlyOnAThreadPool) {
  auto pool = this->make();
  Runner<int> runner(*pool);
  if constexpr (TypeParam::kProcess) {
    EXPECT_THROW(runner.add(1, [] { return 1; }), UsageError);
  } else {
    int x = 20;
    runner.add(1, [&x] { return x + 1; });
    runner.add(2, Call{"testing.double", {4}, {}});
    runner.add(3, [] { throw std::runtime_error("callable failed"); });
    runner.add(4, [] {});
    auto report = runner.run();
    EXPECT_EQ(report.outcomes.at(1).get(), Value(21));
    EXPECT_EQ(report.outcomes.at(2).get(), Value(8));
    EXPECT_THAT(troupe::describe_exception(report.outcomes.at(3).error), HasSubstr("callable failed"));
    EXPECT_TRUE(report.outcomes.at(4).get().is_null());
  }
}

TYPED_TEST(RunnerTest, ReportErrorsLogsEachFailedKeyOnceWithItsChain) {
  auto pool = this->make();
  std::vector<std::string> lines;
  std::mutex mutex;
  troupe::set_log_sink(
      [&](troupe::LogLevel, std::string_view text) {
        std::lock_guard lock(mutex);
        lines.emplace_back(text);
      },
      troupe::LogLevel::warn);
  RunnerOptions options = quick_retries(1, Retry::any);
  options.report_errors = true;
  Runner<std::string> runner(*pool, options);
  runner.add("bad", Call{"testing.fail", {"outer", "inner"}, {}});
  runner.add("good", Call{"testing.echo", {1}, {}});
  runner.run();
  troupe::set_log_sink(nullptr);
  std::lock_guard lock(mutex);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("key 'bad'"));
  EXPECT_THAT(lines[0], HasSubstr("2 attempts"));
  EXPECT_THAT(lines[0], HasSubstr("outer"));
  EXPECT_THAT(lines[0], HasSubstr("caused by"));
}

TEST(RunnerOptions, BadBackoffIsRefusedNamingTheOption) {
  troupe::ThreadPool pool({.max_workers = 1});
  RunnerOptions options;
  options.retries.backoff.multiplier = 0.5;
  options.retries.backoff.jitter = 2;
  try {
    Runner<int> runner(pool, options);
    FAIL() << "bad options accepted";
  } catch (const troupe::ArgumentError& e) {
    EXPECT_THAT(e.what(), HasSubstr("retries.backoff.multiplier"));
    EXPECT_THAT(e.what(), HasSubstr("retries.backoff.jitter"));
  }
}

}  // namespace
