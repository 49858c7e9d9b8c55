// Micro figures for futures and the ThreadPool hot path (Google Benchmark).
#include <benchmark/benchmark.h>

#include <ranges>
#include <vector>

#include "troupe/future.hpp"
#include "troupe/map.hpp"
#include "troupe/promise.hpp"
#include "troupe/thread_pool.hpp"

namespace {

// Make a future pair, complete it, read it: the state's own cost.
void BM_FuturePairCompleteGet(benchmark::State& state) {
  for (auto _ : state) {
    auto [future, promise] = troupe::make_future_pair<int>();
    promise.try_start(0);
    promise.set_value(1);
    benchmark::DoNotOptimize(future.get());
  }
}
BENCHMARK(BM_FuturePairCompleteGet);

// One task in flight: submit, wait, repeat (latency of a round trip).
void BM_SubmitGetRoundTrip(benchmark::State& state) {
  troupe::ThreadPool pool({.max_workers = 1});
  pool.spawn_workers(1);
  for (auto _ : state) {
    pool.submit([] { return 1; }).get();
  }
}
BENCHMARK(BM_SubmitGetRoundTrip)->UseRealTime();

// Many in flight: a batch of empty tasks, then await all.
void BM_SubmitBatchThenAwait(benchmark::State& state) {
  troupe::ThreadPool pool({.max_workers = 2});
  pool.spawn_workers(2);
  std::vector<troupe::Future<void>> futures;
  futures.reserve(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    for (int64_t i = 0; i < state.range(0); ++i) {
      futures.push_back(pool.submit([] {}));
    }
    for (auto& f : futures) {
      f.get();
    }
    futures.clear();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_SubmitBatchThenAwait)->Arg(10'000)->UseRealTime();

// map over an owned iota range, results consumed.
void BM_MapIota(benchmark::State& state) {
  troupe::ThreadPool pool({.max_workers = 2});
  pool.spawn_workers(2);
  const long n = state.range(0);
  for (auto _ : state) {
    long sum = 0;
    for (long v : troupe::map(
             pool, [](long x) { return x * 2; }, std::views::iota(0L, n))) {
      sum += v;
    }
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_MapIota)->Arg(1'000'000)->UseRealTime();

}  // namespace
