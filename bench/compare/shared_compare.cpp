// Shared-state comparisons, troupe and its Python peers in one run, each line
// the median of settings().rounds interleaved rounds (compare.hpp):
//   shared.counter_process  2 process workers add 1 to one shared counter in
//                           a loop, vs multiprocessing.Value with its lock
//   shared.dict_process     2 process workers update one key of a shared dict
//                           (+1 under the entry's lock) in a loop, vs a
//                           multiprocessing Manager dict under a Manager lock
// The pool is made and warmed once, before the rounds, as the Python peers
// start their processes before their clock. Peers: bench/peers/shared_peers.py.
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
using troupe::bench::python_peer;

constexpr int kWorkers = 2;

std::unique_ptr<troupe::ProcessPool> shared_pool() {
  troupe::ProcessPoolOptions options;
  options.max_workers = kWorkers;
  options.worker_executable = std::filesystem::path(TROUPE_BIN_DIR) / "troupe-worker";
  auto pool = std::make_unique<troupe::ProcessPool>(
      std::vector<std::filesystem::path>{std::filesystem::path(TROUPE_PLUGIN_DIR) / "libtroupe_testing.so"}, options);
  pool->counter("adds");
  pool->dict("table");
  pool->spawn_workers(kWorkers);
  for (int i = 0; i < 50; ++i) {
    pool->call("testing.shared_add", "adds", 10).get();
    pool->call("testing.shared_increment", "table", "k", 10).get();
  }
  return pool;
}

// Calls per second of `task` run by every worker at once, `n` each.
double per_second(troupe::ProcessPool& pool, const std::string& task, const troupe::Args& args, std::int64_t n) {
  const auto start = Clock::now();
  std::vector<troupe::Future<troupe::Value>> runs;
  for (int w = 0; w < kWorkers; ++w) {
    runs.push_back(pool.submit_call(troupe::Call{task, args, {}}));
  }
  for (auto& f : runs) {
    f.get();
  }
  return static_cast<double>(n * kWorkers) / std::chrono::duration<double>(Clock::now() - start).count();
}

TROUPE_COMPARISON("shared.counter_process", [](troupe::bench::Reporter& r) {
  constexpr std::int64_t kAdds = 2'000'000;
  const auto pool = shared_pool();
  const auto s = interleaved({
      [&] {
        return per_second(*pool, "testing.shared_add", {"adds", kAdds}, kAdds);
      },
      [] { return python_peer("shared_peers.py", "value_add 100000 2"); },
  });
  r.ratio("shared.counter_process", s[0], "multiprocessing.Value", s[1], "adds/s");
});

TROUPE_COMPARISON("shared.dict_process", [](troupe::bench::Reporter& r) {
  constexpr std::int64_t kUpdates = 200'000;
  const auto pool = shared_pool();
  const auto s = interleaved({
      [&] {
        return per_second(*pool, "testing.shared_increment", {"table", "k", kUpdates}, kUpdates);
      },
      [] { return python_peer("shared_peers.py", "manager_update 2000 2"); },
  });
  r.ratio("shared.dict_process", s[0], "multiprocessing Manager dict", s[1], "updates/s");
});

}  // namespace
