// The chaos test: 100,000 tiny tasks through 3 workers while another thread
// SIGKILLs a random worker every ~20 ms. Every future must end exactly once,
// with its value or WorkerCrashedError; nothing may hang or leak (file
// descriptors, child processes); the pool must work afterwards.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "support/paths.hpp"
#include "troupe/process_pool.hpp"

namespace troupe {
namespace {

using namespace std::chrono_literals;

// Sanitized workers take far longer than 20 ms to start, so a kill every
// 20 ms would never let one reach ready: sanitizer builds kill more slowly.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr auto kKillEvery = std::chrono::milliseconds(300);
#else
constexpr auto kKillEvery = std::chrono::milliseconds(20);
#endif

// Kills a random worker of `pool` every kKillEvery until destroyed.
class Killer {
 public:
  explicit Killer(ProcessPool& pool) : thread_([this, &pool] { run(pool); }) {}
  ~Killer() {
    stop_.store(true);
    thread_.join();
  }
  Killer(const Killer&) = delete;
  Killer& operator=(const Killer&) = delete;
  int kills() const { return kills_.load(); }

 private:
  void run(ProcessPool& pool) {
    std::mt19937 random(12345);
    while (!stop_.load()) {
      const auto pids = pool.worker_pids();
      if (!pids.empty()) {
        ::kill(static_cast<pid_t>(pids[random() % pids.size()]), SIGKILL);
        kills_.fetch_add(1);
      }
      std::this_thread::sleep_for(kKillEvery);
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<int> kills_{0};
  std::thread thread_;
};

std::size_t open_fds() {
  std::size_t count = 0;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (::readdir(dir) != nullptr) {
      ++count;
    }
    ::closedir(dir);
  }
  return count;
}

TEST(ProcessPoolChaos, RandomSigkillsEndEveryFutureExactlyOnce) {
  constexpr std::size_t kTasks = 100'000;
  const std::size_t fds_before = open_fds();
  auto ends = std::make_unique<std::atomic<int>[]>(kTasks);
  std::size_t values = 0;
  std::size_t crashed = 0;
  int kills = 0;
  {
    ProcessPoolOptions options;
    options.max_workers = 3;
    options.worker_executable = test::binary_path("troupe-worker");
    options.crash_storm.max = 0;  // the killer is a storm on purpose
    ProcessPool pool({test::plugin_path("testing")}, options);

    auto killer = std::make_unique<Killer>(pool);

    std::vector<Future<Value>> futures;
    futures.reserve(kTasks);
    for (std::size_t i = 0; i < kTasks; ++i) {
      futures.push_back(pool.call("testing.double", static_cast<std::int64_t>(i)));
      futures.back().add_done_callback([&ends, i](const Future<Value>&) { ends[i].fetch_add(1); });
    }
    for (std::size_t i = 0; i < kTasks; ++i) {
      try {
        // A generous bound: a hang fails the test instead of stalling it.
        const Value v = futures[i].get(120s);
        ASSERT_EQ(v, static_cast<std::int64_t>(2 * i));
        ++values;
      } catch (const WorkerCrashedError& e) {
        EXPECT_EQ(e.signal(), SIGKILL);
        EXPECT_EQ(e.key(), futures[i].id());
        ++crashed;
      }
    }
    kills = killer->kills();
    killer.reset();
    EXPECT_EQ(values + crashed, kTasks);
    EXPECT_GT(kills, 0);
    EXPECT_EQ(pool.call("testing.double", 21).get(30s), 42);
    EXPECT_TRUE(pool.join(30s));
    std::printf("chaos: %d kills, %zu values, %zu WorkerCrashedError, %llu worker crashes seen by the pool\n", kills,
                values, crashed, static_cast<unsigned long long>(pool.stats().retired.crash));
  }
  for (std::size_t i = 0; i < kTasks; ++i) {
    ASSERT_EQ(ends[i].load(), 1) << "future " << i;
  }
  EXPECT_EQ(open_fds(), fds_before);
  // No zombies and no survivors: the pool reaped every worker it started.
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

}  // namespace
}  // namespace troupe
