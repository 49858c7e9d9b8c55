// ThreadPool behaviour: submission, lifecycle, breaking, shutdown, introspection.
#include "troupe/thread_pool.hpp"

#include <gtest/gtest.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <latch>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/paths.hpp"
#include "support/registry.hpp"
#include "support/sync.hpp"
#include "troupe/cpu_count.hpp"
#include "troupe/registry.hpp"

namespace {

using namespace std::chrono_literals;
using troupe::FutureState;
using troupe::ThreadPool;
using troupe::ThreadPoolOptions;

using troupe::test::Event;
using troupe::test::eventually;
using troupe::test::testing_registry;

TEST(ThreadPool, SubmitRunsCallableWithArguments) {
  ThreadPool pool({.max_workers = 2});
  auto f = pool.submit([](int a, int b) { return a + b; }, 2, 3);
  EXPECT_EQ(f.get(), 5);
  auto v = pool.submit([] {});
  v.get();
  EXPECT_EQ(v.state(), FutureState::done);
}

TEST(ThreadPool, CallableTakingTaskContextSeesItsWorker) {
  ThreadPool pool({.max_workers = 1});
  auto f = pool.submit([](troupe::TaskContext& ctx, int x) { return ctx.worker().id() * 100 + x; }, 7);
  EXPECT_EQ(f.get(), 7u);
  EXPECT_EQ(f.worker_id(), 0u);
}

TEST(ThreadPool, TaskExceptionFailsOnlyItsFuture) {
  ThreadPool pool({.max_workers = 2});
  auto bad = pool.submit([]() -> int { throw std::out_of_range("nope"); });
  auto good = pool.submit([] { return 1; });
  EXPECT_THROW(bad.get(), std::out_of_range);
  EXPECT_EQ(bad.state(), FutureState::failed);
  EXPECT_EQ(good.get(), 1);
}

TEST(ThreadPool, CallRunsPluginTaskByName) {
  ThreadPool pool({.max_workers = 2, .registry = &testing_registry()});
  EXPECT_EQ(pool.call("testing.double", 21).get(), 42);
  EXPECT_EQ(pool.call("testing.echo", troupe::kw("value", "hi")).get(), "hi");
}

TEST(ThreadPool, UnknownPluginTaskYieldsAFailedFuture) {
  ThreadPool pool({.max_workers = 1, .registry = &testing_registry()});
  auto f = pool.call("testing.no_such_task", 1);
  EXPECT_EQ(f.state(), FutureState::failed);
  EXPECT_THROW(f.get(), troupe::UnknownTaskError);
}

TEST(ThreadPool, PluginCallWithoutRegistryIsAUsageError) {
  ThreadPool pool({.max_workers = 1});
  EXPECT_THROW(pool.call("testing.double", 1), troupe::UsageError);
}

TEST(ThreadPool, SubmitChunkCapturesEachItemsOutcome) {
  ThreadPool pool({.max_workers = 1, .registry = &testing_registry()});
  std::vector<troupe::Args> items{{1}, {"not a number"}, {3}};
  auto outcomes = pool.submit_chunk("testing.double", items).get();
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_EQ(outcomes[0].value(), 2);
  EXPECT_FALSE(outcomes[1].ok());
  EXPECT_THROW(outcomes[1].rethrow(), troupe::ArgumentError);
  EXPECT_EQ(outcomes[2].value(), 6);
}

TEST(ThreadPool, WorkersSpawnLazilyUpToMaxWorkers) {
  ThreadPool pool({.max_workers = 3});
  EXPECT_EQ(pool.workers(), 0u);
  Event release;
  std::latch started(3);
  std::vector<troupe::Future<void>> futures;
  for (int i = 0; i < 6; ++i) {
    futures.push_back(pool.submit([&] {
      started.count_down();
      release.wait();
    }));
  }
  started.wait();
  EXPECT_EQ(pool.workers(), 3u);
  EXPECT_EQ(pool.busy_workers(), 3u);
  EXPECT_EQ(pool.pending_tasks(), 3u);
  EXPECT_GE(pool.stats().times_hit_max_workers, 1u);
  release.set();
  for (auto& f : futures) {
    f.get();
  }
  EXPECT_EQ(pool.stats().spawned, 3u);
}

TEST(ThreadPool, IdleWorkerIsReusedInsteadOfStartingAnother) {
  ThreadPool pool({.max_workers = 4});
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(eventually([&] { return pool.workers() == 0 || pool.free_workers() == 1; }));
    pool.submit([] {}).get();
  }
  EXPECT_EQ(pool.stats().spawned, 1u);
}

TEST(ThreadPool, DefaultSizeIsCpuCount) {
  ThreadPool pool;
  EXPECT_EQ(pool.max_workers(), troupe::cpu_count());
}

TEST(ThreadPool, InitializerRunsOncePerWorkerOnThatWorker) {
  std::mutex m;
  std::vector<std::pair<std::size_t, std::thread::id>> inits;
  ThreadPool pool({.max_workers = 2, .initializer = [&](troupe::Worker& w) {
                     std::lock_guard lock(m);
                     inits.emplace_back(w.id(), std::this_thread::get_id());
                     w.emplace<int>(static_cast<int>(w.id()) + 10);
                   }});
  pool.spawn_workers(2);
  std::latch both(2);
  Event release;
  std::vector<troupe::Future<std::pair<int, std::thread::id>>> futures;
  for (int i = 0; i < 2; ++i) {
    futures.push_back(pool.submit([&](troupe::TaskContext& ctx) {
      both.count_down();
      release.wait();
      return std::pair{ctx.worker().get<int>(), std::this_thread::get_id()};
    }));
  }
  both.wait();
  release.set();
  for (auto& f : futures) {
    auto [state, thread] = f.get();
    std::lock_guard lock(m);
    bool found = false;
    for (auto& [id, t] : inits) {
      if (t == thread) {
        EXPECT_EQ(state, static_cast<int>(id) + 10);
        found = true;
      }
    }
    EXPECT_TRUE(found);
  }
  pool.shutdown();
  EXPECT_EQ(inits.size(), 2u);
}

TEST(ThreadPool, PluginInitializerAndFinalizerRunByName) {
  const auto file = std::filesystem::temp_directory_path() / ("troupe_fini_" + std::to_string(::getpid()));
  std::filesystem::remove(file);
  {
    ThreadPool pool({.max_workers = 1,
                     .initializer = troupe::Call{"testing.start_counter", {}, {}},
                     .finalizer = troupe::Call{"testing.write_file", {file.string()}, {}},
                     .registry = &testing_registry()});
    EXPECT_EQ(pool.call("testing.counter").get(), 1);
    EXPECT_EQ(pool.call("testing.counter").get(), 2);
  }
  std::ifstream in(file);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, "0");
  std::filesystem::remove(file);
}

TEST(ThreadPool, InitializerFailureBreaksPoolAndCancelsQueuedTasks) {
  Event gate;
  ThreadPool pool({.max_workers = 1, .initializer = [&](troupe::Worker&) {
                     gate.wait();
                     throw std::runtime_error("no database");
                   }});
  auto a = pool.submit([] { return 1; });
  auto b = pool.submit([] { return 2; });
  gate.set();
  try {
    a.get();
    FAIL() << "a ran";
  } catch (const troupe::InitializerError& e) {
    auto cause = troupe::nested_cause(e);
    ASSERT_NE(cause, nullptr);
    EXPECT_NE(troupe::describe_exception(cause).find("no database"), std::string::npos);
  }
  EXPECT_EQ(a.state(), FutureState::cancelled);
  EXPECT_EQ(b.state(), FutureState::cancelled);
  EXPECT_THROW(b.get(), troupe::BrokenPoolError);
  EXPECT_EQ(pool.cancelled_tasks().size(), 2u);
  EXPECT_THROW(pool.submit([] {}), troupe::BrokenPoolError);
  EXPECT_THROW(pool.check(), troupe::InitializerError);
  EXPECT_THROW(pool.test(), troupe::BrokenPoolError);
}

TEST(ThreadPool, InitializerFailingOnThirdWorkerOnlyBreaksThePool) {
  ThreadPool pool({.max_workers = 3,
                   .initializer = troupe::Call{"testing.fail_on_worker", {2}, {}},
                   .registry = &testing_registry()});
  pool.spawn_workers(3);
  EXPECT_TRUE(eventually([&] {
    try {
      pool.check();
      return false;
    } catch (const troupe::InitializerError& e) {
      return std::string(e.what()).find("worker 2") != std::string::npos;
    }
  }));
  EXPECT_THROW(pool.call("testing.double", 1), troupe::BrokenPoolError);
}

TEST(ThreadPool, FinalizerFailureBreaksPoolButKeepsDeliveredResults) {
  ThreadPool pool({.max_workers = 1,
                   .idle_timeout = 0ns,
                   .finalizer = [](troupe::Worker&) { throw std::runtime_error("flush failed"); },
                   .spin_before_sleep = 0ns});
  auto f = pool.submit([] { return 5; });
  EXPECT_EQ(f.get(), 5);
  EXPECT_TRUE(eventually([&] {
    try {
      pool.check();
      return false;
    } catch (const troupe::FinalizerError&) {
      return true;
    }
  }));
  EXPECT_EQ(f.get(), 5);
  EXPECT_THROW(pool.submit([] {}), troupe::FinalizerError);
}

TEST(ThreadPool, IdleWorkerRetiresAfterTimeoutAndRunsItsFinalizer) {
  std::atomic<int> finalized{0};
  ThreadPool pool({.max_workers = 2,
                   .idle_timeout = 20ms,
                   .finalizer = [&](troupe::Worker&) { finalized.fetch_add(1); },
                   .spin_before_sleep = 0ns});
  pool.submit([] {}).get();
  EXPECT_TRUE(eventually([&] { return pool.workers() == 0; }));
  EXPECT_EQ(finalized.load(), 1);
  EXPECT_EQ(pool.stats().retired.idle_timeout, 1u);
  EXPECT_EQ(pool.submit([] { return 3; }).get(), 3);  // respawns on demand
}

TEST(ThreadPool, MinWorkersSurviveIdleTimeout) {
  ThreadPool pool({.max_workers = 3, .min_workers = 1, .idle_timeout = 10ms, .spin_before_sleep = 0ns});
  pool.spawn_workers(3);
  EXPECT_TRUE(eventually([&] { return pool.stats().retired.idle_timeout == 2; }));
  std::this_thread::sleep_for(50ms);  // generous: more timeouts would have passed
  EXPECT_EQ(pool.workers(), 1u);
}

TEST(ThreadPool, WorkerRetiresAfterMaxTasksAndIsReplacedOnDemand) {
  ThreadPool pool({.max_workers = 1, .max_tasks_per_worker = 2});
  std::set<std::size_t> ids;
  for (int i = 0; i < 6; ++i) {
    ids.insert(pool.submit([](troupe::TaskContext& ctx) { return ctx.worker().id(); }).get());
  }
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_TRUE(eventually([&] { return pool.stats().retired.max_tasks == 3; }));
}

TEST(ThreadPool, QueuedWorkSurvivesMaxTasksRetirement) {
  ThreadPool pool({.max_workers = 1, .max_tasks_per_worker = 1});
  std::vector<troupe::Future<int>> futures;
  for (int i = 0; i < 20; ++i) {
    futures.push_back(pool.submit([i] { return i; }));
  }
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(futures[static_cast<std::size_t>(i)].get(), i);
  }
}

TEST(ThreadPool, QueueLimitFailPolicyThrowsQueueFullError) {
  ThreadPool pool({.max_workers = 1, .queue_limit = 1, .queue_full_policy = troupe::QueueFullPolicy::fail});
  Event release;
  Event running;
  auto busy = pool.submit([&] {
    running.set();
    release.wait();
  });
  running.wait();
  auto queued = pool.submit([] {});
  EXPECT_THROW(pool.submit([] {}), troupe::QueueFullError);
  EXPECT_FALSE(pool.try_submit([] {}).has_value());
  release.set();
  busy.get();
  queued.get();
  EXPECT_TRUE(pool.try_submit([] {}).has_value());
}

TEST(ThreadPool, QueueLimitBlockPolicyWaitsForRoom) {
  ThreadPool pool({.max_workers = 1, .queue_limit = 1});
  Event release;
  Event running;
  auto busy = pool.submit([&] {
    running.set();
    release.wait();
  });
  running.wait();
  auto queued = pool.submit([] { return 1; });
  std::atomic<bool> submitted{false};
  std::thread blocked([&] {
    pool.submit([] { return 2; }).get();
    submitted = true;
  });
  std::this_thread::sleep_for(20ms);  // generous: the blocked submit must still be waiting
  EXPECT_FALSE(submitted.load());
  release.set();
  blocked.join();
  EXPECT_TRUE(submitted.load());
  EXPECT_EQ(queued.get(), 1);
  busy.get();
  EXPECT_EQ(pool.stats().peak_queue, 1u);
}

TEST(ThreadPool, QueueLimitCallerRunsPolicyRunsOnTheSubmitter) {
  ThreadPool pool({.max_workers = 1, .queue_limit = 1, .queue_full_policy = troupe::QueueFullPolicy::caller_runs});
  Event release;
  Event running;
  auto busy = pool.submit([&] {
    running.set();
    release.wait();
  });
  running.wait();
  auto queued = pool.submit([] {});
  auto inline_run = pool.submit([](troupe::TaskContext& ctx) {
    return std::pair{std::this_thread::get_id(), ctx.worker().id()};
  });
  ASSERT_TRUE(inline_run.done());
  EXPECT_EQ(inline_run.get().first, std::this_thread::get_id());
  EXPECT_EQ(inline_run.get().second, ThreadPool::kCallerWorker);
  release.set();
  busy.get();
  queued.get();
}

TEST(ThreadPool, HighPriorityRunsBeforeNormalBeforeLow) {
  ThreadPool pool({.max_workers = 1});
  Event release;
  Event running;
  auto busy = pool.submit([&] {
    running.set();
    release.wait();
  });
  running.wait();
  std::mutex m;
  std::vector<std::string> order;
  auto record = [&](std::string name) {
    std::lock_guard lock(m);
    order.push_back(std::move(name));
  };
  auto low = pool.submit_with({.priority = troupe::Priority::low}, record, "low");
  auto normal = pool.submit(record, "normal");
  auto high = pool.submit_with({.priority = troupe::Priority::high}, record, "high");
  release.set();
  low.get();
  normal.get();
  high.get();
  EXPECT_EQ(order, (std::vector<std::string>{"high", "normal", "low"}));
}

TEST(ThreadPool, WorkerThreadsAreNamedAfterThePool) {
  ThreadPool pool({.max_workers = 1, .name = "io"});
  auto name = pool.submit([] {
                    char buffer[32] = {};
                    pthread_getname_np(pthread_self(), buffer, sizeof(buffer));
                    return std::string(buffer);
                  })
                  .get();
  EXPECT_EQ(name, "troupe:io:0");
}

TEST(ThreadPool, ShutdownLetsQueuedWorkRunByDefault) {
  ThreadPool pool({.max_workers = 1});
  std::vector<troupe::Future<int>> futures;
  for (int i = 0; i < 50; ++i) {
    futures.push_back(pool.submit([i] { return i; }));
  }
  pool.shutdown();
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(futures[static_cast<std::size_t>(i)].state(), FutureState::done);
  }
  EXPECT_EQ(pool.workers(), 0u);
  EXPECT_TRUE(pool.cancelled_tasks().empty());
}

TEST(ThreadPool, ShutdownCancelPendingCancelsQueuedAndFlagsRunning) {
  ThreadPool pool({.max_workers = 1});
  Event running;
  auto busy = pool.submit([&](troupe::TaskContext& ctx) {
    running.set();
    while (!ctx.cancelled()) {
      std::this_thread::sleep_for(1ms);
    }
    return 1;
  });
  running.wait();
  std::vector<troupe::Future<int>> queued;
  for (int i = 0; i < 5; ++i) {
    queued.push_back(pool.submit([i] { return i; }));
  }
  pool.shutdown({.wait = true, .cancel_pending = true});
  EXPECT_EQ(busy.get(), 1);
  for (auto& f : queued) {
    EXPECT_EQ(f.state(), FutureState::cancelled);
    EXPECT_THROW(f.get(), troupe::CancelledError);
  }
  const auto listed = pool.cancelled_tasks();
  ASSERT_EQ(listed.size(), 5u);
  EXPECT_EQ(listed[0].id, queued[0].id());
  EXPECT_EQ(listed[0].task, "<callable>");
  EXPECT_EQ(pool.stats().cancelled, 5u);
}

TEST(ThreadPool, SubmitAfterShutdownThrowsUsageError) {
  ThreadPool pool({.max_workers = 1});
  pool.shutdown();
  pool.shutdown();  // twice is fine
  EXPECT_THROW(pool.submit([] {}), troupe::UsageError);
  EXPECT_THROW(pool.check(), troupe::UsageError);
  EXPECT_THROW(pool.test(), troupe::UsageError);
}

TEST(ThreadPool, ShutdownWaitFromOwnTaskThrowsUsageError) {
  ThreadPool pool({.max_workers = 1});
  auto f = pool.submit([&] { pool.shutdown({.wait = true}); });
  EXPECT_THROW(f.get(), troupe::UsageError);
  auto g = pool.submit([&] { pool.shutdown({.wait = false}); });
  EXPECT_NO_THROW(g.get());
}

TEST(ThreadPool, JoinWaitsForEverythingAndLeavesPoolUsable) {
  ThreadPool pool({.max_workers = 2});
  std::atomic<int> done{0};
  for (int i = 0; i < 100; ++i) {
    pool.submit([&] { done.fetch_add(1); });
  }
  EXPECT_TRUE(pool.join());
  EXPECT_EQ(done.load(), 100);
  EXPECT_EQ(pool.submit([] { return 1; }).get(), 1);
}

TEST(ThreadPool, JoinWithTimeoutReturnsFalseWhileWorkRuns) {
  ThreadPool pool({.max_workers = 1});
  Event release;
  auto f = pool.submit([&] { release.wait(); });
  EXPECT_FALSE(pool.join(5ms));
  release.set();
  EXPECT_TRUE(pool.join(10s));
}

TEST(ThreadPool, JoinWithTheLongestDurationWaits) {
  ThreadPool pool({.max_workers = 1});
  pool.submit([] { std::this_thread::sleep_for(30ms); });
  EXPECT_TRUE(pool.join(std::chrono::hours::max()));
}

TEST(ThreadPool, JoinFromOwnTaskThrowsDeadlockError) {
  ThreadPool pool({.max_workers = 2});
  auto f = pool.submit([&] { return pool.join(); });
  EXPECT_THROW(f.get(), troupe::DeadlockError);
}

TEST(ThreadPool, CancelledPendingTaskNeverRuns) {
  ThreadPool pool({.max_workers = 1});
  Event release;
  Event running;
  auto busy = pool.submit([&] {
    running.set();
    release.wait();
  });
  running.wait();
  std::atomic<bool> ran{false};
  auto victim = pool.submit([&] { ran = true; });
  EXPECT_TRUE(victim.cancel());
  release.set();
  busy.get();
  EXPECT_TRUE(pool.join());
  EXPECT_FALSE(ran.load());
  EXPECT_EQ(pool.stats().cancelled, 1u);
}

TEST(ThreadPool, CancelOnRunningTaskSetsCooperativeFlag) {
  ThreadPool pool({.max_workers = 1, .registry = &testing_registry()});
  auto f = pool.call("testing.cancellable_sleep", 60'000);
  EXPECT_TRUE(eventually([&] { return f.state() == FutureState::running; }));
  EXPECT_FALSE(f.cancel());
  EXPECT_EQ(f.get(), false);  // returned early
}

TEST(ThreadPool, TaskWaitingOnItsOwnPoolDoesNotDeadlock) {
  ThreadPool pool({.max_workers = 1});
  auto outer = pool.submit([&] {
    auto inner = pool.submit([] { return 21; });
    return inner.get() * 2;  // the only worker is busy here: it runs `inner` itself
  });
  EXPECT_EQ(outer.get(), 42);
}

TEST(ThreadPool, BlockingSubmitFromOwnTaskDoesNotDeadlock) {
  ThreadPool pool({.max_workers = 1, .queue_limit = 1});
  auto outer = pool.submit([&] {
    std::vector<troupe::Future<int>> inner;
    for (int i = 0; i < 5; ++i) {
      inner.push_back(pool.submit([i] { return i; }));
    }
    int sum = 0;
    for (auto& f : inner) {
      sum += f.get();
    }
    return sum;
  });
  EXPECT_EQ(outer.get(), 10);
}

TEST(ThreadPool, NestedParallelForRunsInsideThePoolsArena) {
  ThreadPool pool({.max_workers = 2});
  auto f = pool.submit([] {
    std::atomic<long> sum{0};
    tbb::parallel_for(0, 1000, [&](int i) { sum.fetch_add(i); });
    return std::pair{sum.load(), tbb::this_task_arena::max_concurrency()};
  });
  auto [sum, concurrency] = f.get();
  EXPECT_EQ(sum, 499500);
  EXPECT_EQ(concurrency, 2);
}

TEST(ThreadPool, StatsCountCompletedFailedAndSubmitted) {
  ThreadPool pool({.max_workers = 2});
  for (int i = 0; i < 10; ++i) {
    pool.submit([] {});
  }
  for (int i = 0; i < 3; ++i) {
    pool.submit([] { throw std::runtime_error("x"); });
  }
  ASSERT_TRUE(pool.join());
  const auto s = pool.stats();
  EXPECT_EQ(s.submitted, 13u);
  EXPECT_EQ(s.completed, 10u);
  EXPECT_EQ(s.failed, 3u);
  EXPECT_EQ(s.queued, 0u);
  EXPECT_LE(s.live_workers, 2u);
}

TEST(ThreadPool, SubmitMovesMoveOnlyArgumentsIn) {
  ThreadPool pool({.max_workers = 1});
  auto f = pool.submit([](std::unique_ptr<int> p) { return *p + 1; }, std::make_unique<int>(1));
  EXPECT_EQ(f.get(), 2);
  auto g =
      pool.submit([](troupe::TaskContext&, std::unique_ptr<int> p, std::string s) { return s + std::to_string(*p); },
                  std::make_unique<int>(7), std::string("n="));
  EXPECT_EQ(g.get(), "n=7");
}

TEST(ThreadPool, MoveOnlyResultsReachTheFuture) {
  ThreadPool pool({.max_workers = 1});
  auto f = pool.submit([] { return std::make_unique<int>(42); });
  const std::unique_ptr<int>& result = f.get();
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(*result, 42);
}

TEST(ThreadPool, StatsCountATaskBeforeItsFutureCompletes) {
  ThreadPool pool({.max_workers = 2});
  for (std::uint64_t i = 1; i <= 2000; ++i) {
    auto f = i % 10 == 0 ? pool.submit([]() -> int { throw std::runtime_error("x"); }) : pool.submit([] { return 1; });
    f.wait();
    const auto s = pool.stats();
    ASSERT_EQ(s.completed + s.failed, i) << "task " << i << " completed before it was counted";
    ASSERT_EQ(s.failed, i / 10);
  }
}

TEST(ThreadPool, TestRunsAReplicaAndPropagatesInitializerErrors) {
  ThreadPool healthy({.max_workers = 2, .initializer = [](troupe::Worker&) {
                      }});
  EXPECT_NO_THROW(healthy.test());
  EXPECT_EQ(healthy.stats().spawned, 0u);  // the replica is another pool

  ThreadPool failing({.max_workers = 2, .initializer = [](troupe::Worker&) {
                        throw std::logic_error("bad init");
                      }});
  EXPECT_THROW(failing.test(), troupe::InitializerError);
  ThreadPool failing_fini({.max_workers = 2, .finalizer = [](troupe::Worker&) {
                             throw std::logic_error("bad fini");
                           }});
  EXPECT_THROW(failing_fini.test(), troupe::FinalizerError);
}

TEST(ThreadPool, DestroyingPoolWithFuturesHeldCompletesThem) {
  std::vector<troupe::Future<int>> futures;
  {
    ThreadPool pool({.max_workers = 2});
    for (int i = 0; i < 100; ++i) {
      futures.push_back(pool.submit([i] { return i; }));
    }
  }
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(futures[static_cast<std::size_t>(i)].get(0s), i);
  }
}

TEST(ThreadPool, ShutdownWhileOtherThreadsSubmitEndsEveryAcceptedTask) {
  for (int round = 0; round < 20; ++round) {
    ThreadPool pool({.max_workers = 2});
    std::atomic<int> ran{0};
    std::latch go(4);
    std::vector<std::thread> submitters;
    std::vector<std::vector<troupe::Future<void>>> accepted(3);
    for (int t = 0; t < 3; ++t) {
      submitters.emplace_back([&, t] {
        go.arrive_and_wait();
        for (int i = 0; i < 200; ++i) {
          try {
            accepted[static_cast<std::size_t>(t)].push_back(pool.submit([&] { ran.fetch_add(1); }));
          } catch (const troupe::UsageError&) {
            return;
          }
        }
      });
    }
    go.arrive_and_wait();
    pool.shutdown();
    for (auto& t : submitters) {
      t.join();
    }
    std::size_t total = 0;
    for (auto& list : accepted) {
      for (auto& f : list) {
        EXPECT_TRUE(f.wait(10s));
        EXPECT_EQ(f.state(), FutureState::done);
        ++total;
      }
    }
    EXPECT_EQ(static_cast<std::size_t>(ran.load()), total);
  }
}

TEST(ThreadPool, CancelRacingWorkerStartEndsEachFutureOnce) {
  ThreadPool pool({.max_workers = 2});
  for (int round = 0; round < 200; ++round) {
    std::atomic<int> ran{0};
    auto f = pool.submit([&] { ran.fetch_add(1); });
    const bool cancelled = f.cancel();
    f.wait();
    ASSERT_TRUE(pool.join());
    EXPECT_EQ(ran.load(), cancelled ? 0 : 1);
    EXPECT_EQ(f.state(), cancelled ? FutureState::cancelled : FutureState::done);
  }
}

TEST(ThreadPool, DoneCallbackRunsOnTheWorkerAndAThrowingOneDoesNotKillIt) {
  ThreadPool pool({.max_workers = 1});
  Event release;
  auto f = pool.submit([&] { release.wait(); });
  std::thread::id callback_thread;
  Event called;
  f.add_done_callback([&](const troupe::Future<void>&) {
    callback_thread = std::this_thread::get_id();
    called.set();
  });
  f.add_done_callback([](const troupe::Future<void>&) { throw std::runtime_error("callback bug"); });
  testing::internal::CaptureStderr();
  release.set();
  called.wait();
  f.get();
  auto worker_thread = pool.submit([] { return std::this_thread::get_id(); }).get();
  testing::internal::GetCapturedStderr();
  EXPECT_EQ(callback_thread, worker_thread);
}

TEST(ThreadPool, FuturesReportTimesAndIds) {
  ThreadPool pool({.max_workers = 1});
  Event b_submitted;  // so b is queued before a's 2 ms start, however the submitter is scheduled
  auto a = pool.submit([&] {
    b_submitted.wait();
    std::this_thread::sleep_for(2ms);
  });
  auto b = pool.submit([] {});
  b_submitted.set();
  b.get();
  EXPECT_EQ(a.id() + 1, b.id());
  EXPECT_GE(a.running_time(), 2ms);
  EXPECT_GE(b.pending_time(), 2ms);  // queued behind a
  EXPECT_EQ(b.worker_id(), 0u);
}

// While alive, no new thread can start: the default stack is larger than
// the address space, so pthread_create fails as it does when out of
// threads or memory.
class ThreadStartFailure {
 public:
  ThreadStartFailure() {
    pthread_getattr_default_np(&saved_);
    pthread_attr_t huge;
    pthread_attr_init(&huge);
    pthread_attr_setstacksize(&huge, std::size_t{1} << 47);
    pthread_setattr_default_np(&huge);
    pthread_attr_destroy(&huge);
  }
  ~ThreadStartFailure() {
    pthread_setattr_default_np(&saved_);
    pthread_attr_destroy(&saved_);
  }
  ThreadStartFailure(const ThreadStartFailure&) = delete;
  ThreadStartFailure& operator=(const ThreadStartFailure&) = delete;

 private:
  pthread_attr_t saved_{};
};

// No worker can start, none lives: the submit throws and the task never
// runs, so a retry runs it once.
TEST(ThreadPool, SubmitThatCannotStartAnyWorkerRefusesTheTask) {
  ThreadPool pool({.max_workers = 1});
  std::atomic<int> runs{0};
  {
    ThreadStartFailure no_threads;
    try {
      pool.submit([&] { runs.fetch_add(1); });
      ADD_FAILURE() << "the submit was accepted with no worker to run it";
    } catch (const troupe::Error& e) {
      EXPECT_NE(std::string(e.what()).find("could not start a worker thread"), std::string::npos) << e.what();
    }
  }
  pool.submit([&] { runs.fetch_add(1); }).get(10s);
  EXPECT_TRUE(pool.join(10s));
  EXPECT_EQ(runs.load(), 1);
}

// Another worker cannot start but one lives: the task is accepted and runs once.
TEST(ThreadPool, SubmitThatCannotStartAnotherWorkerIsAcceptedAndRunsOnce) {
  ThreadPool pool({.max_workers = 2});
  Event started;
  Event release;
  auto busy = pool.submit([&] {
    started.set();
    release.wait();
  });
  started.wait();
  std::atomic<int> runs{0};
  troupe::Future<void> task;
  {
    ThreadStartFailure no_threads;
    EXPECT_NO_THROW(task = pool.submit([&] { runs.fetch_add(1); }));
  }
  release.set();
  ASSERT_TRUE(task.valid());
  task.get(10s);
  EXPECT_TRUE(pool.join(10s));
  EXPECT_EQ(runs.load(), 1);
}

TEST(ThreadPool, AbsurdMaxWorkersIsAUsageErrorNamingIt) {
  try {
    ThreadPool pool({.max_workers = std::size_t{1} << 40});
    FAIL() << "accepted max_workers 2^40";
  } catch (const troupe::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("max_workers = 1099511627776"), std::string::npos) << e.what();
  }
}

}  // namespace
