// troupe/interrupt.hpp
//
// troupe::InterruptScope: while alive, SIGINT and SIGTERM do not end the
// process; each one is counted and handed to `on_interrupt(count)` (1 for
// the first, 2 for the second, ...) on the scope's own thread, never in
// the signal handler. The previous handlers are restored when it ends.
//
// Guarantees: installed only when constructed (a library never takes the
// signals on its own); one scope at a time per process (a second is a
// UsageError); the callback has returned for good once the destructor has,
// and it has seen every signal that arrived before. A callback that throws
// is logged and the scope goes on.
// Hazards: the callback runs on the scope's thread, so it must not destroy
// the scope (end it from another thread: set a flag, notify, return).
#pragma once

#include <functional>
#include <memory>

namespace troupe {

class InterruptScope {
 public:
  explicit InterruptScope(std::function<void(int count)> on_interrupt);
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

  // Interrupts seen so far.
  int count() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace troupe
