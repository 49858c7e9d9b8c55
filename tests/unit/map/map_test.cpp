// The map family on ThreadPool (callables) and on any Executor (plugin tasks).
#include "troupe/map.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <mutex>
#include <numeric>
#include <ranges>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "support/paths.hpp"
#include "support/registry.hpp"
#include "support/sync.hpp"
#include "troupe/registry.hpp"

namespace {

using namespace std::chrono_literals;
using troupe::MapOptions;
using troupe::ThreadPool;

using troupe::test::Event;
using troupe::test::eventually;
using troupe::test::testing_registry;

// An endless (or bounded) input that counts how many items were read and can
// throw at a given position. Unsized, like a generator.
class CountingInput : public std::ranges::view_interface<CountingInput> {
 public:
  struct State {
    std::atomic<long> reads{0};
    long limit = -1;     // -1: endless
    long throw_at = -1;  // -1: never
  };
  class iterator {
   public:
    using value_type = long;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(State* s) : s_(s) {}
    long operator*() const {
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
    long i_ = 0;
  };
  CountingInput() = default;
  explicit CountingInput(State* s) : s_(s) {}
  iterator begin() const { return iterator(s_); }
  std::default_sentinel_t end() const { return {}; }

 private:
  State* s_ = nullptr;
};

TEST(Map, YieldsResultsInInputOrder) {
  ThreadPool pool({.max_workers = 2});
  std::vector<long> out;
  for (auto v : troupe::map(
           pool, [](long x) { return x * 2; }, std::views::iota(0L, 10000L))) {
    out.push_back(v);
  }
  ASSERT_EQ(out.size(), 10000u);
  for (long i = 0; i < 10000; ++i) {
    EXPECT_EQ(out[static_cast<std::size_t>(i)], 2 * i);
  }
}

TEST(Map, EmptyInputYieldsNothing) {
  ThreadPool pool({.max_workers = 1});
  std::vector<int> none;
  auto results = troupe::map(
      pool, [](int x) { return x; }, none);
  EXPECT_EQ(results.begin(), results.end());
}

TEST(Map, UnorderedYieldsAsChunksComplete) {
  ThreadPool pool({.max_workers = 2});
  Event release;
  auto results = troupe::map(
      pool,
      [&](int x) {
        if (x == 0) {
          release.wait();
        }
        return x;
      },
      std::vector<int>{0, 1}, MapOptions{.chunk_size = 1, .ordered = false});
  auto it = results.begin();
  EXPECT_EQ(*it, 1);
  release.set();
  ++it;
  EXPECT_EQ(*it, 0);
  ++it;
  EXPECT_EQ(it, results.end());
}

TEST(Map, IsLazyAndBufferBoundsReadAhead) {
  ThreadPool pool({.max_workers = 2});
  CountingInput::State state;
  auto results = troupe::map(
      pool, [](long x) { return x; }, CountingInput(&state), MapOptions{.chunk_size = 1, .buffer_size = 3});
  EXPECT_EQ(state.reads.load(), 0);  // nothing read before iteration
  long consumed = 0;
  for (auto it = results.begin(); consumed < 100; ++it) {
    EXPECT_EQ(*it, consumed);
    ++consumed;
    EXPECT_LE(state.reads.load(), consumed + 3);
  }
}

TEST(Map, MapAllReadsAndSubmitsEverythingAtTheCall) {
  ThreadPool pool({.max_workers = 2});
  CountingInput::State state;
  state.limit = 50;
  auto results = troupe::map_all(
      pool, [](long x) { return x + 1; }, CountingInput(&state));
  EXPECT_EQ(state.reads.load(), 50);
  long expected = 1;
  for (auto v : results) {
    EXPECT_EQ(v, expected++);
  }
  EXPECT_EQ(expected, 51);
}

TEST(Map, ItemErrorIsRethrownAtItsPositionAndIterationContinues) {
  ThreadPool pool({.max_workers = 2});
  auto results = troupe::map(
      pool,
      [](int x) {
        if (x == 2) {
          throw std::domain_error("two");
        }
        return x;
      },
      std::views::iota(0, 5), MapOptions{.chunk_size = 2});
  std::vector<int> seen;
  int errors = 0;
  for (auto it = results.begin(); it != results.end(); ++it) {
    try {
      seen.push_back(*it);
    } catch (const std::domain_error&) {
      ++errors;
      seen.push_back(-1);
    }
  }
  EXPECT_EQ(seen, (std::vector<int>{0, 1, -1, 3, 4}));
  EXPECT_EQ(errors, 1);
}

TEST(Map, OutcomesCaptureEachItemsValueOrError) {
  ThreadPool pool({.max_workers = 2});
  auto results = troupe::map(
      pool,
      [](int x) {
        if (x % 3 == 0) {
          throw std::domain_error("div3");
        }
        return x;
      },
      std::views::iota(0, 9));
  int ok = 0;
  int failed = 0;
  for (auto outcome : results.outcomes()) {
    outcome.ok() ? ++ok : ++failed;
  }
  EXPECT_EQ(ok, 6);
  EXPECT_EQ(failed, 3);
}

TEST(Map, TimeoutCancelsTheRestAndEndsTheRange) {
  ThreadPool pool({.max_workers = 1});
  Event release;
  std::atomic<int> ran{0};
  {
    auto results = troupe::map(
        pool,
        [&](int x) {
          ran.fetch_add(1);
          if (x == 2) {
            release.wait();
          }
          return x;
        },
        std::views::iota(0, 10), MapOptions{.chunk_size = 1, .buffer_size = 4, .timeout = 100ms});
    auto it = results.begin();
    EXPECT_EQ(*it, 0);
    ++it;
    EXPECT_EQ(*it, 1);
    EXPECT_THROW(++it, troupe::TimeoutError);
    release.set();
    ++it;
    EXPECT_EQ(it, results.end());
  }
  ASSERT_TRUE(pool.join());
  EXPECT_LE(ran.load(), 3);  // 3..9 were cancelled before they started
}

TEST(Map, DroppingTheRangeCancelsWorkNotStarted) {
  ThreadPool pool({.max_workers = 1});
  Event running;
  Event release;
  std::atomic<int> ran{0};
  {
    auto results = troupe::map(
        pool,
        [&](int x) {
          ran.fetch_add(1);
          if (x == 1) {
            running.set();
            release.wait();
          }
          return x;
        },
        std::views::iota(0, 1000), MapOptions{.chunk_size = 1, .buffer_size = 8});
    auto it = results.begin();
    EXPECT_EQ(*it, 0);
    running.wait();
  }
  release.set();
  ASSERT_TRUE(pool.join());
  EXPECT_EQ(ran.load(), 2);
  EXPECT_GE(pool.stats().cancelled, 7u);
}

TEST(Map, AbandonedHalfWayWhileWorkersRunLeavesThePoolHealthy) {
  ThreadPool pool({.max_workers = 2});
  for (int round = 0; round < 20; ++round) {
    auto results = troupe::map(
        pool, [](long x) { return x * 3; }, std::views::iota(0L, 100000L), MapOptions{.chunk_size = 64});
    long n = 0;
    for (auto it = results.begin(); it != results.end() && n < 5000; ++it) {
      ASSERT_EQ(*it, 3 * n);
      ++n;
    }
  }
  ASSERT_TRUE(pool.join());
  EXPECT_EQ(pool.submit([] { return 1; }).get(), 1);
}

TEST(Map, InputRangeErrorReachesTheCallerAfterEarlierItems) {
  ThreadPool pool({.max_workers = 2});
  CountingInput::State state;
  state.throw_at = 3;
  auto results = troupe::map(
      pool, [](long x) { return x; }, CountingInput(&state), MapOptions{.chunk_size = 1});
  std::vector<long> seen;
  try {
    for (auto v : results) {
      seen.push_back(v);
    }
    FAIL() << "the input's error was lost";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("input broke at 3"), std::string::npos);
  }
  EXPECT_EQ(seen, (std::vector<long>{0, 1, 2}));
}

TEST(Map, InputErrorMidChunkStillYieldsTheItemsReadForThatChunk) {
  ThreadPool pool({.max_workers = 2});
  CountingInput::State state;
  state.throw_at = 6;  // part-way through the second chunk of 4
  auto results = troupe::map(
      pool, [](long x) { return x * 10; }, CountingInput(&state), MapOptions{.chunk_size = 4});
  std::vector<long> seen;
  try {
    for (auto v : results) {
      seen.push_back(v);
    }
    FAIL() << "the input's error was lost";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("input broke at 6"), std::string::npos);
  }
  EXPECT_EQ(seen, (std::vector<long>{0, 10, 20, 30, 40, 50}));
}

TEST(Map, MapAllInputErrorMidChunkStillYieldsTheItemsReadForThatChunk) {
  ThreadPool pool({.max_workers = 2});
  CountingInput::State state;
  state.throw_at = 3;
  auto results = troupe::map_all(
      pool, [](long x) { return x + 1; }, CountingInput(&state), MapOptions{.chunk_size = 100});
  std::vector<long> seen;
  try {
    for (auto v : results) {
      seen.push_back(v);
    }
    FAIL() << "the input's error was lost";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("input broke at 3"), std::string::npos);
  }
  EXPECT_EQ(seen, (std::vector<long>{1, 2, 3}));
}

// Every item read before the input threw is yielded, then its error: for
// unordered and automatically chunked maps and plugin-task maps too.
TEST(Map, InputErrorYieldsEveryItemReadBeforeItInEveryMapForm) {
  ThreadPool pool({.max_workers = 2, .registry = &testing_registry()});
  auto drain = [](auto&& results, auto as_long) {
    std::vector<long> seen;
    try {
      for (auto&& v : results) {
        seen.push_back(as_long(v));
      }
      ADD_FAILURE() << "the input's error was lost";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("input broke at 7"), std::string::npos) << e.what();
    }
    std::sort(seen.begin(), seen.end());
    return seen;
  };
  const std::vector<long> doubled{0, 2, 4, 6, 8, 10, 12};
  for (const std::size_t chunk : {std::size_t{0}, std::size_t{3}, std::size_t{100}}) {
    for (const bool ordered : {true, false}) {
      SCOPED_TRACE("chunk_size " + std::to_string(chunk) + (ordered ? " ordered" : " unordered"));
      const MapOptions options{.chunk_size = chunk, .ordered = ordered};
      CountingInput::State a;
      a.throw_at = 7;
      EXPECT_EQ(drain(troupe::map(
                          pool, [](long x) { return 2 * x; }, CountingInput(&a), options),
                      [](long v) { return v; }),
                doubled);
      CountingInput::State b;
      b.throw_at = 7;
      EXPECT_EQ(drain(troupe::map(pool, "testing.double", CountingInput(&b), options),
                      [](const troupe::Value& v) { return v.get<long>(); }),
                doubled);
    }
  }
}

// A sized random-access input the map owns is read by the workers: reading
// item k is part of item k's work, so its exception is that item's error
// and the items after it are still read.
TEST(Map, InPlaceInputErrorIsThatItemsError) {
  ThreadPool pool({.max_workers = 2});
  auto input = std::views::iota(0, 10) | std::views::transform([](int i) {
                 if (i == 7) {
                   throw std::runtime_error("input broke at 7");
                 }
                 return i;
               });
  std::vector<int> ok;
  std::vector<int> failed;
  int index = 0;
  for (auto o : troupe::map(
                    pool, [](int x) { return x; }, std::move(input), MapOptions{.chunk_size = 3})
                    .outcomes()) {
    (o.ok() ? ok : failed).push_back(index++);
  }
  EXPECT_EQ(ok, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 8, 9}));
  EXPECT_EQ(failed, (std::vector<int>{7}));
}

TEST(Map, TimeoutOfTheLongestDurationWaits) {
  ThreadPool pool({.max_workers = 1});
  auto results = troupe::map(
      pool,
      [](int x) {
        std::this_thread::sleep_for(10ms);
        return x;
      },
      std::views::iota(0, 3), MapOptions{.chunk_size = 1, .timeout = std::chrono::hours::max()});
  std::vector<int> seen;
  for (int v : results) {
    seen.push_back(v);
  }
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2}));
}

TEST(Map, DefaultWindowKeepsEveryWorkerBusy) {
  ThreadPool pool({.max_workers = 2});
  std::atomic<int> running{0};
  std::atomic<int> peak{0};
  auto results = troupe::map(
      pool,
      [&](int x) {
        const int now = running.fetch_add(1) + 1;
        int seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
        }
        eventually([&] { return peak.load() >= 2; }, 5s);  // generous bound
        running.fetch_sub(1);
        return x;
      },
      std::views::iota(0, 8));
  int n = 0;
  for (auto v : results) {
    EXPECT_EQ(v, n++);
  }
  EXPECT_EQ(peak.load(), 2);
}

TEST(Map, StarmapSpreadsTuples) {
  ThreadPool pool({.max_workers = 2});
  std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
  auto sums = troupe::starmap(
                  pool, [](int a, int b) { return a + b; }, pairs)
                  .to_vector();
  EXPECT_EQ(sums, (std::vector<int>{3, 7, 11}));
  auto eager = troupe::starmap_all(
                   pool, [](int a, int b) { return a * b; }, pairs)
                   .to_vector();
  EXPECT_EQ(eager, (std::vector<int>{2, 12, 30}));
}

TEST(Map, PluginTaskMapRunsOnAnyExecutorInChunks) {
  ThreadPool pool({.max_workers = 2, .registry = &testing_registry()});
  troupe::Executor& executor = pool;
  std::vector<long> out;
  for (auto& v : troupe::map(executor, "testing.double", std::views::iota(0, 100), MapOptions{.chunk_size = 10})) {
    out.push_back(v.get<long>());
  }
  ASSERT_EQ(out.size(), 100u);
  EXPECT_EQ(out[99], 198);
  EXPECT_EQ(pool.stats().submitted, 100u);  // items, not the 10 chunks
}

TEST(Map, PluginStarmapAndPerItemErrors) {
  ThreadPool pool({.max_workers = 2, .registry = &testing_registry()});
  std::vector<troupe::Args> calls{{"boom", ""}, {"bang", "why"}};
  int failed = 0;
  for (auto o : troupe::starmap(pool, "testing.fail", calls).outcomes()) {
    EXPECT_FALSE(o.ok());
    ++failed;
  }
  EXPECT_EQ(failed, 2);
  auto mixed = troupe::map_all(pool, "testing.double", std::vector<troupe::Value>{1, "x", 3});
  std::vector<bool> oks;
  for (auto o : mixed.outcomes()) {
    oks.push_back(o.ok());
  }
  EXPECT_EQ(oks, (std::vector<bool>{true, false, true}));
}

TEST(Map, UnknownPluginTaskFailsEveryItem) {
  ThreadPool pool({.max_workers = 1, .registry = &testing_registry()});
  int failed = 0;
  for (auto o : troupe::map(pool, "testing.nope", std::vector<int>{1, 2, 3}).outcomes()) {
    EXPECT_THROW(o.rethrow(), troupe::UnknownTaskError);
    ++failed;
  }
  EXPECT_EQ(failed, 3);
}

TEST(Map, BrokenPoolCancelsItemsWithBrokenPoolError) {
  ThreadPool pool({.max_workers = 1, .initializer = [](troupe::Worker&) {
                     throw std::runtime_error("init");
                   }});
  auto results = troupe::map(
      pool, [](int x) { return x; }, std::vector<int>{1, 2});
  EXPECT_THROW(*results.begin(), troupe::BrokenPoolError);
}

TEST(Map, SplitMapTaskMakesOneTaskPerChunk) {
  auto tasks = troupe::split_map_task([](int x) { return x * x; }, std::views::iota(0, 9), 2);
  ASSERT_EQ(tasks.size(), 5u);
  EXPECT_EQ(tasks[0](), (std::vector<int>{0, 1}));
  EXPECT_EQ(tasks[4](), (std::vector<int>{64}));
  ThreadPool pool({.max_workers = 2});
  auto f = pool.submit(tasks[1]);
  EXPECT_EQ(f.get(), (std::vector<int>{4, 9}));
  EXPECT_THROW(troupe::split_map_task([](int x) { return x; }, std::vector<int>{1}, 0), troupe::ArgumentError);
}

TEST(Map, WaitingInsideATaskOnAMapOfItsOwnPoolDoesNotDeadlock) {
  ThreadPool pool({.max_workers = 1});
  auto f = pool.submit([&] {
    long sum = 0;
    for (auto v : troupe::map(
             pool, [](long x) { return x; }, std::views::iota(0L, 100L))) {
      sum += v;
    }
    return sum;
  });
  EXPECT_EQ(f.get(), 4950);
}

TEST(Map, UnorderedMapInsideATaskOfItsOwnPoolDoesNotDeadlock) {
  ThreadPool pool({.max_workers = 1});
  auto f = pool.submit([&] {
    long sum = 0;
    for (auto v : troupe::map(
             pool, [](long x) { return x; }, std::views::iota(0L, 100L),
             MapOptions{.chunk_size = 7, .ordered = false})) {
      sum += v;
    }
    return sum;
  });
  EXPECT_EQ(f.get(), 4950);
}

TEST(Map, BeginTwiceIsAUsageError) {
  ThreadPool pool({.max_workers = 1});
  auto results = troupe::map(
      pool, [](int x) { return x; }, std::vector<int>{1});
  static_cast<void>(results.begin());
  EXPECT_THROW(static_cast<void>(results.begin()), troupe::UsageError);
}

// ---- issue 11: bool results, deadlines under load, TaskContext, collecting ----

TEST(Map, CallableReturningBoolYieldsEachItemsBool) {
  ThreadPool pool({.max_workers = 2});
  std::vector<bool> out;
  for (bool even : troupe::map(
           pool, [](int x) { return x % 2 == 0; }, std::views::iota(0, 1000))) {
    out.push_back(even);
  }
  ASSERT_EQ(out.size(), 1000u);
  for (std::size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i], i % 2 == 0) << i;
  }
  EXPECT_EQ(troupe::map_all(
                pool, [](int x) { return x > 2; }, std::vector<int>{1, 2, 3, 4})
                .values(),
            (std::vector<bool>{false, false, true, true}));
}

TEST(Map, TimeoutIsKeptWithTwoBusyThreadsBeside) {
  ThreadPool pool({.max_workers = 2});
  std::atomic<bool> stop{false};
  std::vector<std::jthread> busy;
  for (int i = 0; i < 2; ++i) {
    busy.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  }
  const auto deadline = 150ms;
  long late_ms = 0;
  for (int round = 0; round < 3; ++round) {
    auto results = troupe::map(
        pool,
        [](int x) {
          std::this_thread::sleep_for(5ms);
          return x;
        },
        std::views::iota(0, 1'000'000), MapOptions{.chunk_size = 1, .timeout = deadline});
    const auto start = std::chrono::steady_clock::now();
    bool timed_out = false;
    try {
      for ([[maybe_unused]] int v : results) {
      }
    } catch (const troupe::TimeoutError&) {
      timed_out = true;
    }
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    EXPECT_TRUE(timed_out);
    late_ms = std::max<long>(late_ms, static_cast<long>((took - deadline).count()));
  }
  stop = true;
  EXPECT_LE(late_ms, 50) << "the TimeoutError came " << late_ms << " ms after the deadline";
}

TEST(Map, CallableTakingTaskContextSeesItsWorker) {
  ThreadPool pool({.max_workers = 2});
  auto ids = troupe::map_all(
                 pool, [](troupe::TaskContext& ctx, int) { return ctx.worker().id(); }, std::views::iota(0, 1000),
                 MapOptions{.chunk_size = 10})
                 .values();
  ASSERT_EQ(ids.size(), 1000u);
  for (auto id : ids) {
    EXPECT_TRUE(id < 2 || id == ThreadPool::kCallerWorker) << id;
  }
  auto sums = troupe::starmap_all(
                  pool, [](troupe::TaskContext& ctx, int a, int b) { return ctx.cancelled() ? -1 : a + b; },
                  std::vector<std::pair<int, int>>{{1, 2}, {3, 4}})
                  .values();
  EXPECT_EQ(sums, (std::vector<int>{3, 7}));
}

TEST(Map, CallableTakingTaskContextSeesTheMapDropped) {
  ThreadPool pool({.max_workers = 1});
  Event started;
  std::atomic<bool> saw_cancel{false};
  {
    // A timeout keeps the iterating thread from running item 1 itself.
    auto results = troupe::map(
        pool,
        [&](troupe::TaskContext& ctx, int x) {
          if (x == 1) {
            started.set();
            const auto give_up = std::chrono::steady_clock::now() + 10s;
            while (!ctx.cancelled() && std::chrono::steady_clock::now() < give_up) {
              std::this_thread::sleep_for(1ms);
            }
            saw_cancel = ctx.cancelled();
          }
          return x;
        },
        std::views::iota(0, 2), MapOptions{.chunk_size = 1, .buffer_size = 2, .timeout = 10min});
    EXPECT_EQ(*results.begin(), 0);
    started.wait();
  }  // dropped while item 1 runs
  ASSERT_TRUE(pool.join(10s));
  EXPECT_TRUE(saw_cancel.load());
}

TEST(Map, MapAllValuesReturnsEveryResultInInputOrder) {
  ThreadPool pool({.max_workers = 2});
  std::vector<int> expected(5000);
  std::iota(expected.begin(), expected.end(), 0);
  for (int& v : expected) {
    v *= 3;
  }
  const std::vector<int> input = [] {
    std::vector<int> v(5000);
    std::iota(v.begin(), v.end(), 0);
    return v;
  }();
  auto triple = [](int x) {
    return x * 3;
  };
  EXPECT_EQ(troupe::map_all(pool, triple, input).values(), expected);                      // sized, lvalue
  EXPECT_EQ(troupe::map_all(pool, triple, std::views::iota(0, 5000)).values(), expected);  // sized, in place
  EXPECT_EQ(troupe::map(pool, triple, std::views::iota(0, 5000)).values(), expected);      // lazy
  CountingInput::State state;
  state.limit = 5000;
  EXPECT_EQ(troupe::map_all(
                pool, [](long x) { return static_cast<int>(x) * 3; }, CountingInput(&state))
                .values(),
            expected);  // unsized
  EXPECT_EQ(troupe::map_all(pool, triple, input, MapOptions{.chunk_size = 7, .ordered = false}).values(), expected);
}

TEST(Map, ValuesThrowsTheFirstFailedItemInInputOrder) {
  ThreadPool pool({.max_workers = 2});
  auto results = troupe::map_all(
      pool,
      [](int x) {
        if (x == 3000 || x == 4000) {
          throw std::runtime_error("item " + std::to_string(x));
        }
        return x;
      },
      std::views::iota(0, 5000), MapOptions{.chunk_size = 100});
  try {
    results.values();
    FAIL() << "values() returned despite failed items";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "item 3000");
  }
  auto begun = troupe::map(
      pool, [](int x) { return x; }, std::views::iota(0, 10));
  begun.begin();
  EXPECT_THROW(begun.values(), troupe::UsageError);
}

// Counts how results travel: in place, each is move-assigned once into its
// slot and never moved again.
struct Tracked {
  static inline std::atomic<int> constructed_by_move{0};
  int value = 0;
  Tracked() = default;
  explicit Tracked(int v) : value(v) {}
  Tracked(const Tracked&) = default;
  Tracked(Tracked&& other) noexcept : value(other.value) { constructed_by_move.fetch_add(1); }
  Tracked& operator=(const Tracked&) = default;
  Tracked& operator=(Tracked&&) noexcept = default;
};

TEST(Map, MapAllValuesWritesSizedInputResultsInPlace) {
  ThreadPool pool({.max_workers = 2});
  Tracked::constructed_by_move = 0;
  auto out = troupe::map_all(
                 pool, [](int x) { return Tracked(x); }, std::views::iota(0, 20000))
                 .values();
  ASSERT_EQ(out.size(), 20000u);
  EXPECT_EQ(out[12345].value, 12345);
  EXPECT_EQ(Tracked::constructed_by_move.load(), 0);
}

TEST(Map, MapIntoWritesEachResultIntoTheCallersSpan) {
  ThreadPool pool({.max_workers = 2});
  const std::vector<long> input = [] {
    std::vector<long> v(20000);
    std::iota(v.begin(), v.end(), 0L);
    return v;
  }();
  std::vector<long> out(input.size(), -1);
  troupe::map_into(
      pool, [](long x) { return x * 3; }, input, std::span(out));
  for (std::size_t i = 0; i < out.size(); ++i) {
    ASSERT_EQ(out[i], 3 * static_cast<long>(i)) << "at " << i;
  }
  std::vector<double> halves(1001, -1.0);  // a result converted on assignment, an rvalue view read in place
  troupe::map_into(
      pool, [](int x) { return x / 2; }, std::views::iota(0, 1001), std::span(halves), MapOptions{.chunk_size = 7});
  EXPECT_EQ(halves[1000], 500.0);
  EXPECT_EQ(halves[7], 3.0);
  bool odd[9] = {};  // bool results, which vector<bool> could not hold in place
  troupe::map_into(
      pool, [](int x) { return x % 2 == 1; }, std::views::iota(0, 9), std::span<bool>(odd));
  EXPECT_TRUE(odd[3]);
  EXPECT_FALSE(odd[4]);
  Tracked::constructed_by_move = 0;
  std::vector<Tracked> tracked(5000);
  troupe::map_into(
      pool, [](int x) { return Tracked(x); }, std::views::iota(0, 5000), std::span(tracked));
  EXPECT_EQ(tracked[4321].value, 4321);
  EXPECT_EQ(Tracked::constructed_by_move.load(), 0);  // assigned straight into its slot
  troupe::map_into(
      pool, [](int x) { return x; }, std::views::iota(0, 0), std::span<int>());  // nothing to do
}

TEST(Map, MapIntoRefusesASpanOfAnotherSizeNamingBoth) {
  ThreadPool pool({.max_workers = 2});
  std::vector<int> out(9);
  try {
    troupe::map_into(
        pool, [](int x) { return x; }, std::views::iota(0, 10), std::span(out));
    FAIL() << "a span of 9 slots took 10 results";
  } catch (const troupe::ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("10 items"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("9 slots"), std::string::npos) << e.what();
  }
}

// map_into's results land in storage the caller may free the moment it
// returns or throws: no chunk may still be running then.
TEST(Map, MapIntoThrowsTheFirstFailedItemOnlyOnceNoChunkRuns) {
  ThreadPool pool({.max_workers = 2});
  std::atomic<int> running{0};
  std::atomic<bool> other_started{false};
  std::vector<int> out(6, -1);
  try {
    troupe::map_into(
        pool,
        [&](int x) {
          running.fetch_add(1);
          struct Leave {
            std::atomic<int>& n;
            ~Leave() { n.fetch_sub(1); }
          } leave{running};
          if (x == 0) {
            EXPECT_TRUE(eventually([&] { return other_started.load(); }));
            throw std::runtime_error("item 0 failed");
          }
          other_started = true;
          std::this_thread::sleep_for(200ms);
          return x;
        },
        std::views::iota(0, 6), std::span(out), MapOptions{.chunk_size = 1});
    FAIL() << "map_into returned despite a failed item";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "item 0 failed");
    EXPECT_EQ(running.load(), 0) << "map_into threw while a chunk was still writing into the span";
  }
  EXPECT_EQ(out[0], -1);  // a failed item's slot is left as it was
  ASSERT_TRUE(pool.join(10s));
}

TEST(Map, MapIntoTimeoutWaitsForRunningChunksBeforeThrowing) {
  ThreadPool pool({.max_workers = 2});
  std::atomic<int> running{0};
  std::vector<int> out(8, -1);
  EXPECT_THROW(troupe::map_into(
                   pool,
                   [&](int x) {
                     running.fetch_add(1);
                     std::this_thread::sleep_for(150ms);
                     running.fetch_sub(1);
                     return x;
                   },
                   std::views::iota(0, 8), std::span(out), MapOptions{.chunk_size = 1, .timeout = 20ms}),
               troupe::TimeoutError);
  EXPECT_EQ(running.load(), 0) << "map_into threw while a chunk was still writing into the span";
  ASSERT_TRUE(pool.join(10s));
}

TEST(Map, PluginMapIntoFillsTheSpanInInputOrder) {
  ThreadPool pool({.max_workers = 2, .registry = &testing_registry()});
  troupe::Executor& executor = pool;
  std::vector<troupe::Value> out(100);
  troupe::map_into(executor, "testing.double", std::views::iota(0, 100), std::span(out), MapOptions{.chunk_size = 7});
  for (std::size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].get<long>(), 2 * static_cast<long>(i));
  }
  std::vector<troupe::Value> short_out(99);
  EXPECT_THROW(troupe::map_into(executor, "testing.double", std::views::iota(0, 100), std::span(short_out)),
               troupe::ArgumentError);
  std::vector<troupe::Value> items{1, 2, "three", 4};
  std::vector<troupe::Value> failed_out(4);
  EXPECT_THROW(troupe::map_into(executor, "testing.double", items, std::span(failed_out)), troupe::ArgumentError);
}

TEST(Map, PluginMapAllValuesCollectsValuesInInputOrder) {
  ThreadPool pool({.max_workers = 2, .registry = &testing_registry()});
  troupe::Executor& executor = pool;
  auto values =
      troupe::map_all(executor, "testing.double", std::views::iota(0, 100), MapOptions{.chunk_size = 7}).values();
  ASSERT_EQ(values.size(), 100u);
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(values[i].get<long>(), 2 * static_cast<long>(i));
  }
}

TEST(Map, StatsCountItemsAndFailedItems) {
  ThreadPool pool({.max_workers = 2});
  long failed = 0;
  for (auto&& o : troupe::map(
                      pool,
                      [](int x) {
                        if (x % 1000 == 7) {
                          throw std::runtime_error("bad item");
                        }
                        return x;
                      },
                      std::views::iota(0, 200'000))
                      .outcomes()) {
    failed += o.ok() ? 0 : 1;
  }
  ASSERT_EQ(failed, 200);
  const auto stats = pool.stats();
  EXPECT_EQ(stats.submitted, 200'000u);
  EXPECT_EQ(stats.failed, 200u);
  EXPECT_EQ(stats.completed, 199'800u);
  EXPECT_EQ(stats.cancelled, 0u);
}

// Callable maps count items for MapOptions::progress in every form: lazy,
// map_all(...).values() (in place), map_into.
TEST(Map, CallableMapProgressCountsItemsInEveryForm) {
  ThreadPool pool({.max_workers = 2});
  std::mutex mutex;
  std::vector<troupe::ProgressSnapshot> last;  // each map's finished snapshot
  auto progress = [&] {
    return troupe::Progress::to_callback([&](const troupe::ProgressSnapshot& s) {
      if (s.finished) {
        std::lock_guard lock(mutex);
        last.push_back(s);
      }
    });
  };
  auto fails_on_sevens = [](int x) {
    if (x % 7 == 0) {
      throw std::domain_error("seven");
    }
    return x;
  };
  int errors = 0;
  for (const auto& o :
       troupe::map(pool, fails_on_sevens, std::views::iota(0, 100), {.chunk_size = 8, .progress = progress()})
           .outcomes()) {
    errors += o.ok() ? 0 : 1;
  }
  EXPECT_EQ(errors, 15);
  auto doubled =
      troupe::map_all(pool, [](int x) { return 2 * x; }, std::views::iota(0, 50), {.progress = progress()}).values();
  EXPECT_EQ(doubled.size(), 50u);
  std::vector<int> out(30);
  troupe::map_into(pool, [](int x) { return x + 1; }, std::views::iota(0, 30), std::span<int>(out),
                   {.chunk_size = 4, .progress = progress()});
  EXPECT_EQ(out.back(), 30);

  std::lock_guard lock(mutex);
  ASSERT_EQ(last.size(), 3u);
  EXPECT_EQ(last[0].ok, 85u);
  EXPECT_EQ(last[0].failed, 15u);
  EXPECT_EQ(last[0].total, 100u);
  EXPECT_EQ(last[1].ok, 50u);
  EXPECT_EQ(last[1].total, 50u);
  EXPECT_EQ(last[2].ok, 30u);
  EXPECT_EQ(last[2].failed, 0u);
}

}  // namespace
