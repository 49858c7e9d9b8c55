// troupe/runner_options.hpp
//
// What a troupe::Runner is configured with: retries (which failures, how
// many extra attempts, the back-off between them), progress, the window of
// items in flight and the batch size.
//
//   troupe::RunnerOptions options{.retries = {.max = 2, .on = troupe::Retry::crash_or_timeout,
//                                             .backoff = troupe::Backoff::fixed(std::chrono::seconds(1))},
//                                 .progress = troupe::Progress::to_terminal()};
//
// Guarantees: the Runner's constructor checks them (ArgumentError naming
// each bad field).
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include "troupe/progress.hpp"

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

}  // namespace troupe
