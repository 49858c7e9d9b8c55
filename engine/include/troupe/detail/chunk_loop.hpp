// troupe/detail/chunk_loop.hpp
//
// The one loop that runs a map chunk's items, on both pool kinds (a thread
// pool's chunk task, a process worker's chunk frame): items run in order,
// cancellation is checked before each item, and once it is seen no later
// item runs. The caller decides how an item runs and how outcomes are
// recorded; the tally feeds item-level counters.
#pragma once

#include <cstddef>

namespace troupe::detail {

struct ChunkTally {
  std::size_t ok = 0;
  std::size_t failed = 0;
  std::size_t cancelled = 0;  // items never run because the chunk was cancelled
};

// run_item(i) runs item i and returns whether it succeeded (it records the
// item's value or error itself and must not throw). skip_item(i) records
// item i as cancelled. is_cancelled() is read before every item.
template <class IsCancelled, class RunItem, class SkipItem>
ChunkTally run_chunk_items(std::size_t count, IsCancelled&& is_cancelled, RunItem&& run_item, SkipItem&& skip_item) {
  ChunkTally tally;
  std::size_t i = 0;
  for (; i < count; ++i) {
    if (is_cancelled()) {
      break;
    }
    if (run_item(i)) {
      ++tally.ok;
    } else {
      ++tally.failed;
    }
  }
  for (; i < count; ++i) {
    skip_item(i);
    ++tally.cancelled;
  }
  return tally;
}

}  // namespace troupe::detail
