// What any keyed batch of 1,000,000 trivial callables must pay before it
// runs anything, beside the plain map it is compared with in
// runner.keyed_1m_thread (bench/README.md): the duplicate-key check the
// Runner's add() owes, one type-erased callable per item, one Value per
// result, and a keyed report. Each is a floor, not the Runner itself.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>
#include <ranges>
#include <unordered_map>
#include <vector>

#include "troupe/map.hpp"
#include "troupe/sdk/value.hpp"
#include "troupe/thread_pool.hpp"

namespace {

constexpr std::int64_t kItems = 1'000'000;

// The duplicate check: one hash insert per key (what add() must do to
// refuse a duplicate at once, naming both items).
void BM_KeyedFloor_HashInsert1M(benchmark::State& state) {
  for (auto _ : state) {
    std::unordered_map<std::int64_t, std::size_t> index;
    for (std::int64_t i = 0; i < kItems; ++i) {
      index.try_emplace(i, static_cast<std::size_t>(i));
    }
    benchmark::DoNotOptimize(index.size());
  }
  state.SetItemsProcessed(state.iterations() * kItems);
}
BENCHMARK(BM_KeyedFloor_HashInsert1M)->Unit(benchmark::kMillisecond);

// One stored callable per item, called once, its Value kept.
void BM_KeyedFloor_CallablePerItem1M(benchmark::State& state) {
  for (auto _ : state) {
    std::vector<std::function<troupe::Value()>> work;
    work.reserve(kItems);
    for (std::int64_t i = 0; i < kItems; ++i) {
      work.emplace_back([i] { return troupe::Value(i * 2); });
    }
    std::vector<troupe::Value> values(kItems);
    for (std::int64_t i = 0; i < kItems; ++i) {
      values[static_cast<std::size_t>(i)] = work[static_cast<std::size_t>(i)]();
    }
    benchmark::DoNotOptimize(values.data());
  }
  state.SetItemsProcessed(state.iterations() * kItems);
}
BENCHMARK(BM_KeyedFloor_CallablePerItem1M)->Unit(benchmark::kMillisecond);

// The keyed report: one entry per key.
void BM_KeyedFloor_ReportMap1M(benchmark::State& state) {
  for (auto _ : state) {
    std::unordered_map<std::int64_t, troupe::Value> report;
    report.reserve(kItems);
    for (std::int64_t i = 0; i < kItems; ++i) {
      report.emplace(i, troupe::Value(i * 2));
    }
    benchmark::DoNotOptimize(report.size());
  }
  state.SetItemsProcessed(state.iterations() * kItems);
}
BENCHMARK(BM_KeyedFloor_ReportMap1M)->Unit(benchmark::kMillisecond);

// The yardstick: troupe::map of the same trivial callable, results read.
void BM_KeyedFloor_PlainMap1M(benchmark::State& state) {
  troupe::ThreadPool pool;
  pool.spawn_workers(pool.max_workers());
  for (auto _ : state) {
    std::int64_t sum = 0;
    for (std::int64_t v : troupe::map(
             pool, [](std::int64_t i) { return i * 2; }, std::views::iota(std::int64_t{0}, kItems))) {
      sum += v;
    }
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * kItems);
}
BENCHMARK(BM_KeyedFloor_PlainMap1M)->Unit(benchmark::kMillisecond);

}  // namespace
