// Process-pool comparisons, troupe and its peers in one run, each line the
// median of settings().rounds interleaved rounds (compare.hpp):
//   process.submit_each  20,000 tiny tasks, 2 workers, submit all then await all,
//                        vs ProcessPoolExecutor, loky, and the socketpair echo limit
//   process.map          1,000,000 tiny items through map (default chunking), 2 workers,
//                        vs ProcessPoolExecutor.map(chunksize=1000), multiprocessing.Pool.map(chunksize=1000)
//   process.cold_start   a 2-worker pool from construction to its first result, vs ProcessPoolExecutor
// The pools of submit_each and map are made and warmed once, before the
// rounds, as the Python peers start their workers before their clock.
// Python peers run bench/peers/process_peers.py with Debian's /usr/bin/python3.
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <ranges>
#include <string>
#include <thread>
#include <vector>

#include "compare.hpp"
#include "troupe/map.hpp"
#include "troupe/process_pool.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using troupe::bench::interleaved;
using troupe::bench::python_peer;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

troupe::ProcessPoolOptions pool_options(std::size_t workers) {
  troupe::ProcessPoolOptions options;
  options.max_workers = workers;
  options.worker_executable = std::filesystem::path(TROUPE_BIN_DIR) / "troupe-worker";
  return options;
}

std::vector<std::filesystem::path> testing_plugin() {
  return {std::filesystem::path(TROUPE_PLUGIN_DIR) / "libtroupe_testing.so"};
}

// The physical limit: small messages streamed through an echo process over a
// socketpair, each written with its own write(), up to `window` in flight.
double echo_limit(std::size_t messages, std::size_t window) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    return -1;
  }
  // fork() is fine here: the child only calls read, write and _exit.
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(pair[0]);
    char buffer[65536];
    for (;;) {
      const ssize_t n = ::read(pair[1], buffer, sizeof buffer);
      if (n <= 0) {
        ::_exit(0);
      }
      for (ssize_t done = 0; done < n;) {
        const ssize_t w = ::write(pair[1], buffer + done, static_cast<std::size_t>(n - done));
        if (w <= 0) {
          ::_exit(1);
        }
        done += w;
      }
    }
  }
  ::close(pair[1]);
  constexpr std::size_t kMessage = 24;  // about a tiny task's frame
  std::atomic<std::size_t> received{0};
  const auto start = Clock::now();
  std::thread reader([&] {
    char buffer[65536];
    std::size_t bytes = 0;
    while (bytes < messages * kMessage) {
      const ssize_t n = ::read(pair[0], buffer, sizeof buffer);
      if (n <= 0) {
        break;
      }
      bytes += static_cast<std::size_t>(n);
      received.store(bytes / kMessage, std::memory_order_release);
    }
  });
  char message[kMessage] = {};
  for (std::size_t sent = 0; sent < messages; ++sent) {
    while (sent - received.load(std::memory_order_acquire) >= window) {
      std::this_thread::yield();
    }
    if (::write(pair[0], message, kMessage) != static_cast<ssize_t>(kMessage)) {
      break;
    }
  }
  reader.join();
  const double rate = static_cast<double>(messages) / seconds_since(start);
  ::close(pair[0]);
  ::waitpid(child, nullptr, 0);
  return rate;
}

// A 2-worker pool with its workers up and warm, kept for every round (the
// Python peers, too, start their workers before the clock).
std::unique_ptr<troupe::ProcessPool> warm_pool() {
  auto pool = std::make_unique<troupe::ProcessPool>(testing_plugin(), pool_options(2));
  pool->spawn_workers(2);
  for (int i = 0; i < 100; ++i) {
    pool->call("testing.double", i).get();
  }
  return pool;
}

// Submits every task, then awaits all.
double troupe_submit_each(troupe::ProcessPool& pool, std::size_t tasks) {
  std::vector<troupe::Future<troupe::Value>> futures;
  futures.reserve(tasks);
  const auto start = Clock::now();
  for (std::size_t i = 0; i < tasks; ++i) {
    futures.push_back(pool.call("testing.double", static_cast<std::int64_t>(i)));
  }
  for (auto& f : futures) {
    f.get();
  }
  return static_cast<double>(tasks) / seconds_since(start);
}

double troupe_map(troupe::ProcessPool& pool, std::size_t items) {
  const auto start = Clock::now();
  std::int64_t total = 0;
  for (const auto& v : troupe::map(pool, "testing.double", std::views::iota(std::int64_t{0}, std::int64_t(items)))) {
    total += v.get<std::int64_t>();
  }
  const double rate = static_cast<double>(items) / seconds_since(start);
  const auto n = static_cast<std::int64_t>(items);
  if (total != n * (n - 1)) {
    std::fprintf(stderr, "process.map: wrong total %lld\n", static_cast<long long>(total));
    return -1;
  }
  return rate;
}

// Construction of a 2-worker pool to its first result, in ms: the median of `runs`.
double troupe_cold_start_ms(int runs) {
  std::vector<double> times;
  for (int run = 0; run < runs; ++run) {
    const auto start = Clock::now();
    troupe::ProcessPool pool(testing_plugin(), pool_options(2));
    pool.call("testing.double", 1).get();
    times.push_back(seconds_since(start) * 1000);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

TROUPE_COMPARISON("process.submit_each", [](troupe::bench::Reporter& r) {
  constexpr std::size_t kTasks = 20'000;
  const auto pool = warm_pool();
  const auto s = interleaved({
      [&] { return troupe_submit_each(*pool, kTasks); },
      [] { return python_peer("process_peers.py", "ppe_submit 20000 2"); },
      [] { return python_peer("process_peers.py", "loky_submit 20000 2"); },
      [] { return echo_limit(400'000, 1024); },
  });
  r.ratio("process.submit_each", s[0], "ProcessPoolExecutor", s[1], "tasks/s");
  r.ratio("process.submit_each.loky", s[0], "loky", s[2], "tasks/s");
  r.ratio("process.submit_each.echo_limit", s[0], "socketpair echo", s[3], "msgs/s");
});

TROUPE_COMPARISON("process.map", [](troupe::bench::Reporter& r) {
  constexpr std::size_t kItems = 1'000'000;
  const auto pool = warm_pool();
  const auto s = interleaved({
      [&] { return troupe_map(*pool, kItems); },
      [] { return python_peer("process_peers.py", "ppe_map 1000000 2 1000"); },
      [] { return python_peer("process_peers.py", "pool_map 1000000 2 1000"); },
  });
  r.ratio("process.map", s[0], "ProcessPoolExecutor.map(chunksize=1000)", s[1], "items/s");
  r.ratio("process.map.mp_pool", s[0], "multiprocessing.Pool.map(chunksize=1000)", s[2], "items/s");
});

// The floor under any spawned worker on this machine: posix_spawn of
// /bin/true and waiting for it (median of `runs`).
double exec_floor_ms(int runs) {
  std::vector<double> times;
  for (int run = 0; run < runs; ++run) {
    const auto start = Clock::now();
    pid_t pid = -1;
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    if (::posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ) != 0) {
      return -1;
    }
    ::waitpid(pid, nullptr, 0);
    times.push_back(seconds_since(start) * 1000);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// Each round: the median of 3 starts on each side (a fresh Python process's
// first executor also pays for imports, which a median of 3 drops).
TROUPE_COMPARISON("process.cold_start", [](troupe::bench::Reporter& r) {
  const auto s = interleaved({
      [] { return troupe_cold_start_ms(3); },
      [] { return python_peer("process_peers.py", "ppe_cold 2 3"); },
      [] { return exec_floor_ms(3); },
  });
  r.ratio_lower_is_better("process.cold_start", s[0], "ProcessPoolExecutor", s[1], "ms");
  r.figure("process.cold_start.exec_floor", s[2], "ms");
});

}  // namespace
