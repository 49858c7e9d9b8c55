// troupe/run_outcome.hpp
//
// What a troupe::Runner reports: each key's RunOutcome (its value or its
// last error, every attempt's error, attempts, worker, time) and a run's
// RunSummary. Their own types: map's Outcome stays lean.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <vector>

#include "troupe/sdk/value.hpp"

namespace troupe {

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

// What a stream() or run() ended with.
struct RunSummary {
  std::uint64_t done = 0;  // ok + failed
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;
  std::uint64_t aborted = 0;
  std::uint64_t retried = 0;  // attempts scheduled again
  bool interrupted = false;   // stop() or a signal ended it early
};

}  // namespace troupe
