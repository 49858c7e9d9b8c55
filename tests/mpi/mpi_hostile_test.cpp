// MpiPool under hostile use, on a real MPI job: this binary runs under
// `mpirun --oversubscribe -np 3`; rank 0 runs the tests, ranks 1 and 2
// serve the pools below (main() at the end). A serving rank that throws out
// of serve() ends the whole job, so a defect there fails every test here.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "mpi/all_sent.hpp"
#include "mpi/mpi_test_main.hpp"
#include "support/paths.hpp"
#include "troupe/errors.hpp"
#include "troupe/mpi.hpp"
#include "troupe/mpi_pool.hpp"
#include "troupe/process_errors.hpp"

namespace troupe {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

std::vector<std::filesystem::path> plugins() {
  return {test::plugin_path("testing")};
}

MpiPoolOptions thread_pool() {
  return {.local = ThreadPoolOptions{.max_workers = 2}, .name = "thread"};
}
// One worker per rank whose process pool breaks on its second crash.
MpiPoolOptions storm_pool() {
  ProcessPoolOptions local{.max_workers = 1, .startup_timeout = 30s};
  local.crash_storm = {.max = 2, .within = 60s};
  return {.local = local, .name = "storm"};
}
// The local pool's queue is smaller than what rank 0 hands a rank (four
// frames for its one worker), and refuses more.
MpiPoolOptions tight_local_queue_pool() {
  return {.local = ThreadPoolOptions{.max_workers = 1, .queue_limit = 1, .queue_full_policy = QueueFullPolicy::fail},
          .frames_per_worker = 4,
          .name = "tight-local-queue"};
}
// Only rank 2's initializer throws.
MpiPoolOptions one_rank_fails_pool(int rank) {
  ProcessPoolOptions local{.max_workers = 1, .startup_timeout = 30s};
  if (rank == 2) {
    local.initializer = Call{"testing.fail_init", {"only on rank 2"}, {}};
  }
  return {.local = local, .name = "one-rank-fails"};
}
// The ranks take about 2 s to start (rank 0 passes a shorter startup_timeout).
MpiPoolOptions slow_start_pool() {
  ProcessPoolOptions local{.max_workers = 1, .startup_timeout = 30s};
  local.initializer = Call{"testing.slow_init", {2000}, {}};
  return {.local = local, .name = "slow-start"};
}
// Submitters block on a queue of two.
MpiPoolOptions blocking_queue_pool() {
  return {.local = ThreadPoolOptions{.max_workers = 1},
          .frames_per_worker = 1,
          .queue_limit = 2,
          .queue_full_policy = QueueFullPolicy::block,
          .name = "blocking-queue"};
}

std::vector<MpiPoolOptions> served_pools(int rank) {
  return {thread_pool(),     storm_pool(),         tight_local_queue_pool(), one_rank_fails_pool(rank),
          slow_start_pool(), blocking_queue_pool()};
}

// Every accepted item ended exactly one way.
void expect_balanced(const PoolStats& s) {
  EXPECT_EQ(s.submitted, s.completed + s.failed + s.cancelled)
      << "submitted " << s.submitted << ", completed " << s.completed << ", failed " << s.failed << ", cancelled "
      << s.cancelled;
  EXPECT_EQ(s.queued, 0u);
}

// The ranks still serve: a fresh pool runs a call on each of them.
void expect_ranks_serve() {
  MpiPool next(plugins(), thread_pool());
  std::vector<Future<Value>> futures;
  for (int i = 0; i < 8; ++i) {
    futures.push_back(next.call("testing.echo", i));
  }
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(futures[static_cast<std::size_t>(i)].get(30s), i);
  }
}

// A rank whose local process pool broke kept being sent work; submitting it
// to the broken pool threw out of serve() and ended the job.
TEST(MpiPoolHostile, ACrashStormBreaksThePoolAndEveryFutureEnds) {
  {
    MpiPool pool(plugins(), storm_pool());
    std::vector<Future<Value>> futures;
    for (int i = 0; i < 12; ++i) {
      futures.push_back(pool.call("testing.segfault"));
    }
    for (auto& f : futures) {
      ASSERT_TRUE(f.wait(60s));
      EXPECT_TRUE((f.state() == FutureState::failed) || f.cancelled());
    }
    ASSERT_TRUE(pool.join(60s));
    EXPECT_THROW(pool.check(), BrokenPoolError);
    EXPECT_THROW(pool.call("testing.echo", 1), BrokenPoolError);
    EXPECT_THROW(pool.spawn_workers(2), BrokenPoolError);
    expect_balanced(pool.stats());
  }
  expect_ranks_serve();
}

// The same when only one rank's pool broke and rank 0 has not heard yet:
// work sent to it meanwhile fails, spawn_workers and interrupt_running
// reach a broken local pool.
TEST(MpiPoolHostile, WorkSentToABrokenLocalPoolFailsThatWorkOnly) {
  {
    MpiPool pool(plugins(), storm_pool());
    std::vector<Future<Value>> futures;
    for (int i = 0; i < 4; ++i) {
      futures.push_back(pool.call("testing.segfault"));
    }
    for (int i = 0; i < 40; ++i) {
      try {
        futures.push_back(pool.call("testing.echo", i));
        pool.spawn_workers(2);
        pool.interrupt_running();
      } catch (const BrokenPoolError&) {
        break;
      }
    }
    for (auto& f : futures) {
      ASSERT_TRUE(f.wait(60s));
    }
    ASSERT_TRUE(pool.join(60s));
    expect_balanced(pool.stats());
  }
  expect_ranks_serve();
}

// A local queue_limit under frames_per_worker x max_workers with the fail
// policy: the rank's submission threw QueueFullError out of serve().
TEST(MpiPoolHostile, ALocalQueueThatRefusesFailsTheCallNotTheJob) {
  {
    MpiPool pool(plugins(), tight_local_queue_pool());
    std::vector<Future<Value>> futures;
    for (int i = 0; i < 16; ++i) {
      futures.push_back(pool.call("testing.sleep", 50));
    }
    std::size_t refused = 0;
    for (auto& f : futures) {
      ASSERT_TRUE(f.wait(60s));
      if ((f.state() == FutureState::failed)) {
        // A local pool's refusal, as the rank's pool gave it (not retyped on rank 0).
        EXPECT_THAT(describe_exception(f.exception()), HasSubstr("queue_limit 1"));
        ++refused;
      } else {
        EXPECT_EQ(f.get(), 50);
      }
    }
    EXPECT_GT(refused, 0u);
    ASSERT_TRUE(pool.join(60s));
    expect_balanced(pool.stats());
  }
  expect_ranks_serve();
}

TEST(MpiPoolHostile, AnInitializerThatThrowsOnOneRankOnlyNamesThatRank) {
  try {
    MpiPool pool(plugins(), one_rank_fails_pool(0));
    FAIL() << "the pool started";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("rank 2"));
    EXPECT_THAT(e.what(), HasSubstr("only on rank 2"));
    EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("rank 1")));
  }
  expect_ranks_serve();
}

// The ranks answered after rank 0 gave up on them and were left serving the
// pool that did not start: the next pool's open reached a rank inside a
// session (it threw out of serve()), and their late hellos could be read as
// answers to the next pool.
TEST(MpiPoolHostile, RanksThatMissTheStartupTimeoutStillServeTheNextPool) {
  MpiPoolOptions impatient = slow_start_pool();
  impatient.startup_timeout = 200ms;
  try {
    MpiPool pool(plugins(), impatient);
    FAIL() << "the pool started";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("did not report ready"));
  }
  expect_ranks_serve();
  expect_ranks_serve();
}

// A revoked chunk that had not started on its rank ends cancelled, as a
// revoked call does ("a frame not started ends cancelled"), and its items
// count as cancelled, not failed.
TEST(MpiPoolHostile, ARevokedChunkThatHadNotStartedEndsCancelled) {
  MpiPool pool(plugins(), thread_pool());  // 2 ranks x 2 workers x 2 frames
  std::vector<Future<Value>> running;
  for (int i = 0; i < 4; ++i) {
    running.push_back(pool.call("testing.cancellable_sleep", 20000));
  }
  std::vector<Future<std::vector<Outcome<Value>>>> waiting;
  for (int i = 0; i < 4; ++i) {
    waiting.push_back(pool.submit_chunk("testing.echo", {{1}, {2}, {3}}));
  }
  ASSERT_TRUE(test::all_sent(running));
  ASSERT_TRUE(test::all_sent(waiting));
  std::this_thread::sleep_for(200ms);  // the frames reach their ranks' local queues
  for (auto& f : waiting) {
    EXPECT_FALSE(f.cancel());  // sent: revoked on its rank
  }
  for (auto& f : waiting) {
    ASSERT_TRUE(f.wait(30s));
    EXPECT_TRUE(f.cancelled()) << "state " << static_cast<int>(f.state());
  }
  for (auto& f : running) {
    f.cancel();
    EXPECT_EQ(f.get(30s), false);
  }
  ASSERT_TRUE(pool.join(30s));
  const auto stats = pool.stats();
  EXPECT_EQ(stats.submitted, 16u);
  EXPECT_EQ(stats.completed, 4u);
  EXPECT_EQ(stats.cancelled, 12u);
  EXPECT_EQ(pool.cancelled_tasks().size(), 4u);  // the chunks, not the calls that ran
  expect_balanced(stats);
}

TEST(MpiPoolHostile, AHundredMebibyteArgumentAndResultCrossTheRanks) {
  MpiPool pool(plugins(), thread_pool());
  const std::string big(100u << 20, 'q');
  auto f = pool.call("testing.echo", big);
  EXPECT_EQ(f.get(60s).get_ref<const std::string&>().size(), big.size());
  auto g = pool.call("testing.big_result", std::int64_t{80} << 20);
  EXPECT_EQ(g.get(60s).get_ref<const std::string&>().size(), std::size_t{80} << 20);
  expect_balanced(pool.stats());
}

// Over what one MPI message carries: the rank's send threw out of serve()
// and ended the job. (About 6 GB of memory on one serving rank.)
TEST(MpiPoolHostile, AResultOverTwoGibibytesFailsItsOwnCallAndTheRankServesOn) {
  MpiPool pool(plugins(), thread_pool());
  auto f = pool.call("testing.big_result", (std::int64_t{1} << 31) + 1);
  ASSERT_TRUE(f.wait(120s));
  ASSERT_EQ(f.state(), FutureState::failed);
  EXPECT_THAT(describe_exception(f.exception()), HasSubstr("over what one MPI message carries"));
  EXPECT_EQ(pool.call("testing.echo", 3).get(30s), 3);
  expect_balanced(pool.stats());
}

// Rank 0's send of it threw on the MPI thread: the whole pool broke and the
// ranks were left inside the pool. (About 5 GB of memory on rank 0.)
TEST(MpiPoolHostile, ArgumentsOverTwoGibibytesFailTheirOwnCall) {
  MpiPool pool(plugins(), thread_pool());
  auto f = pool.submit_call(Call{"testing.echo", {Value(std::string((std::size_t{1} << 31) + 1, 'a'))}, {}});
  ASSERT_EQ(f.state(), FutureState::failed);
  EXPECT_THROW(f.get(), ArgumentError);
  EXPECT_THAT(describe_exception(f.exception()), HasSubstr("over what one MPI message carries"));
  EXPECT_EQ(pool.call("testing.echo", 4).get(30s), 4);
  pool.check();
}

TEST(MpiPoolHostile, AnEmptyChunkAndAChunkOfAHundredThousandItems) {
  MpiPool pool(plugins(), thread_pool());
  EXPECT_TRUE(pool.submit_chunk("testing.double", {}).get(30s).empty());
  std::vector<Args> items(100'000);
  for (std::size_t i = 0; i < items.size(); ++i) {
    items[i] = {static_cast<std::int64_t>(i)};
  }
  const auto outcomes = pool.submit_chunk("testing.double", items).get(60s);
  ASSERT_EQ(outcomes.size(), items.size());
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    ASSERT_EQ(outcomes[i].value(), 2 * static_cast<std::int64_t>(i)) << i;
  }
  const auto stats = pool.stats();
  EXPECT_EQ(stats.submitted, 100'000u);
  expect_balanced(stats);
}

// Done callbacks run on the MPI thread: one that submits (past a full queue
// with the block policy), cancels queued work and shuts the pool down
// without waiting must not deadlock, and every future still ends once.
TEST(MpiPoolHostile, DoneCallbacksThatSubmitCancelAndShutDownDoNotDeadlock) {
  MpiPool pool(plugins(), blocking_queue_pool());
  std::mutex mutex;
  std::vector<Future<Value>> spawned;
  std::vector<Future<Value>> victims;
  for (int i = 0; i < 2; ++i) {
    victims.push_back(pool.call("testing.sleep", 100));
  }
  auto first = pool.call("testing.sleep", 20);
  first.add_done_callback([&](const Future<Value>&) {
    std::lock_guard lock(mutex);
    for (int i = 0; i < 6; ++i) {  // over queue_limit: the MPI thread never waits
      spawned.push_back(pool.call("testing.echo", i));
    }
    for (auto& v : victims) {
      v.cancel();
    }
    pool.shutdown({.wait = false});
    EXPECT_THROW(pool.join(), DeadlockError);
    EXPECT_THROW(pool.test(), UsageError);
  });
  pool.join();
  pool.shutdown({.wait = true});
  std::lock_guard lock(mutex);
  ASSERT_EQ(spawned.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(spawned[static_cast<std::size_t>(i)].get(30s), i);
  }
  for (auto& v : victims) {
    EXPECT_TRUE(v.done());
  }
  expect_balanced(pool.stats());
}

// Submitters blocked on queue_limit while others cancel what they queued:
// nobody is left waiting, and the counts balance.
TEST(MpiPoolHostile, BlockedSubmittersAndCancellersBalanceTheCounts) {
  MpiPool pool(plugins(), blocking_queue_pool());
  std::mutex mutex;
  std::vector<Future<Value>> futures;
  std::atomic<bool> done{false};
  std::vector<std::thread> submitters;
  for (int t = 0; t < 4; ++t) {
    submitters.emplace_back([&, t] {
      for (int i = 0; i < 60; ++i) {
        auto f = pool.call("testing.echo", 100 * t + i);
        std::lock_guard lock(mutex);
        futures.push_back(std::move(f));
      }
    });
  }
  std::thread canceller([&] {
    std::size_t next = 0;
    while (!done.load()) {
      {
        std::lock_guard lock(mutex);
        for (; next < futures.size(); next += 3) {
          futures[next].cancel();
        }
      }
      std::this_thread::yield();
    }
  });
  for (auto& s : submitters) {
    s.join();
  }
  ASSERT_TRUE(pool.join(60s));
  done = true;
  canceller.join();
  std::lock_guard lock(mutex);
  ASSERT_EQ(futures.size(), 240u);
  std::size_t cancelled = 0;
  for (auto& f : futures) {
    ASSERT_TRUE(f.done());
    cancelled += f.cancelled() ? 1 : 0;
  }
  const auto stats = pool.stats();
  EXPECT_EQ(stats.submitted, 240u);
  EXPECT_EQ(stats.cancelled, cancelled);
  EXPECT_EQ(pool.cancelled_tasks().size(), cancelled);
  expect_balanced(stats);
}

// The destructor waits for what was accepted: every future ends with its
// value, and the ranks serve the next pool.
TEST(MpiPoolHostile, DestroyingThePoolWithWorkQueuedAndInFlightEndsEveryFuture) {
  std::vector<Future<Value>> futures;
  {
    MpiPool pool(plugins(), thread_pool());
    for (int i = 0; i < 24; ++i) {
      futures.push_back(pool.call("testing.sleep", 20));
    }
  }
  for (auto& f : futures) {
    ASSERT_TRUE(f.done());
    EXPECT_EQ(f.get(), 20);
  }
  expect_ranks_serve();
}

TEST(MpiPoolHostile, ShutdownWithCancelPendingBalancesTheCounts) {
  MpiPool pool(plugins(), thread_pool());
  std::vector<Future<Value>> futures;
  for (int i = 0; i < 40; ++i) {
    futures.push_back(pool.call("testing.cancellable_sleep", 200));
  }
  std::vector<Future<std::vector<Outcome<Value>>>> chunks;
  for (int i = 0; i < 5; ++i) {
    chunks.push_back(pool.submit_chunk("testing.cancellable_sleep", {{200}, {200}}));
  }
  std::this_thread::sleep_for(50ms);
  pool.shutdown({.wait = true, .cancel_pending = true});
  std::size_t cancelled_tasks = 0;
  std::uint64_t cancelled_items = 0;
  for (auto& f : futures) {
    ASSERT_TRUE(f.done());
    cancelled_tasks += f.cancelled() ? 1 : 0;
    cancelled_items += f.cancelled() ? 1 : 0;
  }
  for (auto& f : chunks) {
    ASSERT_TRUE(f.done());
    cancelled_tasks += f.cancelled() ? 1 : 0;
    cancelled_items += f.cancelled() ? 2 : 0;
  }
  // What has not started is listed (executor.hpp), on rank 0 or revoked on its rank.
  EXPECT_EQ(pool.cancelled_tasks().size(), cancelled_tasks);
  EXPECT_EQ(pool.stats().cancelled, cancelled_items);
  expect_balanced(pool.stats());
}

TEST(MpiPoolHostile, ArgumentsNestedTooDeeplyFailTheirOwnCall) {
  MpiPool pool(plugins(), thread_pool());
  Value nested = Value::array();
  for (int i = 0; i < 2000; ++i) {
    nested = Value::array({nested});
  }
  auto f = pool.call("testing.echo", nested);
  EXPECT_THROW(f.get(), ArgumentError);
  EXPECT_EQ(pool.call("testing.echo", 5).get(30s), 5);
}

}  // namespace
}  // namespace troupe

int main(int argc, char** argv) {
  // The heavy tests (2 GiB messages) take up to a minute; three mean a hang.
  return troupe::test::run_mpi_tests(argc, argv, "mpi_hostile_test", troupe::plugins(), troupe::served_pools,
                                     std::chrono::seconds(180));
}
