// ThreadPool: engine-owned worker threads around lock-free queues, each
// worker living inside the pool's tbb::task_arena.
//
// Hot path: submit = one allocation (task + future state), one lock-free
// enqueue, one fence and a load of the sleeper count; a worker = one dequeue,
// one CAS to start, the task, one CAS to complete. Counters a worker updates
// per task live in its own cache line (per slot); pool-wide figures are sums.
// Idle workers poll for spin_before_sleep, then sleep on a futex eventcount.
#include "troupe/thread_pool.hpp"

#include <pthread.h>
#include <sched.h>

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

#include "common/log.hpp"
#include "thread/plugin_tasks.hpp"
#include "troupe/cpu_count.hpp"
#include "troupe/registry.hpp"

namespace troupe {
namespace {

using detail::FutureCore;
using detail::now_ns;

constexpr std::uint32_t kOpen = 0;
constexpr std::uint32_t kClosed = 1;
constexpr std::uint32_t kBroken = 2;

enum class Retire { idle_timeout, max_tasks, crash, shutdown };

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
void run_counted(FutureCore& task, Counters& counters, Worker& worker) noexcept {
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

template <class E>
std::exception_ptr nested_error(const std::string& message) {
  try {
    std::throw_with_nested(E(message));
  } catch (...) {
    return std::current_exception();
  }
}

}  // namespace

struct WorkerThread {
  std::size_t id = 0;
  std::size_t slot = 0;
  std::thread thread;
  std::unique_ptr<Worker> worker;
  std::uint64_t tasks_run = 0;
  bool exited = false;  // under Core::mutex
  // The task running now, for shutdown(cancel_pending) to flag.
  detail::SpinLock current_lock;
  FutureCore* current = nullptr;
};

struct ThreadPool::Core {
  using Queue = moodycamel::ConcurrentQueue<FutureCore*>;

  explicit Core(ThreadPoolOptions opts)
      : options(std::move(opts)),
        max_workers(options.max_workers == 0 ? cpu_count() : options.max_workers),
        arena(static_cast<int>(max_workers), static_cast<unsigned>(max_workers)),
        slots(max_workers) {
    throw_if_invalid(options);
    init_hook = resolve_hook(options.initializer, true);
    fini_hook = resolve_hook(options.finalizer, false);
    for (std::size_t i = max_workers; i > 0; --i) {
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
      run_counted(*task, counters, worker);
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

  // ---- breaking, draining ----------------------------------------------------

  // Cancels everything queued (with `cause`, or plain CancelledError when
  // null). Listed first, then cancelled newest first: whoever sees one of
  // them cancelled finds every later one cancelled and listed too.
  void drain(const std::exception_ptr& cause) {
    std::vector<FutureCore*> taken;
    while (FutureCore* task = pop()) {
      drained.started.fetch_add(1, std::memory_order_seq_cst);
      taken.push_back(task);
    }
    if (!taken.empty()) {
      std::lock_guard lock(list_mutex);
      for (FutureCore* task : taken) {
        if (!task->done() && !task->was_started()) {
          cancelled_list.push_back(CancelledTask{task->id(), task->describe()});
        }
      }
    }
    for (auto it = taken.rbegin(); it != taken.rend(); ++it) {
      // One that started ran (or runs) on the thread that waited for it
      // (try_run_inline): it finishes as a running task does.
      if (!(*it)->was_started()) {
        (*it)->set_cancelled(cause);
        drained.cancelled.fetch_add((*it)->item_count(), std::memory_order_relaxed);
      }
      (*it)->release();
      drained.ended.fetch_add(1, std::memory_order_seq_cst);
    }
    notify_progress();
    notify_space();
  }

  void break_pool(std::exception_ptr error) {
    {
      std::lock_guard lock(mutex);
      if (broken_error) {
        return;
      }
      broken_error = error;
      phase.fetch_or(kBroken, std::memory_order_seq_cst);
    }
    drain(error);
    wake_all_workers();
  }

  [[noreturn]] void throw_not_open(std::uint32_t ph) const {
    if (ph & kBroken) {
      std::exception_ptr error;
      {
        std::lock_guard lock(mutex);
        error = broken_error;
      }
      std::rethrow_exception(error);
    }
    throw UsageError("ThreadPool '" + options.name + "' was shut down; it accepts no new tasks");
  }

  // ---- workers ---------------------------------------------------------------

  // Under `mutex`. Starts one worker; false at max_workers.
  bool spawn_locked() {
    if (live.load(std::memory_order_seq_cst) >= max_workers || free_slots.empty()) {
      return false;
    }
    reap_locked();
    auto wt = std::make_unique<WorkerThread>();
    wt->id = next_worker_id++;
    wt->slot = free_slots.back();
    wt->worker = std::make_unique<Worker>(wt->id, options.name);
    WorkerThread* raw = wt.get();
    live.fetch_add(1, std::memory_order_seq_cst);
    try {
      wt->thread = std::thread([this, raw] { worker_main(*raw); });
    } catch (...) {
      live.fetch_sub(1, std::memory_order_seq_cst);
      throw;
    }
    free_slots.pop_back();
    ++spawned;
    threads.push_back(std::move(wt));
    return true;
  }

  // Under `mutex`: joins workers that have exited (never this thread).
  void reap_locked() {
    const auto self = std::this_thread::get_id();
    for (auto it = threads.begin(); it != threads.end();) {
      if ((*it)->exited && (*it)->thread.get_id() != self) {
        if ((*it)->thread.joinable()) {
          (*it)->thread.join();
        }
        it = threads.erase(it);
      } else {
        ++it;
      }
    }
  }

  void name_thread(std::size_t id) const {
    std::string name = "troupe:" + options.name + ":" + std::to_string(id);
    if (name.size() > 15) {
      name.resize(15);
    }
    pthread_setname_np(pthread_self(), name.c_str());
  }

  struct Helper final : detail::WaitHelper {
    Core* core;
    WorkerThread* wt;
    Helper(Core* c, WorkerThread* w) : core(c), wt(w) {}

    // A task waits on a future: run this pool's queued work meanwhile.
    bool help_until(const FutureCore& awaited, detail::Deadline deadline) override {
      std::int64_t nap = 20'000;
      for (;;) {
        if (awaited.done()) {
          return true;
        }
        if (FutureCore* task = core->pop()) {
          core->run_popped(task, core->slots[wt->slot], *wt->worker, wt);
          nap = 20'000;
          continue;
        }
        const auto now = now_ns();
        if (deadline && now >= *deadline) {
          return awaited.done();
        }
        detail::Deadline step = now + nap;
        if (deadline && *deadline < *step) {
          step = deadline;
        }
        if (awaited.block_until(step)) {
          return true;
        }
        nap = std::min<std::int64_t>(nap * 2, 2'000'000);
      }
    }
  };

  void worker_main(WorkerThread& wt) {
    name_thread(wt.id);
    Helper helper(this, &wt);
    current_pool() = this;
    detail::current_wait_helper() = &helper;
    Retire reason = Retire::shutdown;
    arena.execute([&] { reason = worker_life(wt); });
    detail::current_wait_helper() = nullptr;
    current_pool() = nullptr;
    finish_worker(wt, reason);
  }

  Retire worker_life(WorkerThread& wt) {
    Worker& worker = *wt.worker;
    if (options.initializer) {
      try {
        run_hook(options.initializer, init_hook, worker);
      } catch (...) {
        break_pool(nested_error<InitializerError>("the initializer of worker " + std::to_string(wt.id) +
                                                  " in ThreadPool '" + options.name +
                                                  "' threw; the pool is broken (cause nested)"));
        return Retire::crash;
      }
    }
    ready.fetch_add(1, std::memory_order_release);
    const Retire reason = worker_loop(wt);
    ready.fetch_sub(1, std::memory_order_relaxed);
    if (options.finalizer) {
      try {
        run_hook(options.finalizer, fini_hook, worker);
      } catch (...) {
        break_pool(nested_error<FinalizerError>("the finalizer of worker " + std::to_string(wt.id) +
                                                " in ThreadPool '" + options.name +
                                                "' threw; the pool is broken (cause nested)"));
        return Retire::crash;
      }
    }
    worker.clear();
    return reason;
  }

  Retire worker_loop(WorkerThread& wt) {
    Counters& counters = slots[wt.slot];
    Worker& worker = *wt.worker;
    bool idle_now = false;
    std::int64_t idle_since = 0;
    const std::int64_t spin_ns = options.spin_before_sleep.count();
    const bool has_idle_timeout = options.idle_timeout.has_value();
    const std::int64_t idle_ns = has_idle_timeout ? options.idle_timeout->count() : 0;
    auto set_busy = [&] {
      if (idle_now) {
        idle_now = false;
        idle.fetch_sub(1, std::memory_order_seq_cst);
      }
    };
    for (;;) {
      FutureCore* task = pop();
      if (task == nullptr && spin_ns > 0) {
        // Poll briefly: pause first, then yield, so a spare core is not stolen
        // for long. The worker counts as idle only after the pause phase, so
        // a steady stream does not make it toggle the shared idle counter.
        const auto spin_until = now_ns() + spin_ns;
        for (int i = 0; task == nullptr; ++i) {
          if (phase.load(std::memory_order_relaxed) != kOpen) {
            break;
          }
          if (i < 64) {
            cpu_relax();
          } else {
            if (!idle_now) {
              idle_now = true;
              idle_since = now_ns();
              idle.fetch_add(1, std::memory_order_seq_cst);
            }
            sched_yield();
            if ((i & 7) == 0 && now_ns() >= spin_until) {
              break;
            }
          }
          task = pop();
        }
      }
      if (task != nullptr) {
        set_busy();
        run_popped(task, counters, worker, &wt);
        if (options.max_tasks_per_worker && wt.tasks_run >= *options.max_tasks_per_worker) {
          return Retire::max_tasks;
        }
        continue;
      }
      if (!idle_now) {
        idle_now = true;
        idle_since = now_ns();
        idle.fetch_add(1, std::memory_order_seq_cst);
      }
      const auto ph = phase.load(std::memory_order_seq_cst);
      if (ph & kBroken) {
        drain(broken_cause());
        set_busy();
        return Retire::shutdown;
      }
      if ((ph & kClosed) && queue_empty()) {
        set_busy();
        return Retire::shutdown;
      }
      // Sleep until woken or the idle timeout.
      const auto seen = epoch.load(std::memory_order_acquire);
      sleepers.fetch_add(1, std::memory_order_seq_cst);
      // Pairs with the submitter's fence after its enqueue: either it sees
      // this sleeper, or this check sees its task.
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (!queue_empty() || phase.load(std::memory_order_seq_cst) != kOpen) {
        sleepers.fetch_sub(1, std::memory_order_seq_cst);
        continue;
      }
      detail::Deadline deadline;
      if (has_idle_timeout) {
        deadline = idle_since + idle_ns;
      }
      detail::futex_wait(epoch, seen, deadline);
      sleepers.fetch_sub(1, std::memory_order_seq_cst);
      if (has_idle_timeout && now_ns() >= idle_since + idle_ns && try_retire_idle()) {
        set_busy();
        return Retire::idle_timeout;
      }
    }
  }

  // An idle worker past idle_timeout leaves if the pool keeps min_workers
  // without it and nothing is queued.
  bool try_retire_idle() {
    std::lock_guard lock(mutex);
    const auto alive = live.load(std::memory_order_seq_cst) - retiring;
    if (alive <= options.min_workers) {
      return false;
    }
    if (!queue_empty()) {
      return false;
    }
    ++retiring;
    return true;
  }

  std::exception_ptr broken_cause() {
    std::lock_guard lock(mutex);
    return broken_error;
  }

  void finish_worker(WorkerThread& wt, Retire reason) {
    std::lock_guard lock(mutex);
    if (reason == Retire::idle_timeout) {
      --retiring;
    }
    live.fetch_sub(1, std::memory_order_seq_cst);
    switch (reason) {
      case Retire::idle_timeout:
        ++retired.idle_timeout;
        break;
      case Retire::max_tasks:
        ++retired.max_tasks;
        break;
      case Retire::crash:
        ++retired.crash;
        break;
      case Retire::shutdown:
        ++retired.shutdown;
        break;
    }
    free_slots.push_back(wt.slot);
    // Work that arrived while this worker was leaving gets a replacement.
    const auto ph = phase.load(std::memory_order_seq_cst);
    if (!(ph & kBroken) && !queue_empty()) {
      try {
        spawn_locked();
      } catch (...) {
        try {
          detail::log(LogLevel::error, "ThreadPool '" + options.name +
                                           "': could not start a replacement worker thread: " +
                                           describe_exception(std::current_exception()));
        } catch (...) {
          detail::log(LogLevel::error, "a ThreadPool could not start a replacement worker thread");
        }
      }
    }
    wt.exited = true;
    exited_cv.notify_all();
  }

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

  std::array<Queue, 3> queues;  // low, normal, high
  alignas(64) std::atomic<std::int64_t> off_normal{0};

  // Written by submitters.
  alignas(64) std::atomic<std::uint64_t> submitted{0};
  std::atomic<std::uint64_t> hit_max{0};
  std::atomic<std::uint64_t> extra_items{0};  // a chunk of n items adds n - 1
  std::atomic<std::size_t> peak_queue{0};

  // Read on every submit, written rarely.
  alignas(64) std::atomic<std::uint32_t> phase{kOpen};
  std::atomic<std::size_t> live{0};
  std::atomic<int> joiners{0};
  std::atomic<int> space_waiters{0};
  // Written by workers as they go idle or to sleep: one line each.
  alignas(64) std::atomic<std::size_t> idle{0};
  alignas(64) std::atomic<int> sleepers{0};
  std::atomic<std::size_t> ready{0};  // workers past their initializer (try_run_inline helps only when all are)
  bool cancel_on_close = false;       // under mutex

  alignas(64) std::atomic<std::uint32_t> epoch{0};
  alignas(64) std::atomic<std::uint32_t> join_epoch{0};
  std::atomic<std::uint32_t> space_epoch{0};

  std::vector<Counters> slots;
  Counters caller;   // tasks run by submitters (caller_runs)
  Counters drained;  // tasks cancelled by shutdown or a broken pool

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

// ---- ThreadPool --------------------------------------------------------------

ThreadPool::ThreadPool(ThreadPoolOptions options) : core_(std::make_unique<Core>(std::move(options))) {}

ThreadPool::~ThreadPool() {
  if (is_worker_thread()) {
    detail::log(LogLevel::critical, "ThreadPool '" + core_->options.name +
                                        "' was destroyed by one of its own tasks (it held the last reference); "
                                        "this cannot end cleanly, terminating");
    std::terminate();
  }
  shutdown({.wait = true, .cancel_pending = false});
}

const ThreadPoolOptions& ThreadPool::options() const noexcept {
  return core_->options;
}

bool ThreadPool::is_worker_thread() const noexcept {
  return Core::current_pool() == core_.get();
}

bool ThreadPool::try_run_inline(detail::FutureCore& task) noexcept {
  Core& c = *core_;
  if (c.phase.load(std::memory_order_acquire) != kOpen || c.ready.load(std::memory_order_acquire) < c.max_workers ||
      task.state() != FutureState::pending) {
    return false;
  }
  auto run = [&](Counters& counters, Worker& worker) {
    if (!task.try_start(worker.id())) {
      return false;
    }
    run_counted(task, counters, worker);
    // started/ended are counted when a worker pops the queue entry.
    return true;
  };
  if (is_worker_thread()) {
    auto* helper = static_cast<Core::Helper*>(detail::current_wait_helper());
    return run(c.slots[helper->wt->slot], *helper->wt->worker);
  }
  Worker caller(kCallerWorker, c.options.name);
  return run(c.caller, caller);
}

bool ThreadPool::enqueue(detail::FutureCore* task, Priority priority, bool try_only, std::size_t items) {
  Core& c = *core_;
  if (items != 1) {
    // A map chunk: stats() counts its items; queue entries stay one each.
    task->set_item_count(static_cast<std::uint32_t>(std::min<std::size_t>(items, UINT32_MAX)));
    c.extra_items.fetch_add(items - 1, std::memory_order_relaxed);
  }
  const auto ph = c.phase.load(std::memory_order_acquire);
  if (ph != kOpen) {
    task->release();
    c.throw_not_open(ph);
  }
  if (c.options.queue_limit) {
    const auto limit = *c.options.queue_limit;
    for (;;) {
      const auto depth = c.pending();
      if (depth < limit) {
        c.note_queue_depth(depth + 1);
        break;
      }
      if (try_only) {
        task->release();
        return false;
      }
      if (c.options.queue_full_policy == QueueFullPolicy::fail) {
        task->release();
        throw QueueFullError("ThreadPool '" + c.options.name + "': the queue holds " + std::to_string(depth) +
                             " tasks (queue_limit " + std::to_string(limit) + ")");
      }
      if (c.options.queue_full_policy == QueueFullPolicy::caller_runs) {
        task->set_id(c.submitted.fetch_add(1, std::memory_order_seq_cst) + 1);
        if (is_worker_thread()) {
          auto* helper = static_cast<Core::Helper*>(detail::current_wait_helper());
          c.run_popped(task, c.slots[helper->wt->slot], *helper->wt->worker, helper->wt);
        } else {
          Worker caller(kCallerWorker, c.options.name);
          c.run_popped(task, c.caller, caller, nullptr);
        }
        return true;
      }
      // block: a worker of this pool runs queued work instead of waiting for it.
      if (is_worker_thread()) {
        if (FutureCore* queued = c.pop()) {
          auto* helper = static_cast<Core::Helper*>(detail::current_wait_helper());
          c.run_popped(queued, c.slots[helper->wt->slot], *helper->wt->worker, helper->wt);
        }
        continue;
      }
      const auto seen = c.space_epoch.load(std::memory_order_acquire);
      c.space_waiters.fetch_add(1, std::memory_order_seq_cst);
      if (c.pending() >= limit && c.phase.load(std::memory_order_seq_cst) == kOpen) {
        detail::futex_wait(c.space_epoch, seen, now_ns() + 10'000'000);
      }
      c.space_waiters.fetch_sub(1, std::memory_order_seq_cst);
      const auto now_phase = c.phase.load(std::memory_order_acquire);
      if (now_phase != kOpen) {
        task->release();
        c.throw_not_open(now_phase);
      }
    }
  }
  // Ids are 1, 2, 3... in submission order: the submission count itself.
  const auto n = c.submitted.fetch_add(1, std::memory_order_seq_cst);
  task->set_id(n + 1);
  const auto q = static_cast<std::size_t>(priority);
  if (q != 1) {
    c.off_normal.fetch_add(1, std::memory_order_seq_cst);
  }
  c.queues[q].enqueue(task);
  c.wake_one_worker();  // includes the seq_cst fence
  if (c.live.load(std::memory_order_relaxed) < c.max_workers) {
    if (c.idle.load(std::memory_order_relaxed) == 0) {
      // A worker that just finished a task is about to look for the next
      // one: give it a moment before starting a thread it would make idle.
      bool served = false;
      for (int i = 0; i < 256 && !served; ++i) {
        cpu_relax();
        served = c.idle.load(std::memory_order_relaxed) > 0 || c.queue_empty();
      }
      if (!served) {
        std::lock_guard lock(c.mutex);
        c.spawn_locked();
      }
    }
  } else if (c.idle.load(std::memory_order_relaxed) == 0) {
    c.hit_max.fetch_add(1, std::memory_order_relaxed);
  }
  if (!c.options.queue_limit && (n & 63) == 0) {
    c.note_queue_depth(c.pending());
  }
  // A shutdown or a break that raced this submit: make sure the task still ends.
  const auto after = c.phase.load(std::memory_order_seq_cst);
  if (after != kOpen) {
    std::unique_lock lock(c.mutex);
    if ((after & kBroken) || c.cancel_on_close) {
      auto cause = c.broken_error;
      lock.unlock();
      c.drain(cause);
    } else if (c.live.load(std::memory_order_seq_cst) == 0) {
      c.spawn_locked();
    }
  }
  return true;
}

Future<Value> ThreadPool::submit_call(Call call) {
  if (core_->options.registry == nullptr) {
    throw UsageError("ThreadPool '" + core_->options.name + "': call('" + call.task +
                     "') needs ThreadPoolOptions::registry to resolve plugin tasks");
  }
  const TaskInfo* info = nullptr;
  try {
    info = &core_->options.registry->task(call.task);
  } catch (...) {
    return make_failed_future<Value>(std::current_exception());
  }
  auto* task = new detail::PluginCallTask(*info, std::move(call));
  auto future = detail::future_from_core(detail::CorePtr<detail::FutureData<Value>>::adopt(task));
  enqueue(task, Priority::normal, false);
  return future;
}

Future<std::vector<Outcome<Value>>> ThreadPool::submit_chunk(std::string task_name, std::vector<Args> items) {
  using Result = std::vector<Outcome<Value>>;
  if (core_->options.registry == nullptr) {
    throw UsageError("ThreadPool '" + core_->options.name + "': a map over '" + task_name +
                     "' needs ThreadPoolOptions::registry to resolve plugin tasks");
  }
  const TaskInfo* info = nullptr;
  try {
    info = &core_->options.registry->task(task_name);
  } catch (...) {
    return make_failed_future<Result>(std::current_exception());
  }
  const auto count = std::max<std::size_t>(items.size(), 1);
  auto* task = new detail::PluginChunkTask(*info, std::move(task_name), std::move(items));
  auto future = detail::future_from_core(detail::CorePtr<detail::FutureData<Result>>::adopt(task));
  enqueue(task, Priority::normal, false, count);
  return future;
}

void ThreadPool::shutdown(const ShutdownOptions& options) {
  Core& c = *core_;
  if (options.wait && is_worker_thread()) {
    throw UsageError("ThreadPool '" + c.options.name +
                     "': shutdown({.wait = true}) from one of its own tasks would wait for itself; use "
                     "shutdown({.wait = false})");
  }
  {
    std::lock_guard lock(c.mutex);
    c.phase.fetch_or(kClosed, std::memory_order_seq_cst);
    if (options.cancel_pending) {
      c.cancel_on_close = true;
    }
  }
  if (options.cancel_pending) {
    c.drain(nullptr);
    std::lock_guard lock(c.mutex);
    for (auto& wt : c.threads) {
      wt->current_lock.lock();
      if (wt->current != nullptr) {
        wt->current->request_cancel();
      }
      wt->current_lock.unlock();
    }
  }
  {
    std::lock_guard lock(c.mutex);
    if (c.live.load(std::memory_order_seq_cst) == 0 && !c.queue_empty()) {
      c.spawn_locked();
    }
  }
  c.wake_all_workers();
  if (!options.wait) {
    return;
  }
  std::unique_lock lock(c.mutex);
  c.exited_cv.wait(lock, [&] { return c.live.load(std::memory_order_seq_cst) == 0; });
  c.reap_locked();
}

bool ThreadPool::join(Timeout timeout) {
  Core& c = *core_;
  if (is_worker_thread()) {
    throw DeadlockError("ThreadPool '" + c.options.name +
                        "': join() from one of its own tasks would wait for that task itself");
  }
  const auto deadline = detail::deadline_after(timeout);
  c.joiners.fetch_add(1, std::memory_order_seq_cst);
  bool ok = false;
  for (;;) {
    const auto seen = c.join_epoch.load(std::memory_order_acquire);
    if (c.unfinished() == 0) {
      ok = true;
      break;
    }
    const auto now = now_ns();
    if (deadline && now >= *deadline) {
      break;
    }
    // The epoch wake is the fast path; the 5 ms cap only bounds a missed one.
    detail::Deadline step = now + 5'000'000;
    if (deadline && *deadline < *step) {
      step = deadline;
    }
    detail::futex_wait(c.join_epoch, seen, step);
  }
  c.joiners.fetch_sub(1, std::memory_order_seq_cst);
  if (ok) {
    std::lock_guard lock(c.mutex);
    c.reap_locked();
  }
  return ok;
}

void ThreadPool::check() const {
  const auto ph = core_->phase.load(std::memory_order_acquire);
  if (ph != kOpen) {
    core_->throw_not_open(ph);
  }
}

void ThreadPool::test() {
  check();
  ThreadPoolOptions replica = core_->options;
  replica.max_workers = 1;
  replica.min_workers = 0;
  replica.queue_limit.reset();
  replica.name = core_->options.name + "-test";
  ThreadPool pool(std::move(replica));
  pool.submit([] { return 0; }).get();
  pool.shutdown({.wait = true});
  std::exception_ptr error;
  {
    std::lock_guard lock(pool.core_->mutex);
    error = pool.core_->broken_error;
  }
  if (error) {
    std::rethrow_exception(error);
  }
}

void ThreadPool::spawn_workers(std::size_t n) {
  check();
  std::lock_guard lock(core_->mutex);
  for (std::size_t i = 0; i < n && core_->spawn_locked(); ++i) {
  }
}

std::size_t ThreadPool::max_workers() const {
  return core_->max_workers;
}
PoolGauges ThreadPool::gauges() const {
  PoolGauges g;
  g.live_workers = core_->live.load(std::memory_order_relaxed);
  g.idle_workers = std::min(core_->idle.load(std::memory_order_relaxed), g.live_workers);
  g.busy_workers = g.live_workers - g.idle_workers;
  g.queued = core_->pending();
  return g;
}

std::vector<CancelledTask> ThreadPool::cancelled_tasks() const {
  std::lock_guard lock(core_->list_mutex);
  return core_->cancelled_list;
}

PoolStats ThreadPool::stats() const {
  const Core& c = *core_;
  PoolStats s;
  static_cast<PoolGauges&>(s) = gauges();
  s.submitted = c.submitted.load(std::memory_order_relaxed) + c.extra_items.load(std::memory_order_relaxed);
  s.completed = c.sum([](const Counters& k) { return k.completed.load(std::memory_order_relaxed); });
  s.failed = c.sum([](const Counters& k) { return k.failed.load(std::memory_order_relaxed); });
  s.cancelled = c.sum([](const Counters& k) { return k.cancelled.load(std::memory_order_relaxed); });
  s.peak_queue = std::max(c.peak_queue.load(std::memory_order_relaxed), s.queued);
  s.times_hit_max_workers = c.hit_max.load(std::memory_order_relaxed);
  std::lock_guard lock(c.mutex);
  s.spawned = c.spawned;
  s.retired = c.retired;
  return s;
}

}  // namespace troupe
