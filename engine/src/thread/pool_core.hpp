// ThreadPool's implementation, shared by its files: the pool's state and
// queue (here), the API (thread_pool.cpp), the worker threads' lives
// (worker_threads.cpp) and tasks that wait inside the pool (nested_waits.cpp).
// Engine-owned worker threads around lock-free queues, each worker living
// inside the pool's tbb::task_arena.
//
// Hot path: submit = one allocation (task + future state), one lock-free
// enqueue, one fence and a load of the sleeper count; a worker = one dequeue,
// one CAS to start, the task, one CAS to complete. Counters a worker updates
// per task live in its own cache line (per slot); pool-wide figures are sums.
// Idle workers poll for spin_before_sleep, then sleep on a futex eventcount.
#pragma once

#include "troupe/thread_pool.hpp"

#include <concurrentqueue/concurrentqueue.h>
#include <oneapi/tbb/task_arena.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "troupe/cpu_count.hpp"
#include "troupe/registry.hpp"

namespace troupe {
namespace detail::threads {

using detail::FutureCore;
using detail::now_ns;

inline constexpr std::uint32_t kOpen = 0;
inline constexpr std::uint32_t kClosed = 1;
inline constexpr std::uint32_t kBroken = 2;

enum class Retire { idle_timeout, max_tasks, crash, shutdown, compensation_over };

// A compensating worker that finds no work for this long leaves.
inline constexpr std::int64_t kSpareIdleNs = 50'000'000;

// Counters one worker slot (or one side channel) owns; summed on demand.
// started/ended count queue entries (pending(), join()); completed, failed
// and cancelled count items, as stats() reports them.
struct alignas(64) Counters final : detail::TaskCounter {
  std::atomic<std::uint64_t> started{0};    // taken off the queue (run or discarded)
  std::atomic<std::uint64_t> ended{0};      // finished with (after started)
  std::atomic<std::uint64_t> completed{0};  // ended with a value
  std::atomic<std::uint64_t> failed{0};     // ended with an exception
  std::atomic<std::uint64_t> cancelled{0};  // found cancelled, or cancelled by a drain

  void count(std::size_t ok, std::size_t bad, std::size_t skipped) noexcept override {
    if (ok != 0) {
      completed.fetch_add(ok, std::memory_order_relaxed);
    }
    if (bad != 0) {
      failed.fetch_add(bad, std::memory_order_relaxed);
    }
    if (skipped != 0) {
      cancelled.fetch_add(skipped, std::memory_order_relaxed);
    }
  }
};

// Runs a started task with `counters` as what its completion is counted in
// (detail::RunningTask): counted as it completes, before its waiters wake.
inline void run_counted(FutureCore& task, Counters& counters, Worker& worker) noexcept {
  detail::RunningTask& running = detail::running_task();
  const detail::RunningTask outer = running;
  running = {&task, &counters};
  task.run(worker);
  if (running.task == &task) {
    // Completed elsewhere while it ran (or not at all): count what it became.
    const std::size_t n = task.item_count();
    const auto state = task.state();
    counters.count(state == FutureState::done ? n : 0, state == FutureState::failed ? n : 0,
                   state == FutureState::cancelled ? n : 0);
  }
  running = outer;
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

struct WorkerThread {
  std::size_t id = 0;
  std::size_t slot = 0;
  std::thread thread;
  std::unique_ptr<Worker> worker;
  std::uint64_t tasks_run = 0;
  bool spare = false;   // a compensating worker (stands in for workers blocked in a wait)
  bool exited = false;  // under Core::mutex
  // The task running now, for shutdown(cancel_pending) to flag.
  detail::SpinLock current_lock;
  FutureCore* current = nullptr;
};

}  // namespace detail::threads

struct ThreadPool::Core {
  using FutureCore = detail::FutureCore;
  using Counters = detail::threads::Counters;
  using WorkerThread = detail::threads::WorkerThread;
  using Retire = detail::threads::Retire;

  using Queue = moodycamel::ConcurrentQueue<FutureCore*>;

  // Validated before anything is sized by max_workers.
  static ThreadPoolOptions checked(ThreadPoolOptions opts) {
    throw_if_invalid(opts);
    return opts;
  }

  explicit Core(ThreadPoolOptions opts)
      : options(checked(std::move(opts))),
        max_workers(options.max_workers == 0 ? cpu_count() : options.max_workers),
        arena(static_cast<int>(max_workers), static_cast<unsigned>(max_workers)),
        spare_arena(static_cast<int>(max_workers), static_cast<unsigned>(max_workers)),
        slots(2 * max_workers) {
    init_hook = resolve_hook(options.initializer, true);
    fini_hook = resolve_hook(options.finalizer, false);
    for (std::size_t i = slots.size(); i > 0; --i) {
      free_slots.push_back(i - 1);
    }
  }

  const HookInfo* resolve_hook(const WorkerHook& hook, bool initializer) const {
    if (!hook.plugin_call()) {
      return nullptr;
    }
    // throw_if_invalid() refused a plugin call without a registry.
    return initializer ? &options.registry->initializer(hook.plugin_call()->task)
                       : &options.registry->finalizer(hook.plugin_call()->task);
  }

  void run_hook(const WorkerHook& hook, const HookInfo* info, Worker& worker) {
    if (info != nullptr) {
      info->invoke(worker, hook.plugin_call()->args, hook.plugin_call()->kwargs);
    } else if (hook.callable()) {
      hook.callable()(worker);
    }
  }

  // ---- queue -------------------------------------------------------------

  FutureCore* pop() noexcept {
    FutureCore* task = nullptr;
    if (off_normal.load(std::memory_order_relaxed) > 0) {
      if (queues[2].try_dequeue(task)) {
        off_normal.fetch_sub(1, std::memory_order_relaxed);
        return task;
      }
    }
    if (queues[1].try_dequeue(task)) {
      return task;
    }
    if (off_normal.load(std::memory_order_relaxed) > 0 && queues[0].try_dequeue(task)) {
      off_normal.fetch_sub(1, std::memory_order_relaxed);
      return task;
    }
    return nullptr;
  }

  bool queue_empty() const noexcept {
    return queues[1].size_approx() == 0 && off_normal.load(std::memory_order_seq_cst) <= 0;
  }

  template <class F>
  std::uint64_t sum(F field) const noexcept {
    std::uint64_t total = field(caller) + field(drained);
    for (const auto& c : slots) {
      total += field(c);
    }
    return total;
  }

  std::size_t pending() const noexcept {
    const auto started = sum([](const Counters& c) { return c.started.load(std::memory_order_seq_cst); });
    const auto sub = submitted.load(std::memory_order_seq_cst);
    return sub > started ? static_cast<std::size_t>(sub - started) : 0;
  }

  std::uint64_t unfinished() const noexcept {
    const auto ended = sum([](const Counters& c) { return c.ended.load(std::memory_order_seq_cst); });
    const auto sub = submitted.load(std::memory_order_seq_cst);
    return sub > ended ? sub - ended : 0;
  }

  void note_queue_depth(std::size_t depth) noexcept {
    auto peak = peak_queue.load(std::memory_order_relaxed);
    while (depth > peak && !peak_queue.compare_exchange_weak(peak, depth, std::memory_order_relaxed)) {
    }
  }

  // ---- wake-ups ----------------------------------------------------------

  void wake_one_worker() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (sleepers.load(std::memory_order_relaxed) > 0) {
      epoch.fetch_add(1, std::memory_order_release);
      detail::futex_wake_one(epoch);
    }
  }
  void wake_all_workers() noexcept {
    epoch.fetch_add(1, std::memory_order_seq_cst);
    detail::futex_wake_all(epoch);
  }
  void notify_progress() noexcept {
    // Called after an `ended`/`started` increment (a seq_cst RMW).
    if (joiners.load(std::memory_order_seq_cst) > 0) {
      join_epoch.fetch_add(1, std::memory_order_release);
      detail::futex_wake_all(join_epoch);
    }
  }
  void notify_space() noexcept {
    if (space_waiters.load(std::memory_order_seq_cst) > 0) {
      space_epoch.fetch_add(1, std::memory_order_release);
      detail::futex_wake_all(space_epoch);
    }
  }

  // ---- running one task ----------------------------------------------------

  // `task` came off the queue on a worker (or runs in the caller): start it,
  // run it, count it, drop the queue's reference.
  void run_popped(FutureCore* task, Counters& counters, Worker& worker, WorkerThread* wt) noexcept {
    counters.started.fetch_add(1, std::memory_order_seq_cst);
    if (options.queue_limit) {
      notify_space();
    }
    if (!task->try_start(worker.id())) {
      if (!task->was_started()) {  // else it ran in the thread that waited for it (try_run_inline)
        counters.cancelled.fetch_add(task->item_count(), std::memory_order_relaxed);
      }
    } else {
      FutureCore* outer = nullptr;
      if (wt != nullptr) {
        wt->current_lock.lock();
        outer = wt->current;
        wt->current = task;
        wt->current_lock.unlock();
        ++wt->tasks_run;
      }
      detail::threads::run_counted(*task, counters, worker);
      if (wt != nullptr) {
        wt->current_lock.lock();
        wt->current = outer;
        wt->current_lock.unlock();
      }
    }
    task->release();
    counters.ended.fetch_add(1, std::memory_order_seq_cst);
    notify_progress();
  }

  // ---- breaking, draining (thread_pool.cpp) ------------------------------------

  // Cancels everything queued (with `cause`, or plain CancelledError when null).
  void drain(const std::exception_ptr& cause);
  // Under `mutex`: sets the cooperative flag of the task each worker runs now.
  void flag_running_locked() noexcept;
  void break_pool(std::exception_ptr error);
  [[noreturn]] void throw_not_open(std::uint32_t ph) const;
  std::exception_ptr broken_cause();

  // ---- workers (worker_threads.cpp) ----------------------------------------------

  // Under `mutex`: starts one worker (a compensating one: `spare`); false at
  // max_workers of that kind; throws when the thread cannot start.
  bool spawn_locked(bool spare = false);
  void reap_locked();  // under `mutex`: joins workers that have exited
  void name_thread(std::size_t id) const;
  // From submit, `task` queued: starts another worker; throws, refusing
  // the task, only when none can start and none lives to run it.
  void spawn_after_enqueue(FutureCore* task);
  void log_spawn_failure(const char* what) noexcept;
  void worker_main(WorkerThread& wt);
  Retire worker_life(WorkerThread& wt);
  Retire worker_loop(WorkerThread& wt);
  bool try_retire_idle();
  void finish_worker(WorkerThread& wt, Retire reason);
  void count_retired(Retire reason) noexcept;
  bool all_exited_locked() const noexcept;  // under `mutex`

  // ---- nested waits (nested_waits.cpp) -------------------------------------------

  // Runs `task`, this pool's and not started, on the waiting worker `wt`.
  bool run_inline(FutureCore& task, WorkerThread& wt) noexcept;
  // A task on a worker blocks in a wait / resumes.
  void begin_blocked() noexcept;
  void end_blocked() noexcept { blocked.fetch_sub(1, std::memory_order_seq_cst); }
  std::size_t runnable() const noexcept;
  // Starts a worker in place of blocked ones while work is queued.
  void compensate() noexcept;
  void compensate_locked();
  bool spare_should_leave() noexcept;
  bool try_retire_spare();

  // Installed on each worker thread: how its tasks wait.
  struct Helper final : detail::WaitHelper {
    Core* core;
    WorkerThread* wt;
    Helper(Core* c, WorkerThread* w) : core(c), wt(w) {}
    bool help_until(const FutureCore& awaited, detail::Deadline deadline) override;
    void blocked(bool now) noexcept override;
  };

  static Core*& current_pool() noexcept {
    thread_local Core* pool = nullptr;
    return pool;
  }

  // ---- state -----------------------------------------------------------------

  ThreadPoolOptions options;
  std::size_t max_workers;
  const HookInfo* init_hook = nullptr;
  const HookInfo* fini_hook = nullptr;
  tbb::task_arena arena;
  // Compensating workers run tasks in an arena of their own: the pool's
  // arena has exactly one slot per regular worker.
  tbb::task_arena spare_arena;

  std::array<Queue, 3> queues;  // low, normal, high
  alignas(64) std::atomic<std::int64_t> off_normal{0};

  // Written by submitters.
  alignas(64) std::atomic<std::uint64_t> submitted{0};
  std::atomic<std::uint64_t> hit_max{0};
  std::atomic<std::uint64_t> extra_items{0};  // a chunk of n items adds n - 1
  std::atomic<std::size_t> peak_queue{0};

  // Read on every submit, written rarely.
  alignas(64) std::atomic<std::uint32_t> phase{detail::threads::kOpen};
  std::atomic<std::size_t> live{0};
  std::atomic<int> joiners{0};
  std::atomic<int> space_waiters{0};
  // Written by workers as they go idle or to sleep: one line each.
  alignas(64) std::atomic<std::size_t> idle{0};
  alignas(64) std::atomic<int> sleepers{0};
  std::atomic<std::size_t> ready{0};  // workers past their initializer (try_run_inline helps only when all are)
  // Written by tasks as they block in a wait and resume; read by submits
  // only when every worker is busy at max_workers.
  alignas(64) std::atomic<std::size_t> blocked{0};  // pool threads blocked in a wait
  std::atomic<std::size_t> spares{0};               // compensating workers counted as runnable
  bool cancel_on_close = false;                     // under mutex

  alignas(64) std::atomic<std::uint32_t> epoch{0};
  alignas(64) std::atomic<std::uint32_t> join_epoch{0};
  std::atomic<std::uint32_t> space_epoch{0};

  std::vector<Counters> slots;  // one per thread: max_workers regular, max_workers compensating
  Counters caller;              // tasks run by submitters (caller_runs)
  Counters drained;             // tasks cancelled by shutdown or a broken pool

  mutable std::mutex mutex;
  std::condition_variable exited_cv;
  std::vector<std::unique_ptr<WorkerThread>> threads;
  std::vector<std::size_t> free_slots;
  std::size_t next_worker_id = 0;
  std::size_t retiring = 0;
  std::uint64_t spawned = 0;
  RetiredCounts retired;
  std::exception_ptr broken_error;

  mutable std::mutex list_mutex;
  std::vector<CancelledTask> cancelled_list;
};

}  // namespace troupe
