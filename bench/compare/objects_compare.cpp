// Worker-object comparisons (PluginBuilder::worker_class), each line the
// median of settings().rounds interleaved rounds (compare.hpp):
//   objects.method_call  20,000 calls of a method on a built per-worker object
//                        vs the same work as a plain task (testing.double), on
//                        one warm 2-worker process pool, submit all then await all
// The object is built before the rounds (the warm-up calls the method), so
// what is measured is a call on a built object.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "compare.hpp"
#include "troupe/process_pool.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using troupe::bench::interleaved;

std::unique_ptr<troupe::ProcessPool> warm_pool() {
  troupe::ProcessPoolOptions options;
  options.max_workers = 2;
  options.worker_executable = std::filesystem::path(TROUPE_BIN_DIR) / "troupe-worker";
  auto pool = std::make_unique<troupe::ProcessPool>(
      std::vector<std::filesystem::path>{std::filesystem::path(TROUPE_PLUGIN_DIR) / "libtroupe_testing.so"}, options);
  pool->spawn_workers(2);
  std::vector<troupe::Future<troupe::Value>> warm;
  for (int i = 0; i < 200; ++i) {
    warm.push_back(pool->call("testing.double", i));
    warm.push_back(pool->call("testing.double_on_object", i));
  }
  for (auto& f : warm) {
    f.get();
  }
  return pool;
}

// Submits `calls` calls of `task`, then awaits all; calls per second, or -1
// when a result is wrong.
double calls_per_second(troupe::ProcessPool& pool, const std::string& task, std::size_t calls) {
  std::vector<troupe::Future<troupe::Value>> futures;
  futures.reserve(calls);
  const auto start = Clock::now();
  for (std::size_t i = 0; i < calls; ++i) {
    futures.push_back(pool.call(task, static_cast<std::int64_t>(i)));
  }
  std::int64_t total = 0;
  for (auto& f : futures) {
    total += f.get().get<std::int64_t>();
  }
  const double rate = static_cast<double>(calls) / std::chrono::duration<double>(Clock::now() - start).count();
  const auto n = static_cast<std::int64_t>(calls);
  if (total != n * (n - 1)) {
    std::fprintf(stderr, "objects.method_call: %s returned a wrong total %lld\n", task.c_str(),
                 static_cast<long long>(total));
    return -1;
  }
  return rate;
}

TROUPE_COMPARISON("objects.method_call", [](troupe::bench::Reporter& r) {
  constexpr std::size_t kCalls = 20'000;
  const auto pool = warm_pool();
  const auto s = interleaved({
      [&] { return calls_per_second(*pool, "testing.double_on_object", kCalls); },
      [&] { return calls_per_second(*pool, "testing.double", kCalls); },
  });
  r.ratio("objects.method_call", s[0], "plain task", s[1], "calls/s");
});

}  // namespace
