// The main() of an MPI test binary under `mpirun -np 3`: rank 0 runs the
// tests, ranks 1 and 2 serve the pools they ask for.
//
// A test of an MPI job that hangs would hold every rank until ctest's
// timeout and say nothing about where. A watchdog names the test that has
// run too long, with its elapsed time, and aborts rank 0; mpirun then ends
// the other ranks, so the job fails at once and the log says which.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "troupe/mpi.hpp"

namespace troupe::test {

class HangWatchdog final : public ::testing::EmptyTestEventListener {
 public:
  explicit HangWatchdog(std::chrono::seconds limit)
      : limit_(limit), thread_([this](std::stop_token stop) { watch(stop); }) {}
  ~HangWatchdog() override {
    thread_.request_stop();
    wake_.notify_all();
  }

  void OnTestStart(const ::testing::TestInfo& test) override {
    std::lock_guard lock(mutex_);
    current_ = std::string(test.test_suite_name()) + "." + test.name();
    started_ = std::chrono::steady_clock::now();
  }
  void OnTestEnd(const ::testing::TestInfo&) override {
    std::lock_guard lock(mutex_);
    current_.clear();
  }

 private:
  void watch(const std::stop_token& stop) {
    std::unique_lock lock(mutex_);
    while (!stop.stop_requested()) {
      wake_.wait_for(lock, std::chrono::seconds(1));
      if (!current_.empty() && std::chrono::steady_clock::now() - started_ > limit_) {
        std::fprintf(stderr, "\nhang watchdog: %s has run for more than %lld s; aborting rank 0 to end the job\n",
                     current_.c_str(), static_cast<long long>(limit_.count()));
        std::fflush(stderr);
        std::abort();
      }
    }
  }

  std::chrono::seconds limit_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::string current_;
  std::chrono::steady_clock::time_point started_{};
  std::jthread thread_;  // last: it reads the members above
};

// Serves `served(rank)` on ranks 1 and 2; runs the tests on rank 0, any of
// them running past `hang_limit` aborting the job.
inline int run_mpi_tests(int argc, char** argv, const char* binary, const std::vector<std::filesystem::path>& plugins,
                         const std::function<std::vector<MpiPoolOptions>(int rank)>& served,
                         std::chrono::seconds hang_limit) {
  troupe::mpi::Environment mpi(argc, argv);
  if (mpi.size() != 3) {
    std::fprintf(stderr, "%s: run it with mpirun -np 3 (got %d ranks)\n", binary, mpi.size());
    return 2;
  }
  if (mpi.rank() != 0) {
    troupe::mpi::serve(plugins, served(mpi.rank()));
    return 0;
  }
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(new HangWatchdog(hang_limit));  // gtest owns it
  return RUN_ALL_TESTS();
}

}  // namespace troupe::test
