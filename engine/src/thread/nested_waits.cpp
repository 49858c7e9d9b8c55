// Tasks that wait inside their own ThreadPool. A waiting task never runs
// unrelated queued work on its stack (it may hold a lock that work takes, or
// wait for something that work waits for, and its wait would last as long
// as that work). It runs the awaited task itself when that is the pool's and
// has not started; otherwise it blocks, and while work is queued the pool
// starts a worker in its stead (a compensating one at max_workers, at most
// max_workers of them), as Java's ForkJoinPool does for managed blocking.
#include <mutex>

#include "thread/pool_core.hpp"

namespace troupe {

using detail::FutureCore;
using detail::threads::cpu_relax;
using detail::threads::kBroken;
using detail::threads::run_counted;
using detail::threads::WorkerThread;

// A task on `wt` waits for `task`, a task of this pool: runs it here if it
// has not started (its queue entry is skipped later). False when it had.
bool ThreadPool::Core::run_inline(FutureCore& task, WorkerThread& wt) noexcept {
  if ((phase.load(std::memory_order_acquire) & kBroken) || task.state() != FutureState::pending ||
      !task.try_start(wt.worker->id())) {
    return false;
  }
  wt.current_lock.lock();
  FutureCore* outer = wt.current;
  wt.current = &task;
  wt.current_lock.unlock();
  run_counted(task, slots[wt.slot], *wt.worker);
  wt.current_lock.lock();
  wt.current = outer;
  wt.current_lock.unlock();
  return true;
}

void ThreadPool::Core::begin_blocked() noexcept {
  blocked.fetch_add(1, std::memory_order_seq_cst);
  // Pairs with the submitter's fence after its enqueue: either it sees
  // this blocked worker, or compensate() sees its task.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  compensate();
}

// Threads that may run tasks now: live and compensating workers, less
// those blocked in a wait.
std::size_t ThreadPool::Core::runnable() const noexcept {
  const auto all = live.load(std::memory_order_seq_cst) + spares.load(std::memory_order_seq_cst);
  const auto waiting = blocked.load(std::memory_order_seq_cst);
  return all > waiting ? all - waiting : 0;
}

// Work is queued, no worker is idle to take it and workers are blocked in
// waits: start a worker (a compensating one at max_workers) so the queue
// moves, while fewer than max_workers threads are runnable.
void ThreadPool::Core::compensate() noexcept {
  if (blocked.load(std::memory_order_seq_cst) == 0 || queue_empty() || idle.load(std::memory_order_seq_cst) > 0 ||
      runnable() >= max_workers) {
    return;
  }
  try {
    std::lock_guard lock(mutex);
    compensate_locked();
  } catch (...) {
    log_spawn_failure("a worker to stand in for one blocked in a wait");
  }
}

void ThreadPool::Core::compensate_locked() {
  if ((phase.load(std::memory_order_seq_cst) & kBroken) || queue_empty() || runnable() >= max_workers) {
    return;
  }
  if (!spawn_locked(false)) {
    spawn_locked(true);
  }
}

// A compensating worker leaves, at a task boundary, once more than
// max_workers threads are runnable (the worker it stood in for is back).
bool ThreadPool::Core::spare_should_leave() noexcept {
  auto s = spares.load(std::memory_order_seq_cst);
  for (;;) {
    const auto all = live.load(std::memory_order_seq_cst) + s;
    const auto waiting = blocked.load(std::memory_order_seq_cst);
    if (all <= waiting + max_workers) {
      return false;
    }
    if (spares.compare_exchange_weak(s, s - 1, std::memory_order_seq_cst)) {
      return true;
    }
  }
}

// An idle compensating worker leaves when nothing is queued.
bool ThreadPool::Core::try_retire_spare() {
  std::lock_guard lock(mutex);
  if (!queue_empty()) {
    return false;
  }
  spares.fetch_sub(1, std::memory_order_seq_cst);
  return true;
}

bool ThreadPool::Core::Helper::help_until(const FutureCore& awaited, detail::Deadline deadline) {
  // The pool's own task not started yet: run it here, as a plain call would.
  auto& task = const_cast<FutureCore&>(awaited);
  if (task.owner() == core && core->run_inline(task, *wt)) {
    return task.done();
  }
  for (int i = 0; i < 64; ++i) {
    if (awaited.done()) {
      return true;
    }
    cpu_relax();
  }
  blocked(true);
  const bool done = awaited.block_until(deadline);
  blocked(false);
  return done;
}

void ThreadPool::Core::Helper::blocked(bool now) noexcept {
  if (now) {
    core->begin_blocked();
  } else {
    core->end_blocked();
  }
}

}  // namespace troupe
