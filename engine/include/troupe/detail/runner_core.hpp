// troupe/detail/runner_core.hpp: the type-erased streaming loop behind
// troupe::Runner. Items are known to it only by an index (0, 1, 2, ... in
// the order the source gives them); the Runner template maps indexes to
// keys. Not part of the public API.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "troupe/executor.hpp"
#include "troupe/progress.hpp"
#include "troupe/sdk/call.hpp"
#include "troupe/sdk/value.hpp"

namespace troupe {

// Which failed attempts a Runner runs again.
enum class Retry {
  any,               // every error
  crash,             // WorkerCrashedError (a process pool's worker died)
  timeout,           // TaskTimeoutError
  crash_or_timeout,  // either of the two
};

// The delay before a retry: `initial` for the first, times `multiplier`
// for each one after (1: a fixed delay), capped at `max`, then moved by a
// random fraction up to +-`jitter`.
struct Backoff {
  std::chrono::milliseconds initial{100};
  double multiplier = 2.0;
  std::chrono::milliseconds max{10'000};
  double jitter = 0.1;

  static Backoff fixed(std::chrono::milliseconds delay, double jitter = 0.0) { return {delay, 1.0, delay, jitter}; }
  static Backoff exponential(std::chrono::milliseconds initial, double multiplier = 2.0,
                             std::chrono::milliseconds max = std::chrono::seconds(10), double jitter = 0.1) {
    return {initial, multiplier, max, jitter};
  }
};

// `max` extra attempts (max = 1: at most two attempts) for failures `on` names.
struct RetryPolicy {
  std::size_t max = 0;
  Retry on = Retry::any;
  Backoff backoff{};
};

struct RunnerOptions {
  RetryPolicy retries{};
  Progress progress{};         // Progress::none() (the default) shows nothing
  std::string label = "run";   // the progress line's name
  bool report_errors = false;  // log each failed key once, with its error chain
  // Take SIGINT/SIGTERM while run() or stream() runs (an InterruptScope):
  // the first stops the run, the second also interrupts running work.
  bool handle_interrupts = false;
  // Items accepted and not yet finished (queued, running, waiting for a
  // retry), at most; 0: 256 per worker. The source is read only as room frees.
  std::size_t window = 0;
  // Items per pool task; 0: automatic (one at first, then as many as take
  // about 200 us, at most window / (2 * max_workers)).
  std::size_t batch = 0;
  // Each attempt's limit, from when it starts running; nullopt: none. On a
  // ProcessPool the worker running an item past it is killed (the pool's
  // per-frame timeout). On a ThreadPool the item fails with
  // TaskTimeoutError at its deadline, its cancel flag is set and a late
  // result is discarded; items then go one per pool task, and a task that
  // never looks at its flag keeps its thread until it returns. Other
  // executors cannot enforce it (UsageError).
  std::optional<std::chrono::nanoseconds> timeout = std::nullopt;
};

// One key's result: its value or its last error, and how it got there.
struct RunOutcome {
  Value value;                                     // null unless ok
  std::exception_ptr error;                        // the last attempt's error; null when ok
  std::vector<std::exception_ptr> attempt_errors;  // every failed attempt's error, in order
  std::size_t attempts = 0;                        // attempts made (1 + retries)
  std::optional<std::size_t> worker;               // the worker of the last attempt, when known
  // The last attempt's running time (items run together in one pool task
  // share that task's time equally).
  std::chrono::nanoseconds elapsed{};

  bool ok() const noexcept { return error == nullptr; }
  explicit operator bool() const noexcept { return ok(); }
  // The value; rethrows the error when there is one.
  const Value& get() const {
    if (error) {
      std::rethrow_exception(error);
    }
    return value;
  }
  double ms() const noexcept { return std::chrono::duration<double, std::milli>(elapsed).count(); }
};

// One piece of work: a plugin call (any executor) or a C++ callable
// returning something a Value can hold, or nothing (ThreadPool only).
class RunWork {
 public:
  using Callable = std::function<Value()>;

  RunWork(Call call) : work_(std::move(call)) {}  // NOLINT: implicit on purpose
  template <class F>
  requires(!std::is_convertible_v<F, Call> && std::is_invocable_v<F&>) RunWork(F fn)  // NOLINT: implicit on purpose
      : work_(Callable([fn = std::move(fn)]() mutable -> Value {
          if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
            fn();
            return Value();
          } else {
            return Value(fn());
          }
        })) {}

  bool is_call() const noexcept { return work_.index() == 0; }
  const Call& call() const { return std::get<0>(work_); }
  Call& call() { return std::get<0>(work_); }
  const Callable& callable() const { return std::get<1>(work_); }

 private:
  std::variant<Call, Callable> work_;
};

// What a stream() or run() ended with.
struct RunSummary {
  std::uint64_t done = 0;  // ok + failed
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;
  std::uint64_t aborted = 0;
  std::uint64_t retried = 0;  // attempts scheduled again
  bool interrupted = false;   // stop() or a signal ended it early
};

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
