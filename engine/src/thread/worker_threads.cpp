// The worker threads of a ThreadPool: starting them (lazily, from submit,
// or as compensating workers), their lives inside the pool's arena
// (initializer, the loop that takes tasks and sleeps, finalizer) and their
// retirement.
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/log.hpp"
#include "common/nest.hpp"
#include "thread/pool_core.hpp"
#include "troupe/registry.hpp"

namespace troupe {
using detail::FutureCore;
using detail::now_ns;
using detail::threads::Counters;
using detail::threads::cpu_relax;
using detail::threads::kBroken;
using detail::threads::kClosed;
using detail::threads::kOpen;
using detail::threads::kSpareIdleNs;
using detail::threads::Retire;
using detail::threads::WorkerThread;

// Under `mutex`. Starts one worker (a compensating one: `spare`); false
// at max_workers of that kind. Throws when the thread cannot start.
bool ThreadPool::Core::spawn_locked(bool spare) {
  std::atomic<std::size_t>& count = spare ? spares : live;
  if (count.load(std::memory_order_seq_cst) >= max_workers || free_slots.empty()) {
    return false;
  }
  reap_locked();
  auto wt = std::make_unique<WorkerThread>();
  wt->id = next_worker_id++;
  wt->slot = free_slots.back();
  wt->spare = spare;
  wt->worker = std::make_unique<Worker>(wt->id, options.name);
  wt->worker->set_services(shared_state.services());
  WorkerThread* raw = wt.get();
  count.fetch_add(1, std::memory_order_seq_cst);
  try {
    wt->thread = std::thread([this, raw] { worker_main(*raw); });
  } catch (...) {
    count.fetch_sub(1, std::memory_order_seq_cst);
    throw;
  }
  free_slots.pop_back();
  if (!spare) {
    ++spawned;
  }
  threads.push_back(std::move(wt));
  return true;
}

// Under `mutex`: joins workers that have exited (never this thread).
void ThreadPool::Core::reap_locked() {
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

void ThreadPool::Core::name_thread(std::size_t id) const {
  std::string name = "troupe:" + options.name + ":" + std::to_string(id);
  if (name.size() > 15) {
    name.resize(15);
  }
  pthread_setname_np(pthread_self(), name.c_str());
}

// `task` is queued and no worker is idle: start one more. When that
// fails, the task stays accepted if a worker lives to run it, else it is
// withdrawn (cancelled before anyone ran it) and the submit throws: the
// caller never gets both an error and a task that runs.
void ThreadPool::Core::spawn_after_enqueue(FutureCore* task) {
  std::string cause;
  {
    std::lock_guard lock(mutex);
    try {
      spawn_locked();
      return;
    } catch (...) {
      cause = describe_exception(std::current_exception());
    }
    if (live.load(std::memory_order_seq_cst) != 0 || !task->cancel()) {
      detail::log(LogLevel::warn, "ThreadPool '" + options.name + "': could not start another worker thread (" + cause +
                                      "); the live workers run the queue");
      return;
    }
  }
  throw Error("ThreadPool '" + options.name + "': could not start a worker thread (" + cause +
              "); the task was refused and will not run");
}

void ThreadPool::Core::log_spawn_failure(const char* what) noexcept {
  try {
    detail::log(LogLevel::error, "ThreadPool '" + options.name + "': could not start " + what + ": " +
                                     describe_exception(std::current_exception()));
  } catch (...) {
    detail::log(LogLevel::error, "a ThreadPool could not start a worker thread");
  }
}

void ThreadPool::Core::worker_main(WorkerThread& wt) {
  name_thread(wt.id);
  Helper helper(this, &wt);
  current_pool() = this;
  detail::current_wait_helper() = &helper;
  Retire reason = Retire::shutdown;
  (wt.spare ? spare_arena : arena).execute([&] { reason = worker_life(wt); });
  detail::current_wait_helper() = nullptr;
  current_pool() = nullptr;
  finish_worker(wt, reason);
}

Retire ThreadPool::Core::worker_life(WorkerThread& wt) {
  Worker& worker = *wt.worker;
  if (options.initializer) {
    try {
      run_hook(options.initializer, init_hook, worker);
    } catch (...) {
      break_pool(
          detail::nest(std::current_exception(),
                       InitializerError("the initializer of worker " + std::to_string(wt.id) + " in ThreadPool '" +
                                        options.name + "' threw; the pool is broken (cause nested)")));
      discard_objects(worker);
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
      break_pool(detail::nest(std::current_exception(),
                              FinalizerError("the finalizer of worker " + std::to_string(wt.id) + " in ThreadPool '" +
                                             options.name + "' threw; the pool is broken (cause nested)")));
      discard_objects(worker);
      return Retire::crash;
    }
  }
  // Worker objects (worker_class) go here, on the thread that built them;
  // the Worker itself may be destroyed on another thread later.
  try {
    worker.destroy_objects();
  } catch (...) {
    break_pool(
        detail::nest(std::current_exception(),
                     FinalizerError("a worker object of worker " + std::to_string(wt.id) + " in ThreadPool '" +
                                    options.name + "' threw from its destructor; the pool is broken (cause nested)")));
    return Retire::crash;
  }
  worker.clear();
  return reason;
}

// The pool broke already; a destructor's error after that has nowhere to go.
void ThreadPool::Core::discard_objects(Worker& worker) noexcept {
  try {
    worker.destroy_objects();
  } catch (...) {
    try {
      detail::log(
          LogLevel::warn,
          "ThreadPool '" + options.name + "': a worker object of worker " + std::to_string(worker.id()) +
              " threw from its destructor after the pool broke: " + describe_exception(std::current_exception()));
    } catch (...) {  // NOLINT(bugprone-empty-catch): logging is best effort here
    }
  }
}

Retire ThreadPool::Core::worker_loop(WorkerThread& wt) {
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
    if (wt.spare && spare_should_leave()) {
      set_busy();
      return Retire::compensation_over;
    }
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
    if (wt.spare) {
      deadline = idle_since + (has_idle_timeout ? std::min(idle_ns, kSpareIdleNs) : kSpareIdleNs);
    } else if (has_idle_timeout) {
      deadline = idle_since + idle_ns;
    }
    detail::futex_wait(epoch, seen, deadline);
    sleepers.fetch_sub(1, std::memory_order_seq_cst);
    if (deadline && now_ns() >= *deadline && (wt.spare ? try_retire_spare() : try_retire_idle())) {
      set_busy();
      return wt.spare ? Retire::compensation_over : Retire::idle_timeout;
    }
  }
}

// An idle worker past idle_timeout leaves if the pool keeps min_workers
// without it and nothing is queued.
bool ThreadPool::Core::try_retire_idle() {
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

void ThreadPool::Core::finish_worker(WorkerThread& wt, Retire reason) {
  std::lock_guard lock(mutex);
  if (reason == Retire::idle_timeout) {
    --retiring;
  }
  if (wt.spare) {
    // spare_should_leave()/try_retire_spare() took it off the count already.
    if (reason != Retire::compensation_over) {
      spares.fetch_sub(1, std::memory_order_seq_cst);
    }
  } else {
    live.fetch_sub(1, std::memory_order_seq_cst);
    count_retired(reason);
  }
  free_slots.push_back(wt.slot);
  // Work that arrived while this worker was leaving gets a replacement.
  const auto ph = phase.load(std::memory_order_seq_cst);
  if (!(ph & kBroken) && !queue_empty()) {
    try {
      if (!spawn_locked() && blocked.load(std::memory_order_seq_cst) > 0) {
        compensate_locked();
      }
    } catch (...) {
      log_spawn_failure("a replacement worker thread");
    }
  }
  wt.exited = true;
  exited_cv.notify_all();
}

void ThreadPool::Core::count_retired(Retire reason) noexcept {
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
    case Retire::compensation_over:
      ++retired.shutdown;
      break;
  }
}

// Under `mutex`: every thread started has exited.
bool ThreadPool::Core::all_exited_locked() const noexcept {
  return live.load(std::memory_order_seq_cst) == 0 &&
         std::all_of(threads.begin(), threads.end(), [](const auto& wt) { return wt->exited; });
}

}  // namespace troupe
