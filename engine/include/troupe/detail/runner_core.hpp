// troupe/detail/runner_core.hpp: the type-erased streaming loop behind
// troupe::Runner. Items are known to it only by an index (0, 1, 2, ... in
// the order the source gives them); the Runner template maps indexes to
// keys. Not part of the public API.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "troupe/executor.hpp"
#include "troupe/progress.hpp"
#include "troupe/run_outcome.hpp"
#include "troupe/run_work.hpp"
#include "troupe/runner_options.hpp"

namespace troupe {
namespace detail {

class ProgressMeter;
class RunState;

class RunnerCore {
 public:
  // The item with this index, or nullopt when there are no more.
  using Source = std::function<std::optional<RunWork>(std::uint64_t index)>;
  using Sink = std::function<void(std::uint64_t index, RunOutcome&& outcome)>;
  using Aborted = std::function<void(std::uint64_t index)>;
  // What report_errors logs for an index ("key 'd1'").
  using Describe = std::function<std::string(std::uint64_t index)>;

  // Throws ArgumentError naming each bad option, UsageError for a timeout
  // on an executor that is neither a ThreadPool nor a ProcessPool.
  RunnerCore(Executor& executor, RunnerOptions options);
  ~RunnerCore();
  RunnerCore(const RunnerCore&) = delete;
  RunnerCore& operator=(const RunnerCore&) = delete;

  // Throws UsageError when `work` cannot run on this executor.
  void check(const RunWork& work) const;
  // Pulls, submits, retries and reports until the source ends and nothing
  // is left, or a stop. Sink and aborted run on the calling thread.
  RunSummary run(const Source& source, const Sink& sink, const Aborted& aborted, const Describe& describe,
                 std::optional<std::uint64_t> total);
  // 1: stop feeding and cancel what is queued; 2: also interrupt what runs.
  // From any thread; levels only rise.
  void stop(int level) noexcept;
  int stop_level() const noexcept { return stop_level_.load(std::memory_order_acquire); }
  const std::atomic<int>& stop_flag() const noexcept { return stop_level_; }
  ProgressSnapshot snapshot() const;
  // Items accepted and not yet reported (the window's use), now.
  std::size_t in_flight() const noexcept { return in_flight_.load(std::memory_order_relaxed); }
  std::size_t window() const noexcept { return window_; }

 private:
  struct Loop;
  friend class RunState;

  Executor& executor_;
  RunnerOptions options_;
  bool thread_pool_;  // C++ callables run only there
  std::size_t window_;
  std::atomic<int> stop_level_{0};
  std::atomic<std::size_t> in_flight_{0};
  mutable std::mutex meter_mutex_;
  std::unique_ptr<ProgressMeter> meter_;  // the current run's, kept after it
  // The wake-up and completions a stop() signals; shared with the callbacks
  // of timed-out tasks, which may end after the run (and the runner).
  std::shared_ptr<Loop> loop_;
};

}  // namespace detail
}  // namespace troupe
