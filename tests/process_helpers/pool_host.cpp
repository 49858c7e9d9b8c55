// A host for ProcessPool's host-death test: starts a 2-worker pool on the
// testing plugin, sets both workers on a task that never returns, prints
// their pids (one a line, then "ready") and waits to be killed.
//
//   troupe-test-pool-host PLUGIN
#include <unistd.h>

#include <cstdio>
#include <exception>

#include "troupe/process_pool.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: troupe-test-pool-host PLUGIN\n");
    return 2;
  }
  try {
    troupe::ProcessPool pool({argv[1]}, {.max_workers = 2});
    auto first = pool.call("testing.hang");
    auto second = pool.call("testing.hang");
    // Both hang tasks were sent once both workers are busy.
    while (pool.busy_workers() < 2) {
      usleep(1000);
    }
    for (const auto pid : pool.worker_pids()) {
      std::printf("%lld\n", static_cast<long long>(pid));
    }
    std::printf("ready\n");
    std::fflush(stdout);
    for (;;) {
      pause();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "troupe-test-pool-host: %s\n", e.what());
    return 1;
  }
}
