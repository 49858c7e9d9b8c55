// Process-pool comparisons (issue 4), troupe and its peers in one run:
//   process.submit_each  20,000 tiny tasks, 2 workers, submit all then await all,
//                        vs ProcessPoolExecutor, loky, and the socketpair echo limit
//   process.map          1,000,000 tiny items through map (default chunking), 2 workers,
//                        vs ProcessPoolExecutor.map(chunksize=1000), multiprocessing.Pool.map(chunksize=1000)
//   process.cold_start   a 2-worker pool from construction to its first result, vs ProcessPoolExecutor
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

// One number from the Python peer script, or a negative value when it failed.
double python_peer(const std::string& arguments) {
  const std::string command =
      "/usr/bin/python3 " + std::string(TROUPE_SOURCE_DIR) + "/bench/peers/process_peers.py " + arguments;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return -1;
  }
  double value = -1;
  if (std::fscanf(pipe, "%lf", &value) != 1) {
    value = -1;
  }
  ::pclose(pipe);
  return value;
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

double troupe_submit_each(std::size_t tasks) {
  troupe::ProcessPool pool(testing_plugin(), pool_options(2));
  pool.spawn_workers(2);
  for (int i = 0; i < 100; ++i) {
    pool.call("testing.double", i).get();
  }
  double best = 0;
  std::vector<troupe::Future<troupe::Value>> futures;
  futures.reserve(tasks);
  for (int run = 0; run < 3; ++run) {
    futures.clear();
    const auto start = Clock::now();
    for (std::size_t i = 0; i < tasks; ++i) {
      futures.push_back(pool.call("testing.double", static_cast<std::int64_t>(i)));
    }
    for (auto& f : futures) {
      f.get();
    }
    best = std::max(best, static_cast<double>(tasks) / seconds_since(start));
  }
  return best;
}

double troupe_map(std::size_t items) {
  troupe::ProcessPool pool(testing_plugin(), pool_options(2));
  pool.spawn_workers(2);
  for (int i = 0; i < 100; ++i) {
    pool.call("testing.double", i).get();
  }
  double best = 0;
  for (int run = 0; run < 3; ++run) {
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
    best = std::max(best, rate);
  }
  return best;
}

double troupe_cold_start_ms() {
  std::vector<double> times;
  for (int run = 0; run < 7; ++run) {
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
  const double troupe_rate = troupe_submit_each(kTasks);
  const double ppe = python_peer("ppe_submit 20000 2");
  const double loky = python_peer("loky_submit 20000 2");
  const double echo = echo_limit(400'000, 1024);
  r.ratio("process.submit_each", troupe_rate, "ProcessPoolExecutor", ppe, "tasks/s");
  r.ratio("process.submit_each.loky", troupe_rate, "loky", loky, "tasks/s");
  r.ratio("process.submit_each.echo_limit", troupe_rate, "socketpair echo", echo, "msgs/s");
});

TROUPE_COMPARISON("process.map", [](troupe::bench::Reporter& r) {
  constexpr std::size_t kItems = 1'000'000;
  const double troupe_rate = troupe_map(kItems);
  const double ppe = python_peer("ppe_map 1000000 2 1000");
  const double pool = python_peer("pool_map 1000000 2 1000");
  r.ratio("process.map", troupe_rate, "ProcessPoolExecutor.map(chunksize=1000)", ppe, "items/s");
  r.ratio("process.map.mp_pool", troupe_rate, "multiprocessing.Pool.map(chunksize=1000)", pool, "items/s");
});

// The floor under any spawned worker on this machine: posix_spawn of
// /bin/true and waiting for it (median of 7).
double exec_floor_ms() {
  std::vector<double> times;
  for (int run = 0; run < 7; ++run) {
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

TROUPE_COMPARISON("process.cold_start", [](troupe::bench::Reporter& r) {
  const double troupe_ms = troupe_cold_start_ms();
  const double ppe = python_peer("ppe_cold 2");
  r.ratio_lower_is_better("process.cold_start", troupe_ms, "ProcessPoolExecutor", ppe, "ms");
  r.figure("process.cold_start.exec_floor", exec_floor_ms(), "ms");
});

}  // namespace
