// troupe/executor.hpp
//
// troupe::Executor: the interface both pools implement (ThreadPool,
// ProcessPool), so the map family, ParallelRunner and the CLI are written
// once.
//
// Guarantees: every accepted call ends exactly once in its future (value,
// error, or cancelled). Submitting to a pool that was shut down throws
// troupe::UsageError; to a broken pool, troupe::BrokenPoolError (with the
// cause nested). shutdown() may be called more than once.
// Thread safety: every member may be called from any thread.
// Implementing one: complete the futures you hand out through troupe::Promise
// (troupe/promise.hpp); the map family then works over your executor as is.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "troupe/future.hpp"
#include "troupe/outcome.hpp"
#include "troupe/pool_stats.hpp"
#include "troupe/promise.hpp"
#include "troupe/sdk/call.hpp"
#include "troupe/sdk/value.hpp"
#include "troupe/shared.hpp"

namespace troupe {

namespace detail {
struct ExecutorAccess;
namespace shared {
class SharedState;
}
}  // namespace detail

// shutdown({.wait = true, .cancel_pending = false}): by default queued work
// still runs (concurrent.futures); cancel_pending cancels what has not
// started (listed by cancelled_tasks()) and sets the cooperative flag of
// what runs.
struct ShutdownOptions {
  bool wait = true;
  bool cancel_pending = false;
};

// A task that ended cancelled without running (shutdown with
// cancel_pending, a broken pool).
struct CancelledTask {
  std::uint64_t id = 0;  // the future's id()
  std::string task;      // `plugin.task`, or "<callable>" for a C++ callable
};

class Executor {
 public:
  virtual ~Executor() = default;

  // A plugin call as data -> its future.
  virtual Future<Value> submit_call(Call call) = 0;

  // pool.call("text.words", doc, troupe::kw("lang", "en")) -> Future<Value>.
  template <class... A>
  Future<Value> call(std::string task, A&&... args) {
    return submit_call(detail::make_call(std::move(task), std::forward<A>(args)...));
  }

  // One unit of work (a map chunk): `task` applied to each item's positional
  // arguments, in order, each item's value or error captured. The chunk's
  // own future fails only when the chunk as a whole cannot run (unknown task,
  // broken pool, a crashed worker...).
  virtual Future<std::vector<Outcome<Value>>> submit_chunk(std::string task, std::vector<Args> items) = 0;

  virtual void shutdown(const ShutdownOptions& options = {}) = 0;

  // Interrupts the work running now (a run's second interrupt); queued work
  // is untouched. A ThreadPool sets every running task's cooperative cancel
  // flag (TaskContext::cancelled()); each future then ends as its task does.
  // A ProcessPool kills the workers running work: each running task (chunk
  // item) fails with CancelledError saying it was interrupted, as do the
  // chunk's items not yet run; frames sent there but not begun go back to
  // the queue. Not a crash (no crash_storm count, no on_worker_crash); the
  // workers are replaced as after any death. Returns at once (a process
  // pool's futures end shortly after); does nothing when nothing runs.
  virtual void interrupt_running() = 0;

  // Waits until everything submitted so far has ended; the pool stays usable.
  // True if it did within the timeout.
  virtual bool join(Timeout timeout = std::nullopt) = 0;

  // Throws the BrokenPoolError if broken, UsageError if shut down; else nothing.
  virtual void check() const = 0;
  // Builds a replica of the configuration, runs one trivial task on it,
  // shuts it down; propagates initializer/finalizer errors.
  virtual void test() = 0;
  // Starts workers now, up to max_workers in total.
  virtual void spawn_workers(std::size_t n) = 0;

  virtual std::size_t max_workers() const = 0;  // the bound
  // The gauges, one reading (stats() has them too, with the counters).
  virtual PoolGauges gauges() const = 0;
  std::size_t workers() const { return gauges().live_workers; }
  std::size_t busy_workers() const { return gauges().busy_workers; }  // running a task
  std::size_t free_workers() const { return gauges().idle_workers; }  // live and idle
  std::size_t pending_tasks() const { return gauges().queued; }       // accepted, not started
  virtual std::vector<CancelledTask> cancelled_tasks() const = 0;
  virtual PoolStats stats() const = 0;

  // Shared state every worker sees (troupe/shared.hpp): the counter or dict
  // of that name on this pool, created on first use, also while workers run;
  // tasks reach it with ctx.counter(name), ctx.dict(name). A handle must not
  // outlive its pool. Throws UsageError when this executor keeps none.
  SharedCounter counter(std::string_view name);
  SharedDict dict(std::string_view name, const DictOptions& options = {});
  // {"counters": {name: value}, "dicts": {name: {key: value}}}, read now.
  Value shared_values() const;

 protected:
  // The pool's shared counters and dicts; null (the default) for none.
  virtual detail::shared::SharedState* shared_state() const noexcept { return nullptr; }

  // The map family calls this while its iterating thread would wait for
  // `task`, a future this executor returned and has not started: run it on
  // the calling thread now, as TBB's calling thread takes part, instead of
  // waiting for a worker. True when it ran here (its queue entry is then
  // skipped when a worker reaches it); false (the default) when it cannot,
  // and the task runs as usual.
  virtual bool try_run_inline(detail::FutureCore& task) noexcept {
    static_cast<void>(task);
    return false;
  }

  Executor() = default;
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

 private:
  friend struct detail::ExecutorAccess;
};

// An executor that can stop a task past a time limit given with the
// submission (ProcessPool, MpiPool): the task (each item of the chunk) fails
// with TaskTimeoutError once it ran that long. The runner and pipelines use
// it for a job's `timeout`.
class TimedSubmit {
 public:
  virtual Future<Value> submit_call(Call call, std::chrono::nanoseconds timeout) = 0;
  virtual Future<std::vector<Outcome<Value>>> submit_chunk(std::string task, std::vector<Args> items,
                                                           std::chrono::nanoseconds timeout) = 0;
  // False when this instance cannot stop a task after all (an MpiPool whose
  // ranks run thread pools): the time-limited submits then throw UsageError.
  virtual bool takes_time_limits() const noexcept { return true; }

 protected:
  TimedSubmit() = default;
  ~TimedSubmit() = default;
};

namespace detail {
// The map family's way to the protected hook.
struct ExecutorAccess {
  static bool try_run_inline(Executor& executor, FutureCore& task) noexcept { return executor.try_run_inline(task); }
};
}  // namespace detail

}  // namespace troupe
