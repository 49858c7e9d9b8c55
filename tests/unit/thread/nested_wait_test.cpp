// A task that waits inside its own pool: it never runs unrelated queued work
// on its stack; the awaited task runs in the waiter when it has not started,
// and otherwise a compensating worker keeps the queue moving (bounded).
#include <gtest/gtest.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <semaphore>
#include <set>
#include <thread>
#include <vector>

#include "support/sync.hpp"
#include "troupe/promise.hpp"
#include "troupe/thread_pool.hpp"
#include "troupe/wait.hpp"

namespace {

using namespace std::chrono_literals;
using troupe::make_future_pair;
using troupe::ThreadPool;
using troupe::test::Event;
using troupe::test::eventually;

TEST(NestedWait, TheAwaitedTaskRunsInTheWaiterWhenItHasNotStarted) {
  ThreadPool pool({.max_workers = 1});
  auto outer = pool.submit([&] {
    auto inner = pool.submit([] { return std::this_thread::get_id(); });
    return inner.get(10s) == std::this_thread::get_id();  // the only worker is busy here
  });
  EXPECT_TRUE(outer.get(10s));
}

// Queued work that takes a lock the waiter holds would self-deadlock on the
// waiter's stack (here it times out instead, so a regression fails).
TEST(NestedWait, AWaiterHoldingALockNeverRunsQueuedWorkThatTakesIt) {
  ThreadPool pool({.max_workers = 1});
  std::binary_semaphore lock{1};
  Event locked;
  auto [gate, open] = make_future_pair<int>();
  auto holder = pool.submit([&, gate = gate] {
    lock.acquire();
    locked.set();
    gate.wait(10s);
    lock.release();
  });
  locked.wait();
  Event taker_started;
  auto taker = pool.submit([&] {
    taker_started.set();
    const bool got = lock.try_acquire_for(3s);
    if (got) {
      lock.release();
    }
    return got;
  });
  taker_started.wait();  // runs while the holder still waits
  open.set_value(1);
  EXPECT_TRUE(taker.get(10s));
  holder.get(10s);
}

// A queued task that waits for what the waiter does after its wait.
TEST(NestedWait, AWaiterNeverRunsQueuedWorkThatWaitsForTheWaitersNextStep) {
  ThreadPool pool({.max_workers = 1});
  std::promise<void> step;
  std::shared_future<void> step_done = step.get_future().share();
  auto outer = pool.submit([&] {
    auto follower = pool.submit([step_done] { return step_done.wait_for(3s) == std::future_status::ready; });
    auto inner = pool.submit([] { return 1; });
    inner.get(10s);
    step.set_value();
    return follower;
  });
  EXPECT_TRUE(outer.get(10s).get(10s));
}

// A short timed wait lasts about its timeout, not as long as queued work.
TEST(NestedWait, ATimedWaitIsNotStretchedByQueuedWork) {
  ThreadPool pool({.max_workers = 1});
  std::binary_semaphore release{0};
  auto outer = pool.submit([&] {
    auto [never, keep] = make_future_pair<int>();
    auto slow = pool.submit([&] { return release.try_acquire_for(3s); });
    const auto start = std::chrono::steady_clock::now();
    const bool done = never.wait(100ms);
    const auto took = std::chrono::steady_clock::now() - start;
    release.release();
    return std::pair{done, took};
  });
  const auto [done, took] = outer.get(10s);
  EXPECT_FALSE(done);
  EXPECT_GE(took, 100ms);
  EXPECT_LT(took, 1500ms);
}

// A waiter on a promise that a queued task sets: the queue keeps moving.
TEST(NestedWait, AWaiterOnAPromiseThatQueuedWorkSetsCompletes) {
  ThreadPool pool({.max_workers = 1});
  auto outer = pool.submit([&] {
    auto [value, promise] = make_future_pair<int>();
    pool.submit([promise = std::move(promise)]() mutable { promise.set_value(42); });
    return value.get(10s);
  });
  EXPECT_EQ(outer.get(10s), 42);
}

TEST(NestedWait, WaitForManyAndAsCompletedInATaskLetQueuedWorkRun) {
  ThreadPool pool({.max_workers = 1});
  auto outer = pool.submit([&] {
    auto [a, set_a] = make_future_pair<int>();
    auto [b, set_b] = make_future_pair<int>();
    pool.submit([p = std::move(set_a)]() mutable { p.set_value(1); });
    const auto split = troupe::wait(std::vector{a}, 3s);
    pool.submit([p = std::move(set_b)]() mutable { p.set_value(2); });
    int sum = 0;
    for (const auto& f : troupe::as_completed(std::vector{b}, 3s)) {
      sum += f.get();
    }
    return split.not_done.empty() && sum == 2;
  });
  EXPECT_TRUE(outer.get(10s));
}

// max_workers blocked waiters get max_workers compensating workers at most;
// past that the wait simply blocks, and no more than max_workers threads
// ever run tasks at once.
TEST(NestedWait, CompensatingWorkersAreBoundedByMaxWorkers) {
  constexpr int kWorkers = 2;
  ThreadPool pool({.max_workers = kWorkers});
  auto [gate, open] = make_future_pair<int>();
  std::atomic<int> running{0};
  std::atomic<int> peak{0};
  std::atomic<int> waiting{0};
  std::mutex ids_mutex;
  std::set<std::thread::id> ids;
  auto blocker = [&, gate = gate] {
    {
      std::lock_guard lock(ids_mutex);
      ids.insert(std::this_thread::get_id());
    }
    const int now = running.fetch_add(1) + 1;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    running.fetch_sub(1);
    waiting.fetch_add(1);
    gate.wait(10s);
  };
  std::vector<troupe::Future<void>> blockers;
  for (int i = 0; i < 2 * kWorkers; ++i) {
    blockers.push_back(pool.submit(blocker));
  }
  ASSERT_TRUE(eventually([&] { return waiting.load() == 2 * kWorkers; }));
  auto probe = pool.submit([] { return 1; });
  EXPECT_FALSE(probe.wait(100ms));  // every worker and every compensating one waits
  open.set_value(1);
  EXPECT_EQ(probe.get(10s), 1);
  for (auto& f : blockers) {
    f.get(10s);
  }
  EXPECT_LE(peak.load(), kWorkers);
  EXPECT_EQ(ids.size(), 2u * kWorkers);
}

// A compensating worker runs tasks in an arena of max_workers slots too.
TEST(NestedWait, NestedParallelForComposesOnACompensatingWorker) {
  ThreadPool pool({.max_workers = 2});
  Event release;
  auto busy = pool.submit([&] { release.wait(); });
  auto outer = pool.submit([&] {
    auto [result, promise] = make_future_pair<std::pair<long, int>>();
    pool.submit([promise = std::move(promise)]() mutable {
      std::atomic<long> sum{0};
      tbb::parallel_for(0, 1000, [&](int i) { sum.fetch_add(i); });
      promise.set_value(sum.load(), tbb::this_task_arena::max_concurrency());
    });
    return result.get(10s);  // both workers are taken: a compensating one runs it
  });
  const auto [sum, concurrency] = outer.get(10s);
  release.set();
  EXPECT_EQ(sum, 499500);
  EXPECT_EQ(concurrency, 2);
}

TEST(NestedWait, BlockingSubmitFromOwnTaskRunsThatSubmissionItself) {
  ThreadPool pool({.max_workers = 1, .queue_limit = 1});
  Event outer_started;
  Event go;
  std::atomic<bool> other_ran{false};
  auto outer = pool.submit([&] {
    outer_started.set();
    go.wait();
    auto mine = pool.submit([] { return std::this_thread::get_id(); });  // the queue is full
    return mine.done() && !other_ran.load() && mine.get() == std::this_thread::get_id();
  });
  outer_started.wait();
  auto other = pool.submit([&] { other_ran.store(true); });  // fills the queue
  go.set();
  EXPECT_TRUE(outer.get(10s));
  other.get(10s);
}

}  // namespace
