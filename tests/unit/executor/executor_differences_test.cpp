// Where ThreadPool and ProcessPool differ on purpose (docs/semantics.md,
// "Where the two kinds differ on purpose"): each difference tested on the
// kind it concerns, so a change that erases or widens one shows up here.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "troupe/errors.hpp"
#include "troupe/map.hpp"
#include "troupe/process_errors.hpp"
#include "unit/executor/executor_kinds.hpp"

namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using troupe::Future;
using troupe::FutureState;
using troupe::ProcessPool;
using troupe::ThreadPool;
using troupe::Value;
using troupe::test::eventually;
using troupe::test::kPatience;
using troupe::test::Marker;
using troupe::test::PoolSpec;
using troupe::test::ProcessKind;
using troupe::test::ThreadKind;

template <class Pool>
concept RunsCppCallables = requires(Pool& pool) {
  pool.submit([] { return 1; });
};

TEST(ExecutorDiffersOnPurpose, CppCallablesRunOnlyOnThreadPools) {
  static_assert(RunsCppCallables<ThreadPool>);
  static_assert(!RunsCppCallables<ProcessPool>, "a process pool has no C++ callables: its workers are other processes");
  ThreadPool pool(ThreadKind::options({}));
  EXPECT_EQ(pool.submit([](int x) { return x + 1; }, 41).get(kPatience), 42);
  EXPECT_EQ(troupe::map_all(
                pool, [](int x) { return x * 2; }, std::vector<int>{1, 2, 3})
                .to_vector(),
            (std::vector<int>{2, 4, 6}));
}

TEST(ExecutorDiffersOnPurpose, CallerRunsRunsOnTheSubmitterOnThreadPools) {
  PoolSpec spec{.queue_limit = 1, .queue_full_policy = troupe::QueueFullPolicy::caller_runs};
  ThreadPool pool(ThreadKind::options(spec));
  auto blocker = pool.call("testing.cancellable_sleep", 60'000);
  ASSERT_TRUE(eventually([&] { return blocker.state() == FutureState::running; }));
  auto queued = pool.call("testing.double", 1);
  auto ran_here = pool.call("testing.double", 2);
  EXPECT_TRUE(ran_here.done());  // already done when submit returned
  EXPECT_EQ(ran_here.worker_id(), std::optional<std::size_t>(ThreadPool::kCallerWorker));
  EXPECT_EQ(ran_here.get(0s), 4);
  blocker.cancel();
  EXPECT_EQ(queued.get(kPatience), 2);
}

TEST(ExecutorDiffersOnPurpose, CallerRunsIsRefusedOnProcessPools) {
  PoolSpec spec{.queue_limit = 1, .queue_full_policy = troupe::QueueFullPolicy::caller_runs};
  try {
    ProcessKind::make(spec);
    ADD_FAILURE() << "caller_runs was accepted";
  } catch (const troupe::UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("caller_runs"));  // names the option it refuses
  }
}

TEST(ExecutorDiffersOnPurpose, TrySubmitNeverBlocksOnThreadPools) {
  PoolSpec spec{.queue_limit = 1};
  ThreadPool pool(ThreadKind::options(spec));
  troupe::test::Event release;
  auto blocker = pool.submit([&] { release.wait(); });
  ASSERT_TRUE(eventually([&] { return blocker.state() == FutureState::running; }));
  auto queued = pool.try_submit([] { return 1; });
  ASSERT_TRUE(queued.has_value());
  EXPECT_FALSE(pool.try_submit([] { return 2; }).has_value());  // full: nullopt, no wait
  release.set();
  EXPECT_EQ(queued->get(kPatience), 1);
}

TEST(ExecutorDiffersOnPurpose, DoneCallbacksRunOnTheCompletingWorkerOnThreadPools) {
  ThreadPool pool(ThreadKind::options({}));
  std::thread::id task_thread;
  std::atomic<bool> called{false};
  std::thread::id callback_thread;
  troupe::test::Event release;
  auto future = pool.submit([&] {
    task_thread = std::this_thread::get_id();
    release.wait();
  });
  future.add_done_callback([&](const Future<void>&) {
    callback_thread = std::this_thread::get_id();
    called = true;
  });
  release.set();
  ASSERT_TRUE(eventually([&] { return called.load(); }));
  EXPECT_EQ(callback_thread, task_thread);
}

TEST(ExecutorDiffersOnPurpose, DoneCallbacksRunOnTheReactorThreadOnProcessPools) {
  auto pool = ProcessKind::make({.max_workers = 2});
  std::mutex mutex;
  std::set<std::thread::id> threads;
  int calls = 0;
  std::vector<Future<Value>> futures;
  for (int i = 0; i < 4; ++i) {
    futures.push_back(pool->call("testing.sleep", 20));
    futures.back().add_done_callback([&](const Future<Value>&) {
      std::lock_guard lock(mutex);
      threads.insert(std::this_thread::get_id());
      ++calls;
    });
  }
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mutex);
    return calls == 4;
  }));
  std::lock_guard lock(mutex);
  // Both workers' results arrive through the pool's one reactor thread.
  EXPECT_EQ(threads.size(), 1u);
  EXPECT_FALSE(threads.contains(std::this_thread::get_id()));
}

TEST(ExecutorDiffersOnPurpose, ACrashingTaskCostsOnlyItsWorkerOnProcessPools) {
  auto pool = ProcessKind::make({.max_workers = 2});
  auto fine = pool->call("testing.double", 1);
  auto crashing = pool->call("testing.abort");
  EXPECT_THROW(crashing.get(kPatience), troupe::WorkerCrashedError);
  EXPECT_EQ(fine.get(kPatience), 2);
  EXPECT_EQ(pool->call("testing.double", 2).get(kPatience), 4);
  EXPECT_NO_THROW(pool->check());
}

// A process pool pipelines frames to a busy worker; a future counts as
// running once its frame is sent, so cancel() then only sets its flag. A
// thread pool's queued task stays pending until a worker takes it.
TEST(ExecutorDiffersOnPurpose, ASentButUnstartedFutureIsRevokedOnProcessPools) {
  auto pool = ProcessKind::make({});
  auto blocker = pool->call("testing.cancellable_sleep", 60'000);
  ASSERT_TRUE(eventually([&] { return blocker.state() == FutureState::running && pool->busy_workers() == 1; }));
  auto next = pool->call("testing.double", 1);
  // Sent to the busy worker, so it counts as running: cancel() cannot promise
  // it never runs, but the revoke it sends makes the worker skip it.
  ASSERT_TRUE(eventually([&] { return next.state() == FutureState::running; }));
  EXPECT_FALSE(next.cancel());
  EXPECT_FALSE(blocker.done());
  blocker.cancel();
  EXPECT_THROW(next.get(kPatience), troupe::CancelledError);
  ASSERT_TRUE(pool->join(kPatience));
}

TEST(ExecutorDiffersOnPurpose, AQueuedFutureStaysPendingBehindABusyWorkerOnThreadPools) {
  auto pool = ThreadKind::make({});
  auto blocker = pool->call("testing.cancellable_sleep", 60'000);
  ASSERT_TRUE(eventually([&] { return blocker.state() == FutureState::running && pool->busy_workers() == 1; }));
  auto next = pool->call("testing.double", 1);
  EXPECT_EQ(next.state(), FutureState::pending);
  EXPECT_TRUE(next.cancel());
  blocker.cancel();
  ASSERT_TRUE(pool->join(kPatience));
}

TEST(ExecutorDiffersOnPurpose, PluginCallsNeedARegistryOnThreadPools) {
  ThreadPool pool({.max_workers = 1});
  EXPECT_THROW(pool.call("testing.double", 1), troupe::UsageError);
}

TEST(ExecutorDiffersOnPurpose, APluginsOwnExceptionArrivesAsItselfOnThreadPools) {
  auto pool = ThreadKind::make({});
  try {
    pool->call("testing.fail", "outer trouble").get(kPatience);
    ADD_FAILURE() << "get() did not throw";
  } catch (const troupe::RemoteError&) {
    ADD_FAILURE() << "a thread pool runs the plugin in the host: nothing is remote";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "outer trouble");
  }
}

TEST(ExecutorDiffersOnPurpose, APluginsOwnExceptionArrivesAsARemoteErrorOnProcessPools) {
  auto pool = ProcessKind::make({});
  try {
    pool->call("testing.fail", "outer trouble").get(kPatience);
    ADD_FAILURE() << "get() did not throw";
  } catch (const troupe::RemoteError& e) {
    EXPECT_THAT(e.remote_type(), HasSubstr("TestingError"));
    EXPECT_EQ(e.remote_message(), "outer trouble");
    EXPECT_FALSE(e.stack_trace().empty());
  }
}

TEST(ExecutorDiffersOnPurpose, RunningTasksFinishWhenAThreadPoolBreaks) {
  auto pool = ThreadKind::make({.max_workers = 2, .initializer = troupe::Call{"testing.fail_on_worker", {1}, {}}});
  auto running = pool->call("testing.cancellable_sleep", 60'000);
  ASSERT_TRUE(eventually([&] { return running.state() == FutureState::running; }));
  pool->spawn_workers(2);
  ASSERT_TRUE(eventually([&] {
    try {
      pool->check();
      return false;
    } catch (const troupe::InitializerError&) {
      return true;
    }
  }));
  EXPECT_EQ(running.state(), FutureState::running);  // the break leaves it alone
  running.cancel();
  EXPECT_EQ(running.get(kPatience), false);
}

TEST(ExecutorDiffersOnPurpose, WorkInFlightIsCancelledWhenAProcessPoolBreaks) {
  auto pool = ProcessKind::make({.max_workers = 2, .initializer = troupe::Call{"testing.fail_on_worker", {1}, {}}});
  auto in_flight = pool->call("testing.cancellable_sleep", 60'000);
  ASSERT_TRUE(eventually([&] { return pool->busy_workers() == 1; }));
  pool->spawn_workers(2);
  // Its worker is killed with the pool; the frame it had sent ends cancelled.
  EXPECT_THROW(in_flight.get(kPatience), troupe::InitializerError);
  EXPECT_EQ(in_flight.state(), FutureState::cancelled);
  const auto listed = pool->cancelled_tasks();
  EXPECT_TRUE(std::any_of(listed.begin(), listed.end(), [&](const auto& c) { return c.id == in_flight.id(); }));
}

TEST(ExecutorDiffersOnPurpose, JoinFromItsOwnTaskIsADeadlockErrorOnThreadPools) {
  ThreadPool pool(ThreadKind::options({}));
  auto f = pool.submit([&] { return pool.join(); });
  EXPECT_THROW(f.get(kPatience), troupe::DeadlockError);
}

TEST(ExecutorDiffersOnPurpose, JoinFromADoneCallbackIsADeadlockErrorOnProcessPools) {
  auto pool = ProcessKind::make({});
  std::atomic<bool> refused{false};
  std::atomic<bool> called{false};
  Marker started;
  auto f = pool->call("testing.announce_then_cancellable_sleep", started.path(), 60'000);
  // Started, so cancel() only sets its flag and the worker's answer completes
  // it on the reactor (a pending one would run the callback here, on the
  // cancelling thread).
  ASSERT_TRUE(eventually([&] { return started.exists() && f.state() == FutureState::running; }));
  f.add_done_callback([&](const Future<Value>&) {
    try {
      pool->join();
    } catch (const troupe::DeadlockError&) {
      refused = true;
    }
    called = true;
  });
  f.cancel();
  ASSERT_TRUE(eventually([&] { return called.load(); }));
  EXPECT_TRUE(refused.load());
}

// ---- interrupt_running: a flag on threads, a killed worker on processes --------

TEST(ExecutorDiffersOnPurpose, InterruptRunningSetsTheCooperativeFlagOnThreadPools) {
  auto pool = ThreadKind::make({.max_workers = 2});
  Marker first;
  Marker second;
  auto a = pool->call("testing.announce_then_cancellable_sleep", first.path(), 60'000);
  auto b = pool->call("testing.announce_then_cancellable_sleep", second.path(), 60'000);
  ASSERT_TRUE(eventually([&] { return first.exists() && second.exists(); }));
  pool->interrupt_running();
  // Each saw its flag and returned early: the task decides how it ends.
  EXPECT_EQ(a.get(kPatience), false);
  EXPECT_EQ(b.get(kPatience), false);
  EXPECT_TRUE(a.cancel_requested());
  EXPECT_EQ(pool->call("testing.double", 2).get(kPatience), 4);
}

TEST(ExecutorDiffersOnPurpose, InterruptRunningKillsTheWorkerOfAHungTaskOnProcessPools) {
  auto options = ProcessKind::options({.max_workers = 1});
  // One crash would break it: the interrupt must not count as one.
  options.crash_storm = {.max = 1, .within = 60s};
  ProcessPool pool({troupe::test::plugin_path("testing")}, options);
  ASSERT_EQ(pool.call("testing.double", 1).get(kPatience), 2);
  const auto first_pid = pool.worker_pids().at(0);
  for (int round = 0; round < 2; ++round) {
    auto hung = pool.call("testing.hang");  // ignores its cancel flag
    ASSERT_TRUE(eventually([&] { return hung.state() == FutureState::running && pool.busy_workers() == 1; }));
    ASSERT_TRUE(eventually([&] {
      pool.interrupt_running();  // until the worker is in the frame, not just sent it
      return hung.wait(10ms);
    }));
    try {
      hung.get();
      FAIL() << "an interrupted task returned";
    } catch (const troupe::CancelledError& e) {
      EXPECT_THAT(e.what(), HasSubstr("'testing.hang'"));
      EXPECT_THAT(e.what(), HasSubstr("was interrupted: it was running when interrupt_running() killed the worker"));
    }
  }
  EXPECT_EQ(pool.call("testing.double", 3).get(kPatience), 6);
  EXPECT_NO_THROW(pool.check());
  EXPECT_NE(pool.worker_pids().at(0), first_pid);
  const auto stats = pool.stats();
  EXPECT_EQ(stats.retired.crash, 0u);
  EXPECT_TRUE(stats.crashes_by_cause.empty());
}

TEST(ExecutorDiffersOnPurpose, InterruptRunningFailsTheRestOfAChunkOnProcessPools) {
  auto pool = ProcessKind::make({});
  Marker before;
  Marker running;
  Marker after;
  std::vector<troupe::Args> items{{before.path(), 0}, {running.path(), 60'000}, {after.path(), 0}};
  auto chunk = pool->submit_chunk("testing.announce_then_cancellable_sleep", items);
  ASSERT_TRUE(eventually([&] { return running.exists(); }));
  pool->interrupt_running();
  const auto outcomes = chunk.get(kPatience);
  ASSERT_EQ(outcomes.size(), 3u);
  // The first item ended; its result arrived or died in the worker's send batch.
  if (!outcomes[0].ok()) {
    EXPECT_THROW(outcomes[0].rethrow(), troupe::CancelledError);
  }
  for (const auto& [i, says] :
       {std::pair<std::size_t, const char*>{1, "item 1 of 'testing.announce_then_cancellable_sleep'"},
        std::pair<std::size_t, const char*>{2, "item 2 of 'testing.announce_then_cancellable_sleep'"}}) {
    ASSERT_FALSE(outcomes[i].ok());
    try {
      outcomes[i].rethrow();
    } catch (const troupe::CancelledError& e) {
      EXPECT_THAT(e.what(), HasSubstr(says));
      EXPECT_THAT(e.what(), HasSubstr(i == 1 ? "it was running" : "before it started"));
    }
  }
  EXPECT_FALSE(after.exists());
  EXPECT_EQ(pool->call("testing.double", 4).get(kPatience), 8);
}

}  // namespace
