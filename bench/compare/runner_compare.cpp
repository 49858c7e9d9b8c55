// Runner comparisons, each line the median of settings().rounds interleaved
// rounds (compare.hpp):
//   runner.keyed_1m_thread        1,000,000 trivial keyed callables (add + run), a default ThreadPool,
//                                 vs troupe::map of the same callable over the same pool
//   runner.keyed_100k_process     100,000 keyed testing.double calls on a warm 2-worker ProcessPool,
//                                 vs a dict of ProcessPoolExecutor.submit futures (bench/peers/runner_peers.py)
//   runner.stream_10m_rss_growth  a streaming run of 10,000,000 integer-keyed callables from a source that
//                                 produces as fast as asked, in a fresh process: peak RSS minus RSS before (MiB)
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ranges>
#include <string>
#include <vector>

#include "compare.hpp"
#include "troupe/map.hpp"
#include "troupe/process_pool.hpp"
#include "troupe/runner.hpp"
#include "troupe/thread_pool.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using troupe::bench::interleaved;
using troupe::bench::python_peer;
using troupe::bench::Samples;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

template <class T>
void keep(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

double status_mib(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == field) {
      double kib = 0;
      status >> kib;
      return kib / 1024.0;
    }
  }
  return -1;
}

constexpr std::int64_t kKeyedThreadItems = 1'000'000;

double runner_keyed_thread(troupe::ThreadPool& pool) {
  const auto start = Clock::now();
  troupe::Runner<std::int64_t> runner(pool);
  for (std::int64_t i = 0; i < kKeyedThreadItems; ++i) {
    runner.add(i, [i] { return i * 2; });
  }
  auto report = runner.run();
  const double rate = static_cast<double>(kKeyedThreadItems) / seconds_since(start);
  if (report.ok != static_cast<std::uint64_t>(kKeyedThreadItems) ||
      report.outcomes.at(kKeyedThreadItems - 1).get() != troupe::Value((kKeyedThreadItems - 1) * 2)) {
    std::fprintf(stderr, "runner.keyed_1m_thread: wrong results\n");
    return -1;
  }
  return rate;
}

double map_thread(troupe::ThreadPool& pool) {
  const auto start = Clock::now();
  std::int64_t sum = 0;
  for (std::int64_t v : troupe::map(
           pool, [](std::int64_t i) { return i * 2; }, std::views::iota(std::int64_t{0}, kKeyedThreadItems))) {
    sum += v;
  }
  keep(sum);
  return static_cast<double>(kKeyedThreadItems) / seconds_since(start);
}

// Where the keyed line's gap to a map comes from: the same 1,000,000 items
// as type-erased callables returning a Value (what a Runner holds), made and
// then mapped in input order, without keys or outcomes.
double map_callables_thread(troupe::ThreadPool& pool) {
  const auto start = Clock::now();
  std::vector<troupe::RunWork::Callable> works;
  for (std::int64_t i = 0; i < kKeyedThreadItems; ++i) {
    works.emplace_back([i] { return troupe::Value(i * 2); });
  }
  std::int64_t sum = 0;
  for (const troupe::Value& v : troupe::map(
           pool, [](const troupe::RunWork::Callable& work) { return work(); }, works)) {
    sum += v.get<std::int64_t>();
  }
  keep(sum);
  if (sum != kKeyedThreadItems * (kKeyedThreadItems - 1)) {
    std::fprintf(stderr, "runner.keyed_1m_thread: the map of callables summed wrong\n");
    return -1;
  }
  return static_cast<double>(kKeyedThreadItems) / seconds_since(start);
}

TROUPE_COMPARISON("runner.keyed_1m_thread", [](troupe::bench::Reporter& r) {
  troupe::ThreadPool pool;
  pool.spawn_workers(pool.max_workers());
  const auto s = interleaved({
      [&] { return runner_keyed_thread(pool); },
      [&] { return map_thread(pool); },
      [&] { return map_callables_thread(pool); },
  });
  r.ratio("runner.keyed_1m_thread", s[0], "troupe::map", s[1], "items/s");
  r.note("runner.keyed_1m_thread: troupe::map over the same items as type-erased callables returning a Value: " +
         std::to_string(s[2].median()) + " items/s (troupe / that map " +
         std::to_string(s[0].median() / s[2].median()) + ")");
});

double runner_keyed_process(troupe::ProcessPool& pool, std::int64_t items) {
  const auto start = Clock::now();
  troupe::Runner<std::string> runner(pool);
  for (std::int64_t i = 0; i < items; ++i) {
    runner.add("k" + std::to_string(i), troupe::Call{"testing.double", {i}, {}});
  }
  auto report = runner.run();
  const double rate = static_cast<double>(items) / seconds_since(start);
  if (report.ok != static_cast<std::uint64_t>(items)) {
    std::fprintf(stderr, "runner.keyed_100k_process: %llu of %lld ok\n", static_cast<unsigned long long>(report.ok),
                 static_cast<long long>(items));
    return -1;
  }
  return rate;
}

TROUPE_COMPARISON("runner.keyed_100k_process", [](troupe::bench::Reporter& r) {
  constexpr std::int64_t kItems = 100'000;
  troupe::ProcessPoolOptions options;
  options.max_workers = 2;
  options.worker_executable = std::filesystem::path(TROUPE_BIN_DIR) / "troupe-worker";
  troupe::ProcessPool pool({std::filesystem::path(TROUPE_PLUGIN_DIR) / "libtroupe_testing.so"}, options);
  pool.spawn_workers(2);
  for (int i = 0; i < 100; ++i) {
    pool.call("testing.double", i).get();
  }
  const auto s = interleaved({
      [&] { return runner_keyed_process(pool, kItems); },
      [] { return python_peer("runner_peers.py", "ppe_keyed 100000 2"); },
  });
  r.ratio("runner.keyed_100k_process", s[0], "ProcessPoolExecutor", s[1], "items/s");
});

constexpr std::uint64_t kStreamItems = 10'000'000;

// In a fresh process: a default pool with its workers up and a small warm-up
// stream, then the 10M-item stream. Prints its RSS growth (MiB: peak during
// the stream minus RSS before it) and its rate (items/s).
int stream_rss_child() {
  troupe::ThreadPool pool;
  pool.spawn_workers(pool.max_workers());
  auto stream = [&](std::uint64_t items) {
    troupe::Runner<std::uint64_t> runner(pool);
    std::uint64_t next = 0;
    std::uint64_t sum = 0;
    auto summary = runner.stream(
        [&]() -> std::optional<troupe::RunItem<std::uint64_t>> {
          if (next == items) {
            return std::nullopt;
          }
          const std::uint64_t key = next++;
          return troupe::RunItem<std::uint64_t>{key, [key] {
                                                  return key * 2;
                                                }};
        },
        [&](std::uint64_t&& key, troupe::RunOutcome&& outcome) { sum += key + outcome.get().get<std::uint64_t>(); });
    keep(sum);
    return summary.ok == items;
  };
  stream(100'000);
  std::ofstream("/proc/self/clear_refs") << "5";  // VmHWM := current RSS
  const double before = status_mib("VmRSS:");
  const auto start = Clock::now();
  const bool ok = stream(kStreamItems);
  const double rate = static_cast<double>(kStreamItems) / seconds_since(start);
  const double peak = status_mib("VmHWM:");
  if (!ok || before < 0 || peak < 0) {
    std::fprintf(stderr, "runner stream: %s\n", ok ? "/proc/self/status has no VmRSS/VmHWM" : "items failed");
    return 1;
  }
  std::printf("%.6g %.6g\n", peak - before, rate);
  return 0;
}

TROUPE_CHILD_MODE("runner_stream_rss", [] { return stream_rss_child(); });

TROUPE_COMPARISON("runner.stream_10m_rss_growth", [](troupe::bench::Reporter& r) {
  Samples growth;
  Samples rate;
  for (int round = 0; round < troupe::bench::settings().rounds; ++round) {
    const auto figures = troupe::bench::run_child("runner_stream_rss");
    if (figures.size() != 2) {
      std::fprintf(stderr, "troupe-compare: --child runner_stream_rss printed %zu figures, expected 2\n",
                   figures.size());
      return;
    }
    growth.values.push_back(figures[0]);
    rate.values.push_back(figures[1]);
  }
  r.figure("runner.stream_10m_rss_growth", growth, "MiB");
  r.figure("runner.stream_10m_rate", rate, "items/s");
});

}  // namespace
