// What a troupe-worker pays for at start-up. Every library it maps costs
// page faults before the pool's first result (cold start): libspdlog and
// libfmt added ~0.2 ms to each worker's exec on a 2-core VM, for a logger
// the worker never uses, and libtroupe with oneTBB and tbbmalloc ~0.3 ms.
// The worker links the engine statically and takes only the objects it uses:
// it maps none of them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/paths.hpp"
#include "troupe/process_pool.hpp"

namespace troupe {
namespace {

std::string maps_of(std::int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(ProcessWorkerStartup, WorkerMapsNeitherLibtroupeNorTbbNorLogging) {
  ProcessPoolOptions options;
  options.max_workers = 1;
  options.worker_executable = test::binary_path("troupe-worker");
  ProcessPool pool({test::plugin_path("testing")}, options);
  ASSERT_EQ(pool.call("testing.double", 21).get().get<std::int64_t>(), 42);
  const auto pids = pool.worker_pids();
  ASSERT_EQ(pids.size(), 1u);
  const std::string maps = maps_of(pids.front());
  ASSERT_NE(maps.find("troupe-worker"), std::string::npos)
      << "cannot read the worker's /proc/" << pids.front() << "/maps";
  EXPECT_EQ(maps.find("libtroupe.so"), std::string::npos) << maps;
  EXPECT_EQ(maps.find("libtbb"), std::string::npos) << maps;
  EXPECT_EQ(maps.find("libspdlog"), std::string::npos) << maps;
}

}  // namespace
}  // namespace troupe
