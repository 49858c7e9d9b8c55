// RunnerOptions::timeout on both pool kinds: an item past it fails with
// TaskTimeoutError (the others are untouched), a retry runs it again, and on
// a ThreadPool the late result of the timed-out task is discarded while its
// cancel flag tells it to stop.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <thread>
#include <vector>

#include "troupe/process_errors.hpp"
#include "troupe/runner.hpp"
#include "unit/runner/runner_kinds.hpp"

namespace {

using namespace std::chrono_literals;
using troupe::Call;
using troupe::RunItem;
using troupe::Runner;
using troupe::RunnerOptions;
using troupe::RunOutcome;
using troupe::TaskTimeoutError;
using troupe::Value;

template <class Kind>
using RunnerTimeout = troupe::test::RunnerKinds<Kind>;
TYPED_TEST_SUITE(RunnerTimeout, troupe::test::Kinds, troupe::test::KindNames);

template <class E>
bool is(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const E&) {
    return true;
  } catch (...) {
    return false;
  }
}

// Items 0..n-1; item `slow` sleeps (cancellably) for 60 s, the others echo.
std::map<int, RunOutcome> stream_with_one_slow(troupe::Executor& pool, RunnerOptions options, int n, int slow) {
  Runner<int> runner(pool, std::move(options));
  int next = 0;
  std::map<int, RunOutcome> outcomes;
  runner.stream(
      [&]() -> std::optional<RunItem<int>> {
        if (next == n) {
          return std::nullopt;
        }
        const int key = next++;
        if (key == slow) {
          return RunItem<int>{key, Call{"testing.cancellable_sleep", {std::int64_t{60'000}}, {}}};
        }
        return RunItem<int>{key, Call{"testing.echo", {key}, {}}};
      },
      [&](int&& key, RunOutcome&& outcome) { EXPECT_TRUE(outcomes.emplace(key, std::move(outcome)).second); });
  return outcomes;
}

TYPED_TEST(RunnerTimeout, AnItemPastItsTimeoutFailsWithTaskTimeoutErrorAndTheOthersRun) {
  auto pool = this->make(2);
  RunnerOptions options;
  options.timeout = 300ms;
  const auto outcomes = stream_with_one_slow(*pool, options, 20, 7);
  ASSERT_EQ(outcomes.size(), 20u);
  for (const auto& [key, outcome] : outcomes) {
    if (key == 7) {
      ASSERT_FALSE(outcome.ok());
      EXPECT_TRUE(is<TaskTimeoutError>(outcome.error)) << troupe::describe_exception(outcome.error);
      EXPECT_EQ(outcome.attempts, 1u);
    } else {
      EXPECT_EQ(outcome.get(), Value(key));
    }
  }
}

TYPED_TEST(RunnerTimeout, ATimedOutItemIsRetriedAndEachAttemptTimesOut) {
  auto pool = this->make(2);
  RunnerOptions options;
  options.timeout = 200ms;
  options.retries = {.max = 1, .on = troupe::Retry::timeout, .backoff = troupe::Backoff::fixed(0ms)};
  const auto outcomes = stream_with_one_slow(*pool, options, 4, 0);
  ASSERT_EQ(outcomes.size(), 4u);
  const RunOutcome& slow = outcomes.at(0);
  EXPECT_EQ(slow.attempts, 2u);
  ASSERT_EQ(slow.attempt_errors.size(), 2u);
  EXPECT_TRUE(is<TaskTimeoutError>(slow.attempt_errors[0]));
  EXPECT_TRUE(is<TaskTimeoutError>(slow.error));
}

TYPED_TEST(RunnerTimeout, ATimeoutCountsFromTheStartNotWhileQueued) {
  // One worker, items of 100 ms each and a 400 ms timeout: queued behind
  // each other they wait far longer than 400 ms, yet none times out.
  auto pool = this->make(1);
  RunnerOptions options;
  options.timeout = 400ms;
  options.batch = 1;
  Runner<int> runner(*pool, options);
  int next = 0;
  std::uint64_t timed_out = 0;
  const auto summary = runner.stream(
      [&]() -> std::optional<RunItem<int>> {
        if (next == 8) {
          return std::nullopt;
        }
        return RunItem<int>{next++, Call{"testing.sleep", {std::int64_t{100}}, {}}};
      },
      [&](int&&, RunOutcome&& outcome) { timed_out += outcome.ok() ? 0 : 1; });
  EXPECT_EQ(summary.ok, 8u);
  EXPECT_EQ(timed_out, 0u);
}

TEST(RunnerTimeoutOptions, ANonPositiveTimeoutIsAnArgumentError) {
  auto pool = troupe::test::ThreadKind::make({});
  RunnerOptions options;
  options.timeout = 0ms;
  EXPECT_THROW(Runner<int>(*pool, options), troupe::ArgumentError);
}

TEST(RunnerTimeoutOptions, OnAThreadPoolTheTimedOutTaskHasItsCancelFlagSet) {
  // cancellable_sleep(60 s) ends early only when its flag is set: the pool
  // is idle again long before the minute is up.
  auto pool = troupe::test::ThreadKind::make({.max_workers = 1});
  RunnerOptions options;
  options.timeout = 100ms;
  const auto outcomes = stream_with_one_slow(*pool, options, 1, 0);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(is<TaskTimeoutError>(outcomes.at(0).error));
  // Nothing was killed: the message says what happened on a thread.
  const std::string message = troupe::describe_exception(outcomes.at(0).error);
  EXPECT_THAT(message, ::testing::HasSubstr("ran past its time limit of 100 ms on thread worker"));
  EXPECT_THAT(message, ::testing::HasSubstr("given up and its cancel flag set"));
  EXPECT_THAT(message, ::testing::Not(::testing::HasSubstr("killed")));
  EXPECT_TRUE(pool->join(10s));
}

TEST(RunnerTimeoutOptions, ACallableOnAThreadPoolTimesOutAndItsLateResultIsDiscarded) {
  auto pool = troupe::test::ThreadKind::make({.max_workers = 1});
  std::atomic<bool> release{false};
  RunnerOptions options;
  options.timeout = 100ms;
  Runner<int> runner(*pool, options);
  bool given = false;
  std::vector<RunOutcome> got;
  runner.stream(
      [&]() -> std::optional<RunItem<int>> {
        if (given) {
          return std::nullopt;
        }
        given = true;
        return RunItem<int>{0, troupe::RunWork([&] {
                              while (!release.load()) {
                                std::this_thread::sleep_for(1ms);
                              }
                              return 1;
                            })};
      },
      [&](int&&, RunOutcome&& outcome) { got.push_back(std::move(outcome)); });
  release = true;
  ASSERT_TRUE(pool->join(10s));
  ASSERT_EQ(got.size(), 1u);  // the late value 1 never reached the sink
  EXPECT_TRUE(is<TaskTimeoutError>(got[0].error));
}

}  // namespace
