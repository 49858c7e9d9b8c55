// What testing.shared_chaos shares with the test that kills its worker: a
// file mapped by both, in which the task says what it is doing and counts
// the shared-state calls that returned.
#pragma once

#include <atomic>
#include <cstdint>

namespace troupe::testing {

enum ChaosPhase : std::uint32_t {
  chaos_idle = 0,      // between calls: every returned call is counted
  chaos_adding = 1,    // inside counter.add(): it may or may not have applied
  chaos_updating = 2,  // inside dict.update(), outside fn: it may or may not have applied
  chaos_in_fn = 3,     // inside the update's fn, holding the entry's lock: not applied yet
};

struct ChaosJournal {
  std::atomic<std::int64_t> pid;
  std::atomic<std::uint32_t> phase;
  std::atomic<std::uint32_t> stop;    // set by the test: return
  std::atomic<std::int64_t> adds;     // counter.add(1) calls that returned
  std::atomic<std::int64_t> updates;  // dict.update(+1) calls that returned
  std::atomic<std::int64_t> torn;     // values read that failed their own check
};

}  // namespace troupe::testing
