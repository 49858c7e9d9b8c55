// ThreadPool's API: submit (the hot path), shutdown, join, introspection;
// draining and breaking the pool. The state is in thread/pool_core.hpp.
#include "troupe/thread_pool.hpp"

#include <algorithm>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/log.hpp"
#include "thread/plugin_tasks.hpp"
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
using detail::threads::run_counted;

// Cancels everything queued (with `cause`, or plain CancelledError when
// null). Listed first, then cancelled newest first: whoever sees one of
// them cancelled finds every later one cancelled and listed too.
void ThreadPool::Core::drain(const std::exception_ptr& cause) {
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

void ThreadPool::Core::break_pool(std::exception_ptr error) {
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

void ThreadPool::Core::throw_not_open(std::uint32_t ph) const {
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

std::exception_ptr ThreadPool::Core::broken_cause() {
  std::lock_guard lock(mutex);
  return broken_error;
}

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
    return c.run_inline(task, *helper->wt);
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
  task->set_owner(&c);
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
      // caller_runs, and a pool's own task under block (waiting for room
      // could wait on itself): the submitter runs that task now.
      if (c.options.queue_full_policy == QueueFullPolicy::caller_runs || is_worker_thread()) {
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
        c.spawn_after_enqueue(task);
      }
    }
  } else if (c.idle.load(std::memory_order_relaxed) == 0) {
    c.hit_max.fetch_add(1, std::memory_order_relaxed);
    if (c.blocked.load(std::memory_order_relaxed) > 0) {
      c.compensate();
    }
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
      try {
        c.spawn_locked();
      } catch (...) {
        c.log_spawn_failure("a worker thread to run the work queued before the shutdown");
      }
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

void ThreadPool::Core::flag_running_locked() noexcept {
  for (auto& wt : threads) {
    wt->current_lock.lock();
    if (wt->current != nullptr) {
      wt->current->request_cancel();
    }
    wt->current_lock.unlock();
  }
}

void ThreadPool::interrupt_running() {
  Core& c = *core_;
  std::lock_guard lock(c.mutex);
  c.flag_running_locked();
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
    c.flag_running_locked();
  }
  bool no_worker = false;
  {
    std::lock_guard lock(c.mutex);
    if (c.live.load(std::memory_order_seq_cst) == 0 && !c.queue_empty()) {
      try {
        c.spawn_locked();
      } catch (...) {
        c.log_spawn_failure("a worker thread to run the queued work; it is cancelled");
        no_worker = true;
      }
    }
  }
  if (no_worker) {
    c.drain(nullptr);  // nothing could run it: no future stays pending
  }
  c.wake_all_workers();
  if (!options.wait) {
    return;
  }
  std::unique_lock lock(c.mutex);
  c.exited_cv.wait(lock, [&] { return c.all_exited_locked(); });
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
