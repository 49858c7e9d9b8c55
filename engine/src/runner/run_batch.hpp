// One pool task of a Runner's loop (runner_core.cpp): the items it holds,
// the future it runs as, and how its results come back one per item.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <variant>
#include <vector>

#include "troupe/future.hpp"
#include "troupe/outcome.hpp"
#include "troupe/run_outcome.hpp"
#include "troupe/run_work.hpp"

namespace troupe::detail::runner {

using Clock = std::chrono::steady_clock;

struct ItemResult {
  Value value;
  std::exception_ptr error;
  bool cancelled = false;  // never ran
};

struct Slot {
  std::uint64_t index = 0;
  RunWork work;
  RunOutcome outcome;
};

// One pool task: a callable batch (ThreadPool), a chunk of one plugin task
// (submit_chunk) or a single call.
struct Batch {
  std::vector<Slot> slots;
  std::vector<ItemResult> results;  // written by a callable batch's worker
  std::variant<Future<void>, Future<Value>, Future<std::vector<Outcome<Value>>>> future;
  std::optional<Clock::time_point> deadline;  // a timed thread pool task, once it started
};

// Whether two items can run in one pool task: callables together, or calls
// of one task without keyword arguments (a chunk).
bool batchable(const RunWork& a, const RunWork& b);

// A finished future's results, one per slot: a batch cancelled by a stop
// never ran (`cancelled`); a failed one fails every item.
std::vector<ItemResult> results_of(Batch& batch);

}  // namespace troupe::detail::runner
