// MpiPool and serve() on a real MPI job: this binary runs under
// `mpirun --oversubscribe -np 3`; rank 0 runs the tests, ranks 1 and 2 serve
// the pools below (main() at the end).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>

#include "mpi/all_sent.hpp"
#include "mpi/mpi_test_main.hpp"
#include "support/paths.hpp"
#include "support/sync.hpp"
#include "troupe/engine.hpp"
#include "troupe/errors.hpp"
#include "troupe/map.hpp"
#include "troupe/mpi.hpp"
#include "troupe/mpi_pool.hpp"
#include "troupe/process_errors.hpp"
#include "troupe/runner.hpp"

namespace troupe {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

std::vector<std::filesystem::path> plugins() {
  return {test::plugin_path("testing")};
}

MpiPoolOptions process_pool() {
  return {.local = ProcessPoolOptions{.max_workers = 2, .startup_timeout = 30s}, .name = "process"};
}
MpiPoolOptions thread_pool() {
  return {.local = ThreadPoolOptions{.max_workers = 2}, .name = "thread"};
}
// Rank 1 runs three workers, rank 2 one: a rank three times slower.
MpiPoolOptions uneven_pool(int rank) {
  return {.local = ThreadPoolOptions{.max_workers = rank == 2 ? 1u : 3u}, .frames_per_worker = 1, .name = "uneven"};
}
MpiPoolOptions broken_init_pool() {
  return {.local = ProcessPoolOptions{.max_workers = 1,
                                      .initializer = Call{"testing.fail_init", {"boom at start"}, {}},
                                      .startup_timeout = 30s},
          .name = "broken-init"};
}
MpiPoolOptions small_queue_pool() {
  return {.local = ThreadPoolOptions{.max_workers = 1},
          .frames_per_worker = 1,
          .queue_limit = 2,
          .queue_full_policy = QueueFullPolicy::fail,
          .name = "small-queue"};
}
MpiPoolOptions engine_pool() {
  return {.local = ThreadPoolOptions{.max_workers = 1}, .name = "cluster"};
}

std::vector<MpiPoolOptions> served_pools(int rank) {
  return {process_pool(), thread_pool(), uneven_pool(rank), broken_init_pool(), small_queue_pool(), engine_pool()};
}

template <class E>
E caught(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const E& e) {
    return e;
  } catch (...) {
    ADD_FAILURE() << "another error: " << describe_exception(std::current_exception());
  }
  throw std::logic_error("unreachable");
}

TEST(MpiPool, MapRunsOnTheServingRanksInInputOrder) {
  for (const auto& options : {process_pool(), thread_pool()}) {
    MpiPool pool(plugins(), options);
    EXPECT_EQ(pool.ranks(), 2);
    EXPECT_EQ(pool.max_workers(), 4u);
    std::vector<std::int64_t> xs(5000);
    for (std::size_t i = 0; i < xs.size(); ++i) {
      xs[i] = static_cast<std::int64_t>(i);
    }
    std::size_t i = 0;
    for (const Value& v : map(pool, "testing.double", xs, {.chunk_size = 100})) {
      ASSERT_EQ(v.get<std::int64_t>(), 2 * xs[i]) << options.name;
      ++i;
    }
    EXPECT_EQ(i, xs.size());
    const auto stats = pool.stats();
    EXPECT_EQ(stats.submitted, xs.size());
    EXPECT_EQ(stats.completed, xs.size());
    const auto ranks = pool.rank_stats();
    ASSERT_EQ(ranks.size(), 2u);
    EXPECT_EQ(ranks[0].rank, 1);
    EXPECT_EQ(ranks[1].rank, 2);
    EXPECT_GT(ranks[0].stats.completed + ranks[1].stats.completed, 0u);
  }
}

TEST(MpiPool, CallsSpreadOverEveryRankAndNameItAsTheirWorker) {
  MpiPool pool(plugins(), thread_pool());
  std::vector<Future<Value>> futures;
  for (int i = 0; i < 16; ++i) {
    futures.push_back(pool.call("testing.sleep", 20));
  }
  std::map<std::size_t, int> by_rank;
  for (auto& f : futures) {
    EXPECT_EQ(f.get(), 20);
    ++by_rank[f.worker_id().value()];
  }
  EXPECT_EQ(by_rank.size(), 2u);
  EXPECT_TRUE(by_rank.contains(1) && by_rank.contains(2));
}

// The ranks take turns frame by frame, however frames reach rank 0's MPI
// thread: alone, or two at once (submitted by a done callback, which runs on
// that thread, so no dispatch comes between them). The turn moved once per
// dispatch: ranks 1, 2, then 1 and 2 together, then 2 again.
TEST(MpiPool, FramesAreDealtInTurnHoweverTheyArrive) {
  MpiPool pool(plugins(), thread_pool());  // 2 ranks x 2 workers x 2 frames
  const auto sleeper = [&] {
    return pool.call("testing.cancellable_sleep", 20000);
  };
  std::vector<Future<Value>> frames{sleeper()};
  ASSERT_TRUE(test::all_sent(frames));
  test::Event pair_submitted;
  std::vector<Future<Value>> pair;
  frames.push_back(pool.call("testing.sleep", 200));
  frames.back().add_done_callback([&](const Future<Value>&) {
    pair.push_back(sleeper());
    pair.push_back(sleeper());
    pair_submitted.set();
  });
  ASSERT_TRUE(test::eventually([&] { return pair_submitted.is_set(); }, 30s));
  frames.insert(frames.end(), pair.begin(), pair.end());
  ASSERT_TRUE(test::all_sent(frames));
  frames.push_back(sleeper());
  ASSERT_TRUE(test::all_sent(frames));
  std::vector<std::size_t> ranks;
  for (const auto& f : frames) {
    ranks.push_back(f.worker_id().value());
  }
  EXPECT_EQ(ranks, (std::vector<std::size_t>{1, 2, 1, 2, 1}));
  for (auto& f : frames) {
    f.cancel();
    ASSERT_TRUE(f.wait(30s));
  }
}

// Self-scheduling: the slow rank is sent less, so both end together. A
// static split would leave rank 2 with half the calls and a third of the
// workers: it would end about twice as late as rank 1's last call.
TEST(MpiPool, UnevenRanksFinishWithinAFifthOfEachOther) {
  MpiPool pool(plugins(), uneven_pool(0));
  std::mutex mutex;
  std::map<std::size_t, std::chrono::steady_clock::time_point> last;
  std::map<std::size_t, int> count;
  const auto start = std::chrono::steady_clock::now();
  std::vector<Future<Value>> futures;
  for (int i = 0; i < 160; ++i) {
    futures.push_back(pool.call("testing.sleep", 15));
    futures.back().add_done_callback([&](const Future<Value>& f) {
      std::lock_guard lock(mutex);
      last[f.worker_id().value()] = std::chrono::steady_clock::now();
      ++count[f.worker_id().value()];
    });
  }
  ASSERT_TRUE(pool.join(60s));
  std::lock_guard lock(mutex);
  ASSERT_EQ(last.size(), 2u);
  const double t1 = std::chrono::duration<double>(last[1] - start).count();
  const double t2 = std::chrono::duration<double>(last[2] - start).count();
  EXPECT_LE(std::abs(t1 - t2), 0.2 * std::max(t1, t2)) << "rank 1 ended at " << t1 << " s, rank 2 at " << t2 << " s";
  EXPECT_GT(count[1], 2 * count[2]) << count[1] << " calls on rank 1, " << count[2] << " on rank 2";
}

TEST(MpiPool, ACrashOnAServingRankFailsThatTaskOnlyAndNamesTheRank) {
  MpiPool pool(plugins(), process_pool());
  auto crash = pool.call("testing.segfault");
  const auto error = caught<WorkerCrashedError>(crash.exception());
  EXPECT_EQ(error.signal(), SIGSEGV);
  EXPECT_THAT(error.what(), HasSubstr("on rank "));
  EXPECT_EQ(error.task(), "testing.segfault");
  EXPECT_EQ(error.key(), crash.id());
  EXPECT_EQ(pool.call("testing.echo", "still here").get(), "still here");
  // A crash inside a chunk fails its item; the others keep their values.
  auto chunk = pool.submit_chunk("testing.echo", {{1}, {2}}).get();
  EXPECT_EQ(chunk.at(1).value(), 2);
  pool.check();
}

TEST(MpiPool, ErrorsArriveWithTheTypesAPoolOnOneHostGives) {
  for (const auto& options : {process_pool(), thread_pool()}) {
    MpiPool pool(plugins(), options);
    caught<UnknownTaskError>(pool.call("testing.no_such_task").exception());
    caught<ArgumentError>(pool.call("testing.double", "not a number").exception());
    const auto remote = caught<RemoteError>(pool.call("testing.fail", "outer", "inner").exception());
    EXPECT_THAT(remote.what(), HasSubstr("outer"));
    const auto chain = exception_chain(pool.call("testing.fail", "outer", "inner").exception());
    ASSERT_GE(chain.size(), 2u) << options.name;
    EXPECT_EQ(chain.back().message, "inner") << options.name;
  }
}

TEST(MpiPool, ATimeLimitKillsTheTaskOnItsRank) {
  MpiPool pool(plugins(), process_pool());
  auto f = pool.submit_call(Call{"testing.hang", {}, {}}, 300ms);
  const auto error = caught<TaskTimeoutError>(f.exception(30s));
  EXPECT_EQ(error.timeout(), 300ms);
  // As on one host, an item before the one that timed out may die unreported
  // with the worker (WorkerCrashedError).
  auto items = pool.submit_chunk("testing.sleep", {{1}, {5000}}, 300ms).get();
  caught<TaskTimeoutError>(items.at(1).error());
  EXPECT_EQ(pool.call("testing.echo", 7).get(), 7);
}

TEST(MpiPool, ATimeLimitOnThreadRanksIsRefused) {
  MpiPool pool(plugins(), thread_pool());
  EXPECT_THROW(pool.submit_call(Call{"testing.echo", {1}, {}}, 1s), UsageError);
}

TEST(MpiPool, CancelledQueuedWorkNeverRunsAndIsListed) {
  MpiPool pool(plugins(), thread_pool());  // 2 ranks x 2 workers x 2 frames = 8 held on the ranks
  std::vector<Future<Value>> running;
  for (int i = 0; i < 8; ++i) {
    running.push_back(pool.call("testing.sleep", 300));
  }
  std::vector<Future<Value>> queued;
  for (int i = 0; i < 10; ++i) {
    queued.push_back(pool.call("testing.echo", i));
  }
  std::size_t cancelled = 0;
  for (auto& f : queued) {
    cancelled += f.cancel() ? 1 : 0;
  }
  ASSERT_TRUE(pool.join(30s));
  EXPECT_EQ(pool.cancelled_tasks().size(), cancelled);
  EXPECT_EQ(pool.stats().cancelled, cancelled);
  for (auto& f : queued) {
    EXPECT_TRUE(f.done());
  }
  EXPECT_GT(cancelled, 0u);
}

TEST(MpiPool, CancelOfSentWorkReachesTheRunningTask) {
  MpiPool pool(plugins(), thread_pool());
  const auto started = std::filesystem::temp_directory_path() / ("troupe-mpi-started-" + std::to_string(getpid()));
  std::filesystem::remove(started);
  auto f = pool.call("testing.announce_then_cancellable_sleep", started.string(), 20000);
  ASSERT_TRUE(test::eventually([&] { return std::filesystem::exists(started); }, 30s));  // it runs on its rank
  std::filesystem::remove(started);
  EXPECT_FALSE(f.cancel());      // sent: it runs, its cancel flag is set there
  EXPECT_EQ(f.get(10s), false);  // it stopped sleeping early
}

TEST(MpiPool, InterruptRunningStopsWhatRunsOnEveryRank) {
  MpiPool pool(plugins(), process_pool());
  const auto dir = std::filesystem::temp_directory_path() / ("troupe-mpi-hangs-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::vector<Future<Value>> hung;
  for (int i = 0; i < 4; ++i) {
    hung.push_back(pool.call("testing.announce_then_hang", (dir / std::to_string(i)).string()));
  }
  // All four run, on both ranks' two workers, before the one interrupt.
  const bool all_running = test::eventually(
      [&] {
        for (int i = 0; i < 4; ++i) {
          if (!std::filesystem::exists(dir / std::to_string(i))) {
            return false;
          }
        }
        return true;
      },
      60s);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(all_running);
  pool.interrupt_running();
  for (auto& f : hung) {
    ASSERT_TRUE(f.wait(30s));
    EXPECT_THROW(f.get(), CancelledError);
  }
  EXPECT_EQ(pool.call("testing.echo", 1).get(), 1);
}

TEST(MpiPool, ARankWhosePoolCannotStartStopsThePoolFromStartingAndSaysWhy) {
  try {
    MpiPool pool(plugins(), broken_init_pool());
    FAIL() << "the pool started";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("did not start"));
    EXPECT_THAT(e.what(), HasSubstr("rank 1"));
    EXPECT_THAT(e.what(), HasSubstr("boom at start"));
  }
  MpiPool next(plugins(), thread_pool());  // the ranks went back to waiting
  EXPECT_EQ(next.call("testing.echo", 1).get(), 1);
}

TEST(MpiPool, APoolTheRanksDoNotServeIsRefusedNamingWhatTheyServe) {
  MpiPoolOptions other = thread_pool();
  other.name = "nobody-serves-this";
  try {
    MpiPool pool(plugins(), other);
    FAIL() << "the pool started";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("does not serve"));
    EXPECT_THAT(e.what(), HasSubstr("'thread'"));
  }
  MpiPoolOptions other_plugins = thread_pool();
  try {
    MpiPool pool({test::plugin_path("text")}, other_plugins);
    FAIL() << "the pool started";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("plugins"));
  }
}

TEST(MpiPool, OnlyOnePoolAtATime) {
  MpiPool pool(plugins(), thread_pool());
  EXPECT_THROW(MpiPool(plugins(), process_pool()), UsageError);
  EXPECT_EQ(pool.call("testing.echo", 3).get(), 3);
}

TEST(MpiPool, ShutdownWaitsForAcceptedWorkThenRefusesMore) {
  MpiPool pool(plugins(), thread_pool());
  auto f = pool.call("testing.sleep", 200);
  pool.shutdown({.wait = true});
  EXPECT_EQ(f.get(), 200);
  EXPECT_THROW(pool.call("testing.echo", 1), UsageError);
  EXPECT_THROW(pool.check(), UsageError);
}

TEST(MpiPool, ShutdownCancelPendingCancelsTheQueue) {
  MpiPool pool(plugins(), thread_pool());
  std::vector<Future<Value>> futures;
  for (int i = 0; i < 30; ++i) {
    futures.push_back(pool.call("testing.sleep", 100));
  }
  pool.shutdown({.wait = true, .cancel_pending = true});
  std::size_t cancelled = 0;
  for (auto& f : futures) {
    ASSERT_TRUE(f.done());
    cancelled += f.cancelled() ? 1 : 0;
  }
  EXPECT_GE(cancelled, 22u);  // at most 8 were on the ranks
  EXPECT_EQ(pool.cancelled_tasks().size(), cancelled);
}

TEST(MpiPool, QueueLimitWithTheFailPolicy) {
  MpiPool pool(plugins(), small_queue_pool());  // 2 slots on the ranks, 2 in the queue
  std::vector<Future<Value>> futures;
  bool refused = false;
  for (int i = 0; i < 20 && !refused; ++i) {
    try {
      futures.push_back(pool.call("testing.sleep", 300));
    } catch (const QueueFullError&) {
      refused = true;
    }
  }
  EXPECT_TRUE(refused);
  EXPECT_LE(futures.size(), 6u);
}

TEST(MpiPool, WaitingOnALongTaskCostsRankZeroNoCore) {
  MpiPool pool(plugins(), thread_pool());
  timespec before{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &before);
  EXPECT_EQ(pool.call("testing.sleep", 1500).get(), 1500);
  timespec after{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &after);
  const double cpu =
      static_cast<double>(after.tv_sec - before.tv_sec) + 1e-9 * static_cast<double>(after.tv_nsec - before.tv_nsec);
  EXPECT_LT(cpu, 0.3) << "rank 0 used " << cpu << " s of CPU while it waited 1.5 s";
}

TEST(MpiPool, TestRunsAReplicaOnEveryRank) {
  MpiPool pool(plugins(), process_pool());
  pool.test();
  EXPECT_EQ(pool.call("testing.echo", 1).get(), 1);
}

TEST(MpiPool, SpawnWorkersStartsThemOnTheRanks) {
  MpiPool pool(plugins(), process_pool());
  pool.spawn_workers(4);
  for (int i = 0; i < 200 && pool.gauges().live_workers < 4; ++i) {
    pool.call("testing.echo", 1).get();  // each answer brings the ranks' figures
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(pool.gauges().live_workers, 4u);
}

TEST(MpiPool, SharedStateIsRefused) {
  MpiPool pool(plugins(), thread_pool());
  EXPECT_THROW(pool.counter("n"), UsageError);
}

TEST(MpiPool, TheRunnerRecordsEveryKeyOnceWithRetriesOfCrashes) {
  MpiPool pool(plugins(), process_pool());
  Runner<int> runner(pool, {.retries = {.max = 1, .on = Retry::crash}});
  for (int i = 0; i < 200; ++i) {
    runner.add(i, Call{i == 17 ? "testing.segfault" : "testing.double", i == 17 ? Args{} : Args{i}, {}});
  }
  auto report = runner.run();
  EXPECT_EQ(report.outcomes.size(), 200u);
  for (int i = 0; i < 200; ++i) {
    if (i == 17) {
      EXPECT_FALSE(report.outcomes.at(i).ok());
      EXPECT_EQ(report.outcomes.at(i).attempts, 2u);
      continue;
    }
    ASSERT_TRUE(report.outcomes.at(i).ok()) << i;
    EXPECT_EQ(report.outcomes.at(i).value, 2 * i);
  }
}

TEST(MpiPool, ARunnerTimeoutKillsTheItemOnProcessRanksAndIsRefusedOnThreadRanks) {
  {
    MpiPool pool(plugins(), thread_pool());
    EXPECT_FALSE(pool.takes_time_limits());
    EXPECT_THROW(Runner<int>(pool, {.timeout = 1s}), UsageError);
  }
  MpiPool pool(plugins(), process_pool());
  EXPECT_TRUE(pool.takes_time_limits());
  Runner<int> runner(pool, {.timeout = 300ms});
  runner.add(0, Call{"testing.hang", {}, {}});
  runner.add(1, Call{"testing.double", {4}, {}});
  auto report = runner.run();
  caught<TaskTimeoutError>(report.outcomes.at(0).error);
  EXPECT_EQ(report.outcomes.at(1).value, 8);
}

TEST(MpiPool, AnEngineMakesAPoolOfKindMpi) {
  Engine engine(EngineSpec{.plugins = {{.path = test::plugin_path("testing")}}, .pools = {{"cluster", engine_pool()}}});
  auto pool = engine.pool("cluster");
  EXPECT_NE(dynamic_cast<MpiPool*>(pool.get()), nullptr);
  EXPECT_EQ(pool->call("testing.double", 21).get(), 42);
}

TEST(MpiPool, ServeOnRankZeroIsRefused) {
  EXPECT_THROW(mpi::serve(plugins(), thread_pool()), UsageError);
}

}  // namespace
}  // namespace troupe

int main(int argc, char** argv) {
  // Each test takes seconds; a minute means a hang (ctest's timeout is 300 s for the whole job).
  return troupe::test::run_mpi_tests(argc, argv, "mpi_pool_test", troupe::plugins(), troupe::served_pools,
                                     std::chrono::seconds(60));
}
