// Synchronisation helpers for tests: events instead of sleeps.
#pragma once

#include <chrono>
#include <latch>
#include <thread>

namespace troupe::test {

// A one-shot event: set() once, wait() blocks until then.
class Event {
 public:
  void set() { latch_.count_down(); }
  void wait() { latch_.wait(); }
  bool is_set() { return latch_.try_wait(); }

 private:
  std::latch latch_{1};
};

// Polls `condition` up to a generous bound; for effects with no event to wait on.
template <class F>
bool eventually(F condition, std::chrono::milliseconds bound = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < end) {
    if (condition()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return condition();
}

}  // namespace troupe::test
