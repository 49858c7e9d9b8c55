// One suite over both pool kinds: every guarantee of docs/semantics.md that
// ThreadPool and ProcessPool share, driven through the Executor interface
// with the testing plugin's tasks (folly runs one suite over every executor
// the same way). Behaviours that differ on purpose are in
// executor_differences_test.cpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "troupe/errors.hpp"
#include "troupe/map.hpp"
#include "troupe/wait.hpp"
#include "unit/executor/executor_kinds.hpp"

namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using troupe::Args;
using troupe::Call;
using troupe::CancelledError;
using troupe::Future;
using troupe::FutureState;
using troupe::MapOptions;
using troupe::Outcome;
using troupe::ReturnWhen;
using troupe::Value;
using troupe::test::eventually;
using troupe::test::kPatience;
using troupe::test::Marker;
using troupe::test::Occupied;
using troupe::test::PoolSpec;

template <class Kind>
class ExecutorContract : public ::testing::Test {
 protected:
  static std::unique_ptr<troupe::Executor> make(const PoolSpec& spec = {}) { return Kind::make(spec); }
};

TYPED_TEST_SUITE(ExecutorContract, troupe::test::Kinds, troupe::test::KindNames);

// An unsized input that counts the items read, like a generator.
class CountingInput : public std::ranges::view_interface<CountingInput> {
 public:
  struct State {
    std::atomic<std::int64_t> reads{0};
    std::int64_t limit = -1;     // -1: endless
    std::int64_t throw_at = -1;  // -1: never
  };
  class iterator {
   public:
    using value_type = std::int64_t;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(State* s) : s_(s) {}
    std::int64_t operator*() const {
      if (i_ == s_->throw_at) {
        throw std::runtime_error("input broke at " + std::to_string(i_));
      }
      s_->reads.fetch_add(1);
      return i_;
    }
    iterator& operator++() {
      ++i_;
      return *this;
    }
    void operator++(int) { ++i_; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) {
      return it.s_->limit >= 0 && it.i_ >= it.s_->limit;
    }

   private:
    State* s_ = nullptr;
    std::int64_t i_ = 0;
  };
  CountingInput() = default;
  explicit CountingInput(State* s) : s_(s) {}
  iterator begin() const { return iterator(s_); }
  std::default_sentinel_t end() const { return {}; }

 private:
  State* s_ = nullptr;
};

std::vector<Args> items_of(std::initializer_list<std::int64_t> values) {
  std::vector<Args> items;
  for (auto v : values) {
    items.push_back(Args{v});
  }
  return items;
}

template <class E>
void expect_outcome_throws(const Outcome<Value>& outcome) {
  EXPECT_FALSE(outcome.ok());
  EXPECT_THROW(outcome.rethrow(), E);
}

// ---- futures -------------------------------------------------------------

TYPED_TEST(ExecutorContract, CallSubmitCallAndKeywordsReturnTheTaskValue) {
  auto pool = this->make();
  EXPECT_EQ(pool->call("testing.double", 21).get(kPatience), 42);
  EXPECT_EQ(pool->submit_call(Call{"testing.double", {4}, {}}).get(kPatience), 8);
  EXPECT_EQ(pool->call("testing.double", troupe::kw("x", 5)).get(kPatience), 10);
  EXPECT_EQ(pool->call("testing.echo", Value{{"a", {1, 2, "x"}}}).get(kPatience), (Value{{"a", {1, 2, "x"}}}));
}

TYPED_TEST(ExecutorContract, FutureGoesFromPendingToRunningToDone) {
  auto pool = this->make();
  Occupied occupied(*pool);
  auto future = pool->call("testing.double", 3);
  EXPECT_EQ(future.state(), FutureState::pending);
  EXPECT_FALSE(future.done());
  EXPECT_FALSE(future.worker_id().has_value());
  EXPECT_EQ(future.running_time(), 0ns);
  EXPECT_EQ(occupied.blockers()[0].state(), FutureState::running);
  EXPECT_FALSE(future.wait(0s));  // zero polls
  occupied.release();
  EXPECT_EQ(future.get(kPatience), 6);
  EXPECT_EQ(future.state(), FutureState::done);
  EXPECT_GT(future.running_time(), 0ns);
  EXPECT_TRUE(future.done());
  EXPECT_TRUE(future.worker_id().has_value());
  EXPECT_GT(future.pending_time(), 0ns);
  EXPECT_EQ(future.get(0s), 6);  // a finished future answers a zero timeout
}

TYPED_TEST(ExecutorContract, FutureIdsFollowSubmissionOrder) {
  auto pool = this->make();
  auto a = pool->call("testing.double", 1);
  auto b = pool->call("testing.double", 2);
  auto c = pool->submit_chunk("testing.double", items_of({3}));
  EXPECT_EQ(a.id(), 1u);
  EXPECT_EQ(b.id(), 2u);
  EXPECT_EQ(c.id(), 3u);
  ASSERT_TRUE(pool->join(kPatience));
}

TYPED_TEST(ExecutorContract, FailedTaskFailsOnlyItsFuture) {
  auto pool = this->make();
  auto failing = pool->call("testing.fail", "outer trouble");
  auto fine = pool->call("testing.double", 2);
  try {
    failing.get(kPatience);
    ADD_FAILURE() << "get() did not throw";
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), HasSubstr("outer trouble"));
  }
  EXPECT_EQ(failing.state(), FutureState::failed);
  EXPECT_TRUE(failing.done());
  EXPECT_NE(failing.exception(kPatience), nullptr);
  EXPECT_EQ(fine.get(kPatience), 4);
  EXPECT_EQ(fine.exception(kPatience), nullptr);
}

TYPED_TEST(ExecutorContract, GetAndExceptionWithATimeoutThrowTimeoutErrorWhileRunning) {
  auto pool = this->make();
  Occupied occupied(*pool);
  const auto& running = occupied.blockers()[0];
  EXPECT_THROW(running.get(1ms), troupe::TimeoutError);
  EXPECT_THROW(static_cast<void>(running.exception(1ms)), troupe::TimeoutError);
  EXPECT_FALSE(running.wait(1ms));
}

// ---- cancel --------------------------------------------------------------

TYPED_TEST(ExecutorContract, CancelledPendingFutureNeverRuns) {
  auto pool = this->make();
  Occupied occupied(*pool);
  auto victim = pool->call("testing.double", 1);
  ASSERT_EQ(victim.state(), FutureState::pending);
  EXPECT_TRUE(victim.cancel());
  EXPECT_TRUE(victim.cancel());  // true again: it is cancelled after the call
  EXPECT_EQ(victim.state(), FutureState::cancelled);
  EXPECT_TRUE(victim.cancelled());
  EXPECT_TRUE(victim.done());
  EXPECT_THROW(victim.get(kPatience), CancelledError);
  EXPECT_THROW(static_cast<void>(victim.exception(kPatience)), CancelledError);
  occupied.release();
  ASSERT_TRUE(pool->join(kPatience));
  EXPECT_FALSE(victim.worker_id().has_value());
  EXPECT_EQ(victim.running_time(), 0ns);
  // A thread pool counts the task when a worker discards it, just after join sees it end.
  EXPECT_TRUE(eventually([&] { return pool->pending_tasks() == 0 && pool->stats().cancelled >= 1; }));
}

TYPED_TEST(ExecutorContract, CancelOnARunningTaskSetsItsCooperativeFlag) {
  auto pool = this->make();
  Marker started;
  auto running = pool->call("testing.announce_then_cancellable_sleep", started.path(), 60'000);
  ASSERT_TRUE(eventually([&] { return started.exists() && running.state() == FutureState::running; }));
  EXPECT_FALSE(running.cancel());
  EXPECT_TRUE(running.cancel_requested());
  EXPECT_EQ(running.get(kPatience), false);  // it saw the flag and returned early
  EXPECT_EQ(running.state(), FutureState::done);
  EXPECT_EQ(pool->call("testing.double", 2).get(kPatience), 4);
}

TYPED_TEST(ExecutorContract, CancelOnAFinishedFutureReturnsFalse) {
  auto pool = this->make();
  auto done = pool->call("testing.double", 1);
  auto failed = pool->call("testing.fail", "no");
  ASSERT_TRUE(done.wait(kPatience));
  ASSERT_TRUE(failed.wait(kPatience));
  EXPECT_FALSE(done.cancel());
  EXPECT_FALSE(failed.cancel());
  EXPECT_EQ(done.state(), FutureState::done);
  EXPECT_EQ(failed.state(), FutureState::failed);
}

TYPED_TEST(ExecutorContract, CancelRacingStartEndsEachFutureExactlyOnce) {
  auto pool = this->make({.max_workers = 2});
  std::vector<Future<Value>> futures;
  std::vector<bool> won;
  for (int i = 0; i < 400; ++i) {
    futures.push_back(pool->call("testing.double", i));
    won.push_back(futures.back().cancel());
  }
  ASSERT_TRUE(pool->join(kPatience));
  std::size_t cancelled = 0;
  for (std::size_t i = 0; i < futures.size(); ++i) {
    ASSERT_TRUE(futures[i].done());
    if (won[i]) {
      EXPECT_EQ(futures[i].state(), FutureState::cancelled) << i;
    } else if (TypeParam::kProcess && futures[i].state() == FutureState::cancelled) {
      // A lost cancel() of a frame sent but not started still revokes it.
    } else {
      EXPECT_EQ(futures[i].get(0s), 2 * static_cast<std::int64_t>(i)) << i;
    }
    cancelled += futures[i].state() == FutureState::cancelled ? 1 : 0;
  }
  EXPECT_TRUE(eventually([&] { return pool->stats().cancelled == cancelled; })) << pool->stats().cancelled;
}

// ---- done callbacks ------------------------------------------------------

TYPED_TEST(ExecutorContract, DoneCallbacksRunOnceEachInTheOrderAdded) {
  auto pool = this->make();
  Occupied occupied(*pool);
  auto future = pool->call("testing.double", 5);
  std::mutex mutex;
  std::vector<int> order;
  for (int i = 0; i < 3; ++i) {
    future.add_done_callback([&, i](const Future<Value>& f) {
      EXPECT_TRUE(f.done());
      std::lock_guard lock(mutex);
      order.push_back(i);
    });
  }
  occupied.release();
  ASSERT_EQ(future.get(kPatience), 10);
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mutex);
    return order.size() >= 3;
  }));
  ASSERT_TRUE(pool->join(kPatience));
  std::lock_guard lock(mutex);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
}

TYPED_TEST(ExecutorContract, CallbackAddedToAFinishedFutureRunsAtOnceOnTheCaller) {
  auto pool = this->make();
  auto future = pool->call("testing.double", 1);
  ASSERT_TRUE(future.wait(kPatience));
  std::thread::id ran_on;
  future.add_done_callback([&](const Future<Value>&) { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TYPED_TEST(ExecutorContract, CallbacksRunOnCancelledFuturesOnTheCancellingThread) {
  auto pool = this->make();
  Occupied occupied(*pool);
  auto victim = pool->call("testing.double", 1);
  std::thread::id ran_on;
  int runs = 0;
  victim.add_done_callback([&](const Future<Value>& f) {
    EXPECT_TRUE(f.cancelled());
    ran_on = std::this_thread::get_id();
    ++runs;
  });
  ASSERT_TRUE(victim.cancel());
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TYPED_TEST(ExecutorContract, ThrowingCallbackNeitherStopsLaterOnesNorHarmsThePool) {
  auto pool = this->make();
  Occupied occupied(*pool);
  auto future = pool->call("testing.double", 1);
  std::atomic<bool> later_ran{false};
  future.add_done_callback([](const Future<Value>&) { throw std::runtime_error("callback trouble"); });
  future.add_done_callback([&](const Future<Value>&) { later_ran = true; });
  occupied.release();
  EXPECT_EQ(future.get(kPatience), 2);
  EXPECT_TRUE(eventually([&] { return later_ran.load(); }));
  EXPECT_EQ(pool->call("testing.double", 3).get(kPatience), 6);
}

TYPED_TEST(ExecutorContract, CallbackAddedWhileTheFutureCompletesRunsExactlyOnce) {
  auto pool = this->make({.max_workers = 2});
  constexpr int kFutures = 300;
  std::vector<std::atomic<int>> runs(kFutures);
  std::vector<Future<Value>> futures;
  for (int i = 0; i < kFutures; ++i) {
    futures.push_back(pool->call("testing.double", i));
    futures.back().add_done_callback([&runs, i](const Future<Value>&) { runs[static_cast<std::size_t>(i)]++; });
  }
  ASSERT_TRUE(pool->join(kPatience));
  EXPECT_TRUE(eventually(
      [&] { return std::all_of(runs.begin(), runs.end(), [](const std::atomic<int>& r) { return r.load() >= 1; }); }));
  for (int i = 0; i < kFutures; ++i) {
    EXPECT_EQ(runs[static_cast<std::size_t>(i)].load(), 1) << i;
  }
}

// ---- wait and as_completed -----------------------------------------------

TYPED_TEST(ExecutorContract, WaitAllCompletedWithATimeoutReturnsThePartialSplit) {
  auto pool = this->make({.max_workers = 2});
  auto blocker = pool->call("testing.cancellable_sleep", 60'000);
  auto quick = pool->call("testing.double", 1);
  ASSERT_TRUE(quick.wait(kPatience));
  const auto split = troupe::wait(std::vector{blocker, quick, quick}, 50ms);  // duplicates count once
  ASSERT_EQ(split.done.size(), 1u);
  EXPECT_EQ(split.done[0], quick);
  ASSERT_EQ(split.not_done.size(), 1u);
  EXPECT_EQ(split.not_done[0], blocker);
  blocker.cancel();
  const auto all = troupe::wait(std::vector{blocker, quick}, kPatience);
  EXPECT_EQ(all.done.size(), 2u);
  EXPECT_TRUE(all.not_done.empty());
}

TYPED_TEST(ExecutorContract, WaitFirstCompletedReturnsAtTheFirstFinished) {
  auto pool = this->make({.max_workers = 2});
  auto blocker = pool->call("testing.cancellable_sleep", 60'000);
  auto quick = pool->call("testing.double", 1);
  const auto split = troupe::wait(std::vector{blocker, quick}, kPatience, ReturnWhen::first_completed);
  ASSERT_EQ(split.done.size(), 1u);
  EXPECT_EQ(split.done[0], quick);
  EXPECT_EQ(split.not_done.size(), 1u);
  blocker.cancel();
}

TYPED_TEST(ExecutorContract, WaitFirstExceptionReturnsAtTheFirstFailureNotAtACancellation) {
  auto pool = this->make({.max_workers = 2});
  auto blocker = pool->call("testing.cancellable_sleep", 60'000);
  auto failing = pool->call("testing.fail", "no");
  const auto split = troupe::wait(std::vector{blocker, failing}, kPatience, ReturnWhen::first_exception);
  ASSERT_EQ(split.done.size(), 1u);
  EXPECT_EQ(split.done[0], failing);
  EXPECT_EQ(split.not_done.size(), 1u);

  // A cancelled future is not an exception: the wait goes on to its timeout.
  auto other = this->make();
  Occupied occupied(*other);
  auto victim = other->call("testing.double", 1);
  ASSERT_TRUE(victim.cancel());
  const auto start = std::chrono::steady_clock::now();
  const auto after_cancel = troupe::wait(std::vector{victim, blocker}, 150ms, ReturnWhen::first_exception);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
  EXPECT_EQ(after_cancel.done.size(), 1u);
  EXPECT_EQ(after_cancel.not_done.size(), 1u);
  blocker.cancel();
}

TYPED_TEST(ExecutorContract, AsCompletedYieldsFinishedOnesFirstThenAsTheyComplete) {
  auto pool = this->make({.max_workers = 2});
  auto blocker = pool->call("testing.cancellable_sleep", 60'000);
  auto quick = pool->call("testing.double", 1);
  ASSERT_TRUE(quick.wait(kPatience));
  std::vector<Future<Value>> seen;
  for (const auto& f : troupe::as_completed(std::vector{blocker, quick}, kPatience)) {
    seen.push_back(f);
    if (seen.size() == 1) {
      blocker.cancel();  // lets the blocker finish only once the finished one came out
    }
  }
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], quick);
  EXPECT_EQ(seen[1], blocker);
}

TYPED_TEST(ExecutorContract, AsCompletedKeepOrderYieldsInInputOrder) {
  auto pool = this->make({.max_workers = 2});
  std::vector<Future<Value>> futures{pool->call("testing.sleep", 30), pool->call("testing.double", 1),
                                     pool->call("testing.double", 2)};
  std::vector<Future<Value>> seen;
  for (const auto& f : troupe::as_completed(futures, kPatience, true)) {
    seen.push_back(f);
  }
  EXPECT_EQ(seen, futures);
}

TYPED_TEST(ExecutorContract, AsCompletedTimeoutThrowsTimeoutErrorNamingWhatIsLeft) {
  auto pool = this->make();
  Occupied occupied(*pool);
  const auto& blocker = occupied.blockers()[0];
  auto range = troupe::as_completed(std::vector{blocker}, 50ms);
  try {
    for (const auto& f : range) {
      ADD_FAILURE() << "yielded future " << f.id();
    }
    ADD_FAILURE() << "no TimeoutError";
  } catch (const troupe::TimeoutError& e) {
    EXPECT_THAT(e.what(), HasSubstr("1 (of 1)"));
  }
}

// ---- the map family --------------------------------------------------------

TYPED_TEST(ExecutorContract, MapIsLazyAndReadsAheadOnlyItsWindow) {
  auto pool = this->make({.max_workers = 2});
  CountingInput::State state;
  auto results = troupe::map(*pool, "testing.echo", CountingInput(&state), {.chunk_size = 1, .buffer_size = 3});
  EXPECT_EQ(state.reads.load(), 0);
  EXPECT_EQ(pool->stats().submitted, 0u);
  std::int64_t consumed = 0;
  for (auto it = results.begin(); consumed < 50; ++it) {
    ASSERT_EQ(*it, consumed);
    ++consumed;
    EXPECT_LE(state.reads.load(), consumed + 3);
  }
}

TYPED_TEST(ExecutorContract, MapAllReadsAndSubmitsEverythingAtTheCall) {
  auto pool = this->make({.max_workers = 2});
  CountingInput::State state;
  state.limit = 50;
  auto results = troupe::map_all(*pool, "testing.double", CountingInput(&state), {.chunk_size = 5});
  EXPECT_EQ(state.reads.load(), 50);
  EXPECT_GE(pool->stats().submitted, 10u);
  std::int64_t expected = 0;
  for (const auto& v : results) {
    EXPECT_EQ(v, 2 * expected);
    ++expected;
  }
  EXPECT_EQ(expected, 50);
}

TYPED_TEST(ExecutorContract, OrderedMapAndStarmapYieldInInputOrder) {
  auto pool = this->make({.max_workers = 2});
  std::vector<std::int64_t> out;
  for (const auto& v : troupe::map(*pool, "testing.double", std::views::iota(0, 200), {.chunk_size = 7})) {
    out.push_back(v.template get<std::int64_t>());
  }
  ASSERT_EQ(out.size(), 200u);
  for (std::size_t i = 0; i < out.size(); ++i) {
    ASSERT_EQ(out[i], 2 * static_cast<std::int64_t>(i));
  }
  std::vector<Args> pairs{{"a", ""}, {"b", ""}};
  std::vector<std::string> messages;
  for (const auto& o : troupe::starmap_all(*pool, "testing.fail", pairs).outcomes()) {
    try {
      o.rethrow();
    } catch (const std::exception& e) {
      messages.emplace_back(e.what());
    }
  }
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_THAT(messages[0], HasSubstr("a"));
  EXPECT_THAT(messages[1], HasSubstr("b"));
}

TYPED_TEST(ExecutorContract, UnorderedMapYieldsChunksAsTheyComplete) {
  auto pool = this->make({.max_workers = 2});
  std::vector<std::int64_t> sleeps{60'000, 1, 1, 1};
  // A window of two: each short chunk is submitted when the one before it
  // has finished, so it finds the second worker idle (a process pool could
  // otherwise pipeline it behind the long one).
  auto results =
      troupe::map(*pool, "testing.cancellable_sleep", sleeps, {.chunk_size = 1, .buffer_size = 2, .ordered = false});
  // The first chunk sleeps until cancelled: the three short ones come out
  // before it (a fourth ++ would wait for it).
  auto it = results.begin();
  for (int i = 0; i < 3; ++i) {
    if (i > 0) {
      ++it;
    }
    ASSERT_NE(it, results.end());
    EXPECT_EQ(*it, true);
  }
  results.cancel();  // the long one sees its flag and returns
  ASSERT_TRUE(pool->join(kPatience));
}

TYPED_TEST(ExecutorContract, InputErrorReachesTheCallerAfterEarlierItems) {
  auto pool = this->make({.max_workers = 2});
  CountingInput::State state;
  state.throw_at = 5;
  auto results = troupe::map(*pool, "testing.double", CountingInput(&state), {.chunk_size = 2});
  std::vector<std::int64_t> seen;
  try {
    for (const auto& v : results) {
      seen.push_back(v.template get<std::int64_t>());
    }
    ADD_FAILURE() << "the input's error did not arrive";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("input broke at 5"));
  }
  EXPECT_EQ(seen, (std::vector<std::int64_t>{0, 2, 4, 6, 8}));
}

TYPED_TEST(ExecutorContract, MapBeginTwiceIsAUsageError) {
  auto pool = this->make();
  auto results = troupe::map(*pool, "testing.double", std::vector<int>{1});
  static_cast<void>(results.begin());
  EXPECT_THROW(static_cast<void>(results.begin()), troupe::UsageError);
}

TYPED_TEST(ExecutorContract, ItemErrorIsRethrownAtItsPositionAndIterationGoesOn) {
  auto pool = this->make({.max_workers = 2});
  std::vector<Value> items{1, 2, "three", 4, 5};
  auto results = troupe::map(*pool, "testing.double", items, {.chunk_size = 2});
  std::vector<std::int64_t> seen;
  for (auto it = results.begin(); it != results.end(); ++it) {
    try {
      seen.push_back((*it).template get<std::int64_t>());
    } catch (const troupe::ArgumentError& e) {
      EXPECT_THAT(e.what(), HasSubstr("testing.double"));
      seen.push_back(-1);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "item error is not an ArgumentError: " << e.what();
      seen.push_back(-2);
    }
  }
  EXPECT_EQ(seen, (std::vector<std::int64_t>{2, 4, -1, 8, 10}));
}

TYPED_TEST(ExecutorContract, OutcomesCaptureEachItemsValueOrErrorAlsoOnATemporary) {
  auto pool = this->make({.max_workers = 2});
  std::vector<Value> items{1, "x", 3};
  std::vector<bool> oks;
  for (const auto& o : troupe::map(*pool, "testing.double", items).outcomes()) {
    oks.push_back(o.ok());
  }
  EXPECT_EQ(oks, (std::vector<bool>{true, false, true}));
}

TYPED_TEST(ExecutorContract, MapTimeoutCancelsTheRestAndEndsTheRange) {
  auto pool = this->make();
  std::vector<std::int64_t> sleeps{1, 60'000, 1, 1, 1, 1};
  {
    auto results =
        troupe::map(*pool, "testing.cancellable_sleep", sleeps, {.chunk_size = 1, .buffer_size = 4, .timeout = 300ms});
    auto it = results.begin();
    EXPECT_EQ(*it, true);
    EXPECT_THROW(++it, troupe::TimeoutError);
    EXPECT_EQ(it, results.end());
  }
  // The running chunk was told to stop; nothing left holds the worker.
  ASSERT_TRUE(pool->join(kPatience));
  EXPECT_EQ(pool->call("testing.double", 1).get(kPatience), 2);
}

TYPED_TEST(ExecutorContract, DroppingAMapCancelsChunksNotStartedWithoutWaiting) {
  auto pool = this->make();
  std::vector<std::int64_t> sleeps(41, 1);
  sleeps[0] = 60'000;
  std::chrono::steady_clock::time_point dropped_at;
  {
    auto results = troupe::map_all(*pool, "testing.cancellable_sleep", sleeps, {.chunk_size = 1});
    ASSERT_TRUE(eventually([&] { return pool->busy_workers() == 1; }));
    dropped_at = std::chrono::steady_clock::now();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - dropped_at, 5s);  // it never waits for the minute-long chunk
  ASSERT_TRUE(pool->join(kPatience));
  EXPECT_TRUE(eventually([&] { return pool->stats().cancelled >= 1; }));
  EXPECT_EQ(pool->call("testing.double", 1).get(kPatience), 2);
}

TYPED_TEST(ExecutorContract, CancelledChunkStopsBetweenItems) {
  auto pool = this->make();
  Marker started;
  std::vector<Args> items;
  for (std::int64_t ms : {60'000, 1, 1, 1}) {
    items.push_back(Args{started.path(), ms});
  }
  auto chunk = pool->submit_chunk("testing.announce_then_cancellable_sleep", items);
  ASSERT_TRUE(eventually([&] { return started.exists() && chunk.state() == FutureState::running; }));
  EXPECT_FALSE(chunk.cancel());  // running: the cooperative flag
  const auto outcomes = chunk.get(kPatience);
  ASSERT_EQ(outcomes.size(), 4u);
  EXPECT_EQ(outcomes[0].value(), false);  // it saw the flag mid-item
  for (std::size_t i = 1; i < outcomes.size(); ++i) {
    expect_outcome_throws<CancelledError>(outcomes[i]);
  }
}

TYPED_TEST(ExecutorContract, ChunkRunsEveryItemInOrderAndCapturesEachError) {
  auto pool = this->make();
  const auto outcomes = pool->submit_chunk("testing.double", {Args{1}, Args{"x"}, Args{3}}).get(kPatience);
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_EQ(outcomes[0].value(), 2);
  expect_outcome_throws<troupe::ArgumentError>(outcomes[1]);
  EXPECT_EQ(outcomes[2].value(), 6);
}

// ---- the error contract ------------------------------------------------------

TYPED_TEST(ExecutorContract, UnknownTaskIsAnUnknownTaskErrorFromGet) {
  auto pool = this->make();
  auto future = pool->call("testing.nope", 1);
  EXPECT_THROW(future.get(kPatience), troupe::UnknownTaskError);
  EXPECT_EQ(future.state(), FutureState::failed);
  EXPECT_THROW(pool->submit_chunk("testing.nope", items_of({1})).get(kPatience), troupe::UnknownTaskError);
  int items = 0;
  for (const auto& o : troupe::map(*pool, "testing.nope", std::vector<int>{1, 2}).outcomes()) {
    expect_outcome_throws<troupe::UnknownTaskError>(o);
    ++items;
  }
  EXPECT_EQ(items, 2);
  EXPECT_EQ(pool->call("testing.double", 2).get(kPatience), 4);
}

TYPED_TEST(ExecutorContract, BadArgumentIsAnArgumentErrorFromGet) {
  auto pool = this->make();
  auto future = pool->call("testing.double", "not a number");
  try {
    future.get(kPatience);
    ADD_FAILURE() << "get() did not throw";
  } catch (const troupe::ArgumentError& e) {
    EXPECT_THAT(e.what(), HasSubstr("testing.double"));
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an ArgumentError: " << e.what();
  }
  EXPECT_THROW(pool->call("testing.double").get(kPatience), troupe::ArgumentError);
  EXPECT_EQ(pool->call("testing.double", 2).get(kPatience), 4);
}

// ---- option validation: the same answer on both kinds --------------------------

TYPED_TEST(ExecutorContract, QueueLimitZeroIsAUsageError) {
  EXPECT_THROW(this->make({.queue_limit = 0}), troupe::UsageError);
}

TYPED_TEST(ExecutorContract, MaxTasksPerWorkerZeroIsAUsageError) {
  EXPECT_THROW(this->make({.max_tasks_per_worker = 0}), troupe::UsageError);
}

TYPED_TEST(ExecutorContract, MinWorkersAboveMaxWorkersIsAUsageError) {
  EXPECT_THROW(this->make({.max_workers = 1, .min_workers = 2}), troupe::UsageError);
}

// ---- queue limit -------------------------------------------------------------

TYPED_TEST(ExecutorContract, QueueLimitFailPolicyThrowsQueueFullError) {
  auto pool = this->make({.queue_limit = 2, .queue_full_policy = troupe::QueueFullPolicy::fail});
  auto blocker = pool->call("testing.cancellable_sleep", 60'000);
  // Running, not just a worker that is busy starting: a thread pool's queue
  // is FIFO per submitting thread only.
  ASSERT_TRUE(eventually([&] { return blocker.state() == FutureState::running && pool->busy_workers() == 1; }));
  std::vector<Future<Value>> accepted;
  bool refused = false;
  for (int i = 0; i < 200 && !refused; ++i) {
    try {
      accepted.push_back(pool->call("testing.double", i));
    } catch (const troupe::QueueFullError& e) {
      refused = true;
      EXPECT_THAT(e.what(), HasSubstr("2"));
    }
  }
  EXPECT_TRUE(refused);
  EXPECT_LE(pool->pending_tasks(), 2u);
  blocker.cancel();
  ASSERT_TRUE(pool->join(kPatience));
  EXPECT_EQ(pool->call("testing.double", 1).get(kPatience), 2);  // room again
}

TYPED_TEST(ExecutorContract, QueueLimitBlockPolicyWaitsForRoom) {
  auto pool = this->make({.queue_limit = 2});
  auto blocker = pool->call("testing.cancellable_sleep", 60'000);
  // Running, not just a worker that is busy starting: a thread pool's queue
  // is FIFO per submitting thread only.
  ASSERT_TRUE(eventually([&] { return blocker.state() == FutureState::running && pool->busy_workers() == 1; }));
  // More than a process pool pipelines to its worker plus the limit: the
  // submitter must end up waiting for room.
  constexpr int kSubmits = 30;
  std::atomic<int> accepted{0};
  std::vector<Future<Value>> futures;
  std::thread submitter([&] {
    for (int i = 0; i < kSubmits; ++i) {
      futures.push_back(pool->call("testing.double", i));
      accepted.fetch_add(1);
    }
  });
  EXPECT_TRUE(eventually([&] { return pool->pending_tasks() == 2; }));
  EXPECT_LT(accepted.load(), kSubmits);  // the submitter is held while the worker is
  blocker.cancel();
  submitter.join();
  ASSERT_EQ(futures.size(), static_cast<std::size_t>(kSubmits));
  for (int i = 0; i < kSubmits; ++i) {
    EXPECT_EQ(futures[static_cast<std::size_t>(i)].get(kPatience), 2 * i);
  }
  EXPECT_LE(pool->stats().peak_queue, 2u);
}

// ---- shutdown and join --------------------------------------------------------

TYPED_TEST(ExecutorContract, ShutdownLetsQueuedWorkRunByDefault) {
  auto pool = this->make();
  std::vector<Future<Value>> futures;
  for (int i = 0; i < 20; ++i) {
    futures.push_back(pool->call("testing.sleep", 1));
  }
  pool->shutdown();
  for (auto& f : futures) {
    EXPECT_TRUE(f.done());
    EXPECT_EQ(f.get(0s), 1);
  }
  EXPECT_EQ(pool->workers(), 0u);
  EXPECT_TRUE(pool->cancelled_tasks().empty());
}

TYPED_TEST(ExecutorContract, ShutdownCancelPendingCancelsQueuedListsThemAndFlagsRunning) {
  auto pool = this->make();
  Occupied occupied(*pool);
  std::vector<Future<Value>> queued;
  for (int i = 0; i < 5; ++i) {
    queued.push_back(pool->call("testing.double", i));
  }
  auto queued_chunk = pool->submit_chunk("testing.double", items_of({1, 2}));
  pool->shutdown({.wait = true, .cancel_pending = true});
  EXPECT_EQ(occupied.blockers()[0].get(0s), false);  // its cooperative flag was set
  std::set<std::uint64_t> cancelled_ids;
  for (const auto& c : pool->cancelled_tasks()) {
    cancelled_ids.insert(c.id);
    if (c.id == queued_chunk.id() || c.id == queued[0].id()) {
      EXPECT_THAT(c.task, HasSubstr("testing.double"));
    }
  }
  for (const auto& f : queued) {
    EXPECT_EQ(f.state(), FutureState::cancelled);
    EXPECT_THROW(f.get(0s), CancelledError);
    EXPECT_TRUE(cancelled_ids.contains(f.id()));
  }
  EXPECT_EQ(queued_chunk.state(), FutureState::cancelled);
  EXPECT_TRUE(cancelled_ids.contains(queued_chunk.id()));
}

TYPED_TEST(ExecutorContract, ShutdownWithoutWaitReturnsAtOnceAndTheWorkGoesOn) {
  auto pool = this->make();
  Occupied occupied(*pool);
  auto queued = pool->call("testing.double", 4);
  pool->shutdown({.wait = false});
  EXPECT_FALSE(occupied.blockers()[0].done());
  EXPECT_THROW(pool->call("testing.double", 1), troupe::UsageError);
  occupied.release();
  EXPECT_EQ(queued.get(kPatience), 8);
}

TYPED_TEST(ExecutorContract, ShutdownTwiceIsSafeAndSubmitsAfterItAreUsageErrors) {
  auto pool = this->make();
  EXPECT_EQ(pool->call("testing.double", 1).get(kPatience), 2);
  pool->shutdown();
  pool->shutdown();
  pool->shutdown({.wait = false, .cancel_pending = true});
  EXPECT_THROW(pool->call("testing.double", 1), troupe::UsageError);
  EXPECT_THROW(pool->submit_call(Call{"testing.double", {1}, {}}), troupe::UsageError);
  EXPECT_THROW(pool->submit_chunk("testing.double", items_of({1})), troupe::UsageError);
  EXPECT_THROW(pool->check(), troupe::UsageError);
}

TYPED_TEST(ExecutorContract, ShutdownWhileOtherThreadsSubmitEndsEveryAcceptedTask) {
  auto pool = this->make({.max_workers = 2});
  constexpr int kThreads = 3;
  std::vector<std::vector<Future<Value>>> accepted(kThreads);
  std::atomic<int> refused{0};
  std::atomic<int> started{0};
  std::vector<std::thread> submitters;
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      started.fetch_add(1);
      for (int i = 0; i < 2000; ++i) {
        try {
          accepted[static_cast<std::size_t>(t)].push_back(pool->call("testing.double", i));
        } catch (const troupe::UsageError&) {
          refused.fetch_add(1);
          return;
        }
      }
    });
  }
  ASSERT_TRUE(eventually([&] { return started.load() == kThreads; }));
  pool->shutdown({.wait = true, .cancel_pending = true});
  for (auto& s : submitters) {
    s.join();
  }
  for (const auto& futures : accepted) {
    for (const auto& f : futures) {
      ASSERT_TRUE(f.wait(kPatience)) << "an accepted task never ended: " << f.id();
    }
  }
  EXPECT_EQ(pool->stats().queued, 0u);
}

TYPED_TEST(ExecutorContract, DestroyingThePoolRunsQueuedWorkAndLeavesFuturesValid) {
  std::vector<Future<Value>> futures;
  {
    auto pool = this->make();
    for (int i = 0; i < 20; ++i) {
      futures.push_back(pool->call("testing.double", i));
    }
  }
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(futures[static_cast<std::size_t>(i)].get(0s), 2 * i);
  }
}

TYPED_TEST(ExecutorContract, JoinWaitsForEverythingAndLeavesThePoolUsable) {
  auto pool = this->make({.max_workers = 2});
  std::vector<Future<Value>> futures;
  for (int i = 0; i < 20; ++i) {
    futures.push_back(pool->call("testing.sleep", 1));
  }
  EXPECT_TRUE(pool->join(kPatience));
  for (auto& f : futures) {
    EXPECT_TRUE(f.done());
  }
  EXPECT_EQ(pool->pending_tasks(), 0u);
  EXPECT_EQ(pool->call("testing.double", 1).get(kPatience), 2);
}

TYPED_TEST(ExecutorContract, JoinWithATimeoutReturnsFalseWhileWorkRuns) {
  auto pool = this->make();
  Occupied occupied(*pool);
  EXPECT_FALSE(pool->join(20ms));
  occupied.release();
  EXPECT_TRUE(pool->join(kPatience));
}

// ---- broken pools ------------------------------------------------------------

TYPED_TEST(ExecutorContract, InitializerErrorBreaksThePoolCancelsAndListsPendingWork) {
  auto pool = this->make({.initializer = Call{"testing.fail_init", {"no database"}, {}}});
  std::vector<Future<Value>> futures;
  // The first submit starts the worker; once its initializer has failed, later
  // submits are refused at once instead of being accepted and cancelled.
  futures.push_back(pool->call("testing.double", 0));
  for (int i = 1; i < 3; ++i) {
    try {
      futures.push_back(pool->call("testing.double", i));
    } catch (const troupe::InitializerError&) {
      EXPECT_THROW(pool->check(), troupe::InitializerError);
    }
  }
  try {
    futures[0].get(kPatience);
    ADD_FAILURE() << "get() did not throw";
  } catch (const troupe::InitializerError& e) {
    EXPECT_NE(troupe::nested_cause(e), nullptr);  // the initializer's own error
    EXPECT_THAT(troupe::describe_exception(std::current_exception()), HasSubstr("no database"));
  }
  std::set<std::uint64_t> listed;
  for (const auto& c : pool->cancelled_tasks()) {
    listed.insert(c.id);
  }
  for (const auto& f : futures) {
    ASSERT_TRUE(f.wait(kPatience));
    EXPECT_EQ(f.state(), FutureState::cancelled);
    EXPECT_THROW(f.get(0s), troupe::InitializerError);
    EXPECT_TRUE(listed.contains(f.id())) << f.id();
  }
  EXPECT_THROW(pool->call("testing.double", 1), troupe::InitializerError);
  EXPECT_THROW(pool->submit_chunk("testing.double", items_of({1})), troupe::BrokenPoolError);
  EXPECT_THROW(pool->check(), troupe::InitializerError);
}

TYPED_TEST(ExecutorContract, InitializerFailingOnOneLaterWorkerBreaksThePoolWhenItStarts) {
  auto pool = this->make({.max_workers = 2, .initializer = Call{"testing.fail_on_worker", {1}, {}}});
  EXPECT_EQ(pool->call("testing.double", 1).get(kPatience), 2);  // worker 0 is healthy
  pool->spawn_workers(2);
  EXPECT_TRUE(eventually([&] {
    try {
      pool->check();
      return false;
    } catch (const troupe::InitializerError& e) {
      return troupe::describe_exception(std::current_exception()).find("worker 1") != std::string::npos;
    }
  }));
  EXPECT_THROW(pool->call("testing.double", 1), troupe::InitializerError);
}

TYPED_TEST(ExecutorContract, BrokenPoolFailsEveryMapItemWithTheBreak) {
  auto pool = this->make({.initializer = Call{"testing.fail_init", {"no database"}, {}}});
  int items = 0;
  // One chunk, accepted before the break: a later chunk's submit would race
  // the break and may throw it from the iterator instead.
  for (const auto& o : troupe::map(*pool, "testing.double", std::vector<int>{1, 2, 3}, {.chunk_size = 3}).outcomes()) {
    expect_outcome_throws<troupe::BrokenPoolError>(o);
    ++items;
  }
  EXPECT_EQ(items, 3);
}

TYPED_TEST(ExecutorContract, FinalizerErrorBreaksThePoolButKeepsDeliveredResults) {
  auto pool = this->make({.finalizer = Call{"testing.fail_fini", {"cannot flush"}, {}}});
  auto delivered = pool->call("testing.double", 1);
  EXPECT_EQ(delivered.get(kPatience), 2);
  pool->shutdown();
  try {
    pool->check();
    ADD_FAILURE() << "check() did not throw";
  } catch (const troupe::FinalizerError& e) {
    EXPECT_NE(troupe::nested_cause(e), nullptr);
    EXPECT_THAT(troupe::describe_exception(std::current_exception()), HasSubstr("cannot flush"));
  }
  EXPECT_EQ(delivered.get(0s), 2);
}

TYPED_TEST(ExecutorContract, TestRunsAReplicaAndPropagatesInitializerErrors) {
  auto bad = this->make({.initializer = Call{"testing.fail_init", {"bad config"}, {}}});
  EXPECT_THROW(bad->test(), troupe::InitializerError);
  auto good = this->make({.initializer = Call{"testing.start_counter", {}, {}}});
  EXPECT_NO_THROW(good->test());
  EXPECT_EQ(good->call("testing.counter").get(kPatience), 1);  // the pool itself was untouched
}

// ---- workers and counters ------------------------------------------------------

TYPED_TEST(ExecutorContract, WorkersStartLazilyUpToMaxWorkers) {
  auto pool = this->make({.max_workers = 2});
  EXPECT_EQ(pool->max_workers(), 2u);
  EXPECT_EQ(pool->workers(), 0u);
  EXPECT_EQ(pool->call("testing.double", 1).get(kPatience), 2);
  EXPECT_GE(pool->workers(), 1u);
  pool->spawn_workers(5);
  EXPECT_TRUE(eventually([&] { return pool->free_workers() == 2; }));
  EXPECT_EQ(pool->workers(), 2u);
  EXPECT_EQ(pool->stats().spawned, 2u);
}

TYPED_TEST(ExecutorContract, EachWorkerRunsItsInitializerBeforeItsTasks) {
  auto pool = this->make({.initializer = Call{"testing.start_counter", {}, {}}});
  EXPECT_EQ(pool->call("testing.counter").get(kPatience), 1);
  EXPECT_EQ(pool->call("testing.counter").get(kPatience), 2);
  auto id = pool->call("testing.worker_id");
  EXPECT_EQ(id.get(kPatience), 0);
  EXPECT_EQ(id.worker_id(), std::optional<std::size_t>(0));
}

TYPED_TEST(ExecutorContract, WorkerRetiresAfterMaxTasksAndIsReplaced) {
  auto pool = this->make({.max_tasks_per_worker = 2, .initializer = Call{"testing.start_counter", {}, {}}});
  std::vector<std::int64_t> counts;
  for (int i = 0; i < 5; ++i) {
    counts.push_back(pool->call("testing.counter").get(kPatience).template get<std::int64_t>());
  }
  EXPECT_EQ(counts, (std::vector<std::int64_t>{1, 2, 1, 2, 1}));  // a fresh worker every two tasks
  EXPECT_TRUE(eventually([&] { return pool->stats().retired.max_tasks >= 2; }));
}

TYPED_TEST(ExecutorContract, IdleWorkersRetireAfterIdleTimeoutDownToMinWorkers) {
  auto pool = this->make({.max_workers = 2, .min_workers = 1, .idle_timeout = 50ms});
  pool->spawn_workers(2);
  EXPECT_TRUE(eventually([&] { return pool->stats().retired.idle_timeout == 1 && pool->workers() == 1; }));
  EXPECT_EQ(pool->call("testing.double", 1).get(kPatience), 2);
  EXPECT_EQ(pool->workers(), 1u);
}

TYPED_TEST(ExecutorContract, StatsCountSubmittedCompletedFailedAndCancelled) {
  auto pool = this->make();
  {
    Occupied occupied(*pool);
    auto victim = pool->call("testing.double", 1);
    ASSERT_TRUE(victim.cancel());
  }
  EXPECT_TRUE(pool->call("testing.double", 1).wait(kPatience));
  EXPECT_TRUE(pool->call("testing.fail", "no").wait(kPatience));
  ASSERT_TRUE(pool->join(kPatience));
  EXPECT_TRUE(eventually([&] { return pool->stats().cancelled == 1; }));
  const auto stats = pool->stats();
  const std::uint64_t fill = troupe::test::kPipelineFill;
  EXPECT_EQ(stats.submitted, 1 + fill + 1 + 2);
  EXPECT_EQ(stats.completed, 1 + fill + 1);  // the blocker returned (false) when released
  EXPECT_EQ(stats.failed, 1u);
  EXPECT_EQ(stats.cancelled, 1u);
  EXPECT_EQ(stats.queued, 0u);
}

TYPED_TEST(ExecutorContract, MapOfNItemsCountsNItemsInStats) {
  auto pool = this->make({.max_workers = 2});
  std::vector<Value> items;
  for (int i = 0; i < 100; ++i) {
    items.emplace_back(i % 25 == 0 ? Value("bad") : Value(i));
  }
  std::size_t seen = 0;
  for (const auto& o : troupe::map(*pool, "testing.double", items, {.chunk_size = 10}).outcomes()) {
    static_cast<void>(o);
    ++seen;
  }
  ASSERT_EQ(seen, 100u);
  const auto stats = pool->stats();
  EXPECT_EQ(stats.submitted, 100u);
  EXPECT_EQ(stats.completed, 96u);
  EXPECT_EQ(stats.failed, 4u);
}

// ---- interrupt_running ----------------------------------------------------

// The kinds end the running task differently (a flag; a killed worker: see
// executor_differences_test.cpp), but on both it ends, queued work runs,
// and the pool goes on.
TYPED_TEST(ExecutorContract, InterruptRunningEndsTheRunningTaskAndLeavesQueuedWorkToRun) {
  auto pool = this->make();
  Marker started;
  auto running = pool->call("testing.announce_then_cancellable_sleep", started.path(), 60'000);
  ASSERT_TRUE(eventually([&] { return started.exists(); }));
  auto queued = pool->call("testing.double", 2);
  pool->interrupt_running();
  ASSERT_TRUE(running.wait(kPatience));
  EXPECT_EQ(queued.get(kPatience), 4);
  EXPECT_EQ(pool->call("testing.double", 3).get(kPatience), 6);
  EXPECT_NO_THROW(pool->check());
}

TYPED_TEST(ExecutorContract, InterruptRunningWithNothingRunningChangesNothing) {
  auto pool = this->make();
  pool->interrupt_running();
  EXPECT_EQ(pool->call("testing.double", 5).get(kPatience), 10);
  ASSERT_TRUE(pool->join(kPatience));
  EXPECT_EQ(pool->stats().failed, 0u);
}

// ---- MapOptions::progress ---------------------------------------------------

// Every snapshot a map's progress callback was handed.
struct Snapshots {
  std::mutex mutex;
  std::vector<troupe::ProgressSnapshot> seen;
  troupe::Progress progress() {
    return troupe::Progress::to_callback(
        [this](const troupe::ProgressSnapshot& s) {
          std::lock_guard lock(mutex);
          seen.push_back(s);
        },
        1ms);
  }
};

TYPED_TEST(ExecutorContract, MapProgressCountsEachItemOkOrFailedAndEndsFinished) {
  auto pool = this->make({.max_workers = 2});
  std::vector<Value> items;
  for (int i = 0; i < 40; ++i) {
    items.emplace_back(i % 10 == 3 ? Value("bad") : Value(i));
  }
  Snapshots snapshots;
  std::size_t yielded = 0;
  for (const auto& o :
       troupe::map(*pool, "testing.double", items, {.chunk_size = 3, .progress = snapshots.progress()}).outcomes()) {
    static_cast<void>(o);
    ++yielded;
  }
  ASSERT_EQ(yielded, 40u);
  std::lock_guard lock(snapshots.mutex);
  ASSERT_FALSE(snapshots.seen.empty());
  const auto& last = snapshots.seen.back();
  EXPECT_TRUE(last.finished);
  EXPECT_EQ(last.label, "map");
  EXPECT_EQ(last.total, 40u);
  EXPECT_EQ(last.ok, 36u);
  EXPECT_EQ(last.failed, 4u);
  EXPECT_EQ(last.done, 40u);
}

TYPED_TEST(ExecutorContract, MapProgressCountsAFailedChunksItemsAsFailed) {
  auto pool = this->make();
  Snapshots snapshots;
  std::vector<Value> items{Value(1), Value(2), Value(3)};
  auto range = troupe::map(*pool, "testing.no_such_task", items, {.chunk_size = 2, .progress = snapshots.progress()});
  std::size_t failed = 0;
  for (const auto& o : range.outcomes()) {
    failed += o.ok() ? 0 : 1;
  }
  EXPECT_EQ(failed, 3u);
  std::lock_guard lock(snapshots.mutex);
  ASSERT_FALSE(snapshots.seen.empty());
  EXPECT_TRUE(snapshots.seen.back().finished);
  EXPECT_EQ(snapshots.seen.back().failed, 3u);
  EXPECT_EQ(snapshots.seen.back().ok, 0u);
}

TYPED_TEST(ExecutorContract, MapProgressOfAnUnsizedInputHasNoTotal) {
  auto pool = this->make();
  CountingInput::State state;
  state.limit = 25;
  Snapshots snapshots;
  std::int64_t sum = 0;
  for (const auto& v :
       troupe::map(*pool, "testing.double", CountingInput(&state), {.progress = snapshots.progress()})) {
    sum += v.template get<std::int64_t>();
  }
  EXPECT_EQ(sum, 2 * (24 * 25 / 2));
  std::lock_guard lock(snapshots.mutex);
  ASSERT_FALSE(snapshots.seen.empty());
  const auto& last = snapshots.seen.back();
  EXPECT_TRUE(last.finished);
  EXPECT_FALSE(last.total.has_value());
  EXPECT_FALSE(last.eta.has_value());
  EXPECT_EQ(last.ok, 25u);
}

}  // namespace
