// Waits until futures of an MpiPool have left rank 0's queue.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

#include "support/sync.hpp"
#include "troupe/future.hpp"

namespace troupe::test {

// True once none of `futures` is pending (each was sent to its rank, or
// ended); false if that takes longer than a generous bound.
template <class F>
bool all_sent(const std::vector<F>& futures) {
  return eventually(
      [&] { return std::ranges::none_of(futures, [](const F& f) { return f.state() == FutureState::pending; }); },
      std::chrono::seconds(30));
}

}  // namespace troupe::test
