// config.load_100_pools: config::load_file alone (no plugin code runs) on a
// file of 100 pools, the figure the loader's timing bar is about.
#include <unistd.h>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "compare.hpp"
#include "troupe/config.hpp"

namespace {

std::filesystem::path write_hundred_pools() {
  const auto path =
      std::filesystem::temp_directory_path() / ("troupe-compare-config-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream out(path);
  out << "version: 1\npools:\n";
  for (int i = 0; i < 100; ++i) {
    out << "  p" << i << ":\n    kind: " << (i % 2 != 0 ? "thread" : "process")
        << "\n    workers: 4\n    idle_timeout: 10s\n    max_tasks_per_worker: 100\n    queue_limit: 1000\n"
           "    initializer: {task: text.open_dict, args: [dict.txt]}\n";
  }
  return path;
}

double load_ms(const std::filesystem::path& path) {
  const auto start = std::chrono::steady_clock::now();
  const troupe::EngineSpec spec = troupe::config::load_file(path);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return spec.pools.size() == 100 ? ms : -1;
}

}  // namespace

TROUPE_COMPARISON("config.load", [](troupe::bench::Reporter& r) {
  const auto path = write_hundred_pools();
  const auto s = troupe::bench::interleaved({[&] {
    return load_ms(path);
  }});
  std::filesystem::remove(path);
  r.figure("config.load_100_pools", s[0], "ms");
});
