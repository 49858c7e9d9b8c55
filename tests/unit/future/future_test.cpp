// Future<T> and its producer side (troupe::Promise), without any pool.
#include "troupe/future.hpp"
#include "troupe/promise.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using troupe::FutureState;
using troupe::make_future_pair;

TEST(Future, StartsPendingThenRunsThenHoldsValue) {
  auto [future, promise] = make_future_pair<int>(7);
  EXPECT_EQ(future.state(), FutureState::pending);
  EXPECT_EQ(future.id(), 7u);
  EXPECT_FALSE(future.worker_id().has_value());
  ASSERT_TRUE(promise.try_start(3));
  EXPECT_EQ(future.state(), FutureState::running);
  EXPECT_EQ(future.worker_id(), 3u);
  EXPECT_TRUE(promise.set_value(42));
  EXPECT_EQ(future.state(), FutureState::done);
  EXPECT_TRUE(future.done());
  EXPECT_EQ(future.get(), 42);
  EXPECT_EQ(future.exception(), nullptr);
}

TEST(Future, FailedFutureRethrowsTheTaskException) {
  auto [future, promise] = make_future_pair<std::string>();
  promise.try_start(0);
  promise.set_exception(std::make_exception_ptr(std::invalid_argument("bad input")));
  EXPECT_EQ(future.state(), FutureState::failed);
  EXPECT_THROW(future.get(), std::invalid_argument);
  EXPECT_NE(future.exception(), nullptr);
}

TEST(Future, CompletesExactlyOnceAndKeepsTheFirstResult) {
  auto [future, promise] = make_future_pair<int>();
  EXPECT_TRUE(promise.set_value(1));
  EXPECT_FALSE(promise.set_value(2));
  EXPECT_FALSE(promise.set_exception(std::make_exception_ptr(std::runtime_error("late"))));
  EXPECT_FALSE(promise.set_cancelled());
  EXPECT_EQ(future.get(), 1);
}

TEST(Future, CancelSucceedsWhilePendingAndTheStartIsRefused) {
  auto [future, promise] = make_future_pair<int>();
  EXPECT_TRUE(future.cancel());
  EXPECT_TRUE(future.cancel());  // already cancelled: still true
  EXPECT_EQ(future.state(), FutureState::cancelled);
  EXPECT_FALSE(promise.try_start(0));
  EXPECT_THROW(future.get(), troupe::CancelledError);
  EXPECT_THROW(future.exception(), troupe::CancelledError);
  EXPECT_EQ(future.running_time(), 0ns);
}

TEST(Future, CancelOnRunningSetsTheCooperativeFlagAndReturnsFalse) {
  auto [future, promise] = make_future_pair<void>();
  ASSERT_TRUE(promise.try_start(0));
  EXPECT_FALSE(promise.cancel_flag()->load());
  EXPECT_FALSE(future.cancel());
  EXPECT_TRUE(promise.cancel_flag()->load());
  EXPECT_EQ(future.state(), FutureState::running);
  promise.set_value();
  EXPECT_NO_THROW(future.get());
  EXPECT_FALSE(future.cancel());
}

TEST(Future, CancelOnDoneReturnsFalse) {
  auto [future, promise] = make_future_pair<int>();
  promise.set_value(5);
  EXPECT_FALSE(future.cancel());
  EXPECT_EQ(future.get(), 5);
}

TEST(Future, ProducerCancellationWithCauseThrowsTheCause) {
  auto [future, promise] = make_future_pair<int>();
  std::exception_ptr cause;
  try {
    try {
      throw std::runtime_error("initializer exploded");
    } catch (...) {
      std::throw_with_nested(troupe::InitializerError("pool broken"));
    }
  } catch (...) {
    cause = std::current_exception();
  }
  promise.set_cancelled(cause);
  EXPECT_EQ(future.state(), FutureState::cancelled);
  try {
    future.get();
    FAIL() << "get() returned";
  } catch (const troupe::BrokenPoolError& e) {
    EXPECT_NE(troupe::nested_cause(e), nullptr);
  }
  EXPECT_THROW(future.exception(), troupe::CancelledError);
}

TEST(Future, GetWithZeroTimeoutOnPendingThrowsTimeoutError) {
  auto [future, promise] = make_future_pair<int>();
  EXPECT_THROW(future.get(0ms), troupe::TimeoutError);
  EXPECT_FALSE(future.wait(0ms));
  EXPECT_FALSE(future.wait(1ms));
  promise.set_value(1);
  EXPECT_TRUE(future.wait(0ms));
  EXPECT_EQ(future.get(0ms), 1);
}

TEST(Future, WaitWakesWhenAnotherThreadCompletes) {
  auto [future, promise] = make_future_pair<int>();
  std::thread producer([&, p = std::move(promise)]() mutable {
    p.try_start(1);
    p.set_value(9);
  });
  EXPECT_EQ(future.get(), 9);
  producer.join();
}

TEST(Future, CallbackAddedAfterCompletionRunsAtOnceOnTheCaller) {
  auto [future, promise] = make_future_pair<int>();
  promise.set_value(3);
  std::thread::id ran_on;
  int seen = 0;
  future.add_done_callback([&](const troupe::Future<int>& f) {
    ran_on = std::this_thread::get_id();
    seen = f.get();
  });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_EQ(seen, 3);
}

TEST(Future, CallbacksRunOnceInOrderOnTheCompletingThread) {
  auto [future, promise] = make_future_pair<int>();
  std::vector<int> order;
  std::thread::id completer;
  std::vector<std::thread::id> ran_on;
  for (int i = 0; i < 3; ++i) {
    future.add_done_callback([&, i](const troupe::Future<int>&) {
      order.push_back(i);
      ran_on.push_back(std::this_thread::get_id());
    });
  }
  std::thread producer([&, p = std::move(promise)]() mutable {
    completer = std::this_thread::get_id();
    p.set_value(1);
  });
  producer.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  for (auto id : ran_on) {
    EXPECT_EQ(id, completer);
  }
}

TEST(Future, ThrowingCallbackIsReportedAndLaterCallbacksStillRun) {
  auto [future, promise] = make_future_pair<int>();
  bool second_ran = false;
  future.add_done_callback([](const troupe::Future<int>&) { throw std::runtime_error("callback bug"); });
  future.add_done_callback([&](const troupe::Future<int>&) { second_ran = true; });
  testing::internal::CaptureStderr();
  EXPECT_TRUE(promise.set_value(1));
  const auto err = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(second_ran);
  EXPECT_NE(err.find("callback bug"), std::string::npos) << err;
}

TEST(Future, CallbackOnCancelledFutureRunsAndSeesCancelled) {
  auto [future, promise] = make_future_pair<int>();
  FutureState seen = FutureState::pending;
  future.add_done_callback([&](const troupe::Future<int>& f) { seen = f.state(); });
  EXPECT_TRUE(future.cancel());
  EXPECT_EQ(seen, FutureState::cancelled);
}

// Race: callbacks added from several threads while the producer completes;
// each runs exactly once whichever side wins.
TEST(Future, CallbacksAddedWhileCompletingRunExactlyOnce) {
  for (int round = 0; round < 200; ++round) {
    auto [future, promise] = make_future_pair<int>();
    std::atomic<int> runs{0};
    std::latch go(4);
    std::vector<std::thread> adders;
    for (int t = 0; t < 3; ++t) {
      adders.emplace_back([&, f = future] {
        go.arrive_and_wait();
        for (int i = 0; i < 10; ++i) {
          f.add_done_callback([&](const troupe::Future<int>&) { runs.fetch_add(1); });
        }
      });
    }
    go.arrive_and_wait();
    promise.set_value(round);
    for (auto& t : adders) {
      t.join();
    }
    EXPECT_EQ(runs.load(), 30);
  }
}

// Race: cancel() against try_start(): exactly one wins.
TEST(Future, CancelRacingStartHasExactlyOneWinner) {
  for (int round = 0; round < 500; ++round) {
    auto [future, promise] = make_future_pair<int>();
    std::latch go(2);
    bool cancelled = false;
    std::thread canceller([&, f = future] {
      go.arrive_and_wait();
      cancelled = f.cancel();
    });
    go.arrive_and_wait();
    const bool started = promise.try_start(0);
    canceller.join();
    EXPECT_NE(started, cancelled);
    if (started) {
      promise.set_value(1);
      EXPECT_EQ(future.get(), 1);
      EXPECT_TRUE(future.cancel_requested());  // cancel hit it while running
    } else {
      EXPECT_EQ(future.state(), FutureState::cancelled);
    }
  }
}

TEST(Future, AbandonedPromiseFailsTheFuture) {
  troupe::Future<int> future;
  {
    auto pair = make_future_pair<int>(11);
    future = pair.first;
  }
  EXPECT_EQ(future.state(), FutureState::failed);
  EXPECT_THROW(future.get(), troupe::Error);
}

TEST(Future, DefaultConstructedFutureThrowsUsageError) {
  troupe::Future<int> future;
  EXPECT_FALSE(future.valid());
  EXPECT_THROW(static_cast<void>(future.state()), troupe::UsageError);
}

TEST(Future, PendingAndRunningTimesCoverTheirPhases) {
  auto [future, promise] = make_future_pair<int>();
  std::this_thread::sleep_for(2ms);
  promise.try_start(0);
  std::this_thread::sleep_for(2ms);
  promise.set_value(0);
  EXPECT_GE(future.pending_time(), 2ms);
  EXPECT_GE(future.running_time(), 2ms);
  const auto frozen = future.running_time();
  EXPECT_EQ(future.running_time(), frozen);  // ended: no longer grows
}

TEST(Future, CancelHookRunsOnlyForAUserCancelOfAPendingFuture) {
  auto [future, promise] = make_future_pair<int>();
  int hook_runs = 0;
  promise.on_cancel([&] { ++hook_runs; });
  EXPECT_TRUE(future.cancel());
  EXPECT_TRUE(future.cancel());
  EXPECT_EQ(hook_runs, 1);
  auto [other, other_promise] = make_future_pair<int>();
  other_promise.on_cancel([&] { ++hook_runs; });
  other_promise.set_cancelled();
  EXPECT_EQ(hook_runs, 1);
}

TEST(Future, ConstructorThatThrowsFailsTheFuture) {
  struct Throws {
    explicit Throws(int) { throw std::runtime_error("ctor"); }
  };
  auto [future, promise] = make_future_pair<Throws>();
  EXPECT_TRUE(promise.set_value(1));
  EXPECT_EQ(future.state(), FutureState::failed);
  EXPECT_THROW(future.get(), std::runtime_error);
}

}  // namespace
