// troupe/thread_pool.hpp
//
// A pool of engine-owned threads that run C++ callables and plugin tasks,
// inside the pool's own tbb::task_arena.
//
//   troupe::ThreadPool pool({.max_workers = 4, .name = "io"});
//   auto f = pool.submit([](int x) { return x * 2; }, 21);   // Future<int>
//   auto g = pool.call("testing.double", 21);                 // Future<Value>, needs .registry
//
// Guarantees: every accepted task ends exactly once (value, error, or
// cancelled); the initializer and finalizer run once per worker, on that
// worker; workers start lazily (one more only when no worker is idle), up to
// max_workers; an idle worker past idle_timeout, or one that reached
// max_tasks_per_worker, runs its finalizer on its own thread and exits
// (idle ones down to min_workers); a replacement starts when work is queued.
// An initializer or finalizer that throws breaks the pool (InitializerError /
// FinalizerError, cause nested): queued tasks end cancelled (get() throws
// that error; listed by cancelled_tasks()), later submits throw it.
// shutdown() lets queued work run by default; the destructor is shutdown().
// A task that calls tbb::parallel_for runs it inside the pool's arena, whose
// slots are reserved for the pool's own threads: the pool never has more
// threads doing its work than max_workers, and TBB's own workers never
// join it (nested loops run on the calling worker).
// Thread safety: every member may be called from any thread, tasks included.
// Hazards: shutdown({.wait = true}) and the destructor from one of the pool's
// own tasks throw troupe::UsageError / terminate instead of deadlocking, so a
// task must never hold the last reference to its pool. join() from a task
// throws DeadlockError. A task that waits (get, wait, as_completed, a map)
// never runs unrelated queued work on its stack: it runs the awaited task
// itself if that is the pool's and has not started; otherwise, while work
// is queued, the pool starts a worker (a compensating one, at most
// max_workers of them) so the queue moves with at most max_workers runnable
// threads (docs/semantics.md, nested waits). Blocking outside troupe's
// waits (std::future, a mutex) holds the worker.
// A submit that cannot start a worker thread either accepts the task (a
// live worker will run it) or refuses it (throws troupe::Error; it will
// not run), never both.
// Under QueueFullPolicy::caller_runs the caller runs the task with a bare
// Worker (id kCallerWorker, no initializer state), outside the arena.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "troupe/executor.hpp"
#include "troupe/future.hpp"
#include "troupe/pool_options.hpp"
#include "troupe/sdk/call.hpp"
#include "troupe/sdk/task_context.hpp"
#include "troupe/sdk/worker.hpp"

namespace troupe {

class Registry;

// Optional per-task priority: a worker takes high before normal before low.
// Order within one priority is FIFO per submitting thread.
enum class Priority { low, normal, high };

struct SubmitOptions {
  Priority priority = Priority::normal;
};

namespace detail {

struct PoolMapAccess;

// Runs a C++ callable as std::thread does: the callable and the stored
// arguments are passed as rvalues (so move-only arguments work), with a
// TaskContext& first when the callable takes one.
template <class F, class... A>
constexpr bool takes_context_v = std::is_invocable_v<F&&, TaskContext&, A&&...>;

template <class F, class... A>
using callable_result_t =
    typename std::conditional_t<takes_context_v<F, A...>, std::invoke_result<F&&, TaskContext&, A&&...>,
                                std::invoke_result<F&&, A&&...>>::type;

template <class R, class F, class Tuple>
class CallableTask final : public FutureData<R> {
 public:
  CallableTask(F fn, Tuple args) : FutureData<R>(0, 2), fn_(std::move(fn)), args_(std::move(args)) {}

  void run(Worker& worker) noexcept override {
    try {
      if constexpr (std::is_void_v<R>) {
        invoke(worker);
        this->set_value();
      } else {
        this->set_value(invoke(worker));
      }
    } catch (...) {
      this->set_exception(std::current_exception());
    }
  }
  std::string describe() const override { return "<callable>"; }

 private:
  // Runs once per task, so the callable and its arguments are moved in.
  decltype(auto) invoke(Worker& worker) {
    return std::apply(
        [&](auto&... args) -> decltype(auto) {
          if constexpr (std::is_invocable_v<F&&, TaskContext&, decltype(std::move(args))...>) {
            TaskContext ctx("<callable>", worker, this->cancel_flag());
            return std::invoke(std::move(fn_), ctx, std::move(args)...);
          } else {
            static_cast<void>(worker);
            return std::invoke(std::move(fn_), std::move(args)...);
          }
        },
        args_);
  }

  F fn_;
  Tuple args_;
};

}  // namespace detail

class ThreadPool final : public Executor {
 public:
  // The id ctx.worker().id() reports when a task runs on the submitting
  // thread under QueueFullPolicy::caller_runs.
  static constexpr std::size_t kCallerWorker = static_cast<std::size_t>(-2);

  explicit ThreadPool(ThreadPoolOptions options = {});
  ~ThreadPool() override;

  // fn(args...) (or fn(ctx, args...) when it takes a TaskContext& first) ->
  // Future<R>. As with std::thread, the callable and arguments are
  // decay-copied (or moved) into the task and passed to it as rvalues, so
  // move-only arguments work; a parameter of type T& does not bind (use
  // std::ref). Move-only results work too (get() returns a const reference).
  template <class F, class... A>
  auto submit(F&& fn, A&&... args) {
    return submit_with(SubmitOptions{}, std::forward<F>(fn), std::forward<A>(args)...);
  }
  template <class F, class... A>
  auto submit_with(const SubmitOptions& options, F&& fn, A&&... args) {
    auto [future, task] = make_task(std::forward<F>(fn), std::forward<A>(args)...);
    enqueue(task, options.priority, false);
    return future;
  }
  // Like submit, but never blocks: nullopt when queue_limit is reached.
  template <class F, class... A>
  auto try_submit(F&& fn, A&&... args) {
    auto [future, task] = make_task(std::forward<F>(fn), std::forward<A>(args)...);
    using FutureType = decltype(future);
    return enqueue(task, Priority::normal, true) ? std::optional<FutureType>(std::move(future))
                                                 : std::optional<FutureType>();
  }

  // Executor.
  Future<Value> submit_call(Call call) override;
  Future<std::vector<Outcome<Value>>> submit_chunk(std::string task, std::vector<Args> items) override;
  void shutdown(const ShutdownOptions& options = {}) override;
  void interrupt_running() override;
  bool join(Timeout timeout = std::nullopt) override;
  void check() const override;
  void test() override;
  void spawn_workers(std::size_t n) override;
  std::size_t max_workers() const override;
  PoolGauges gauges() const override;
  std::vector<CancelledTask> cancelled_tasks() const override;
  PoolStats stats() const override;

  const ThreadPoolOptions& options() const noexcept;
  // True on one of this pool's worker threads.
  bool is_worker_thread() const noexcept;

 protected:
  // Runs `task`, one of this pool's queued tasks, on the calling thread now if
  // it is still pending; false when it had started, completed or been
  // cancelled, the pool is not open, or not all of its max_workers workers
  // are up (initialized). The caller runs it with a bare Worker
  // (kCallerWorker), or as itself when it is one of this pool's workers.
  bool try_run_inline(detail::FutureCore& task) noexcept override;

 private:
  friend struct detail::PoolMapAccess;

  // A map chunk of `items` items: counted as that many in stats().
  template <class F>
  auto submit_items(std::size_t items, F&& fn) {
    auto [future, task] = make_task(std::forward<F>(fn));
    enqueue(task, Priority::normal, false, items);
    return future;
  }

  template <class F, class... A>
  auto make_task(F&& fn, A&&... args) {
    using Fn = std::decay_t<F>;
    using Tuple = std::tuple<std::decay_t<A>...>;
    using R = detail::callable_result_t<Fn, std::decay_t<A>...>;
    static_assert(!std::is_reference_v<R> || std::is_void_v<R>,
                  "a task returning a reference: return a value (or std::ref/pointer) instead");
    auto* task = new detail::CallableTask<R, Fn, Tuple>(std::forward<F>(fn), Tuple(std::forward<A>(args)...));
    // Two references: the future's and the queue's (taken over by enqueue).
    return std::pair{detail::future_from_core(detail::CorePtr<detail::FutureData<R>>::adopt(task)),
                     static_cast<detail::FutureCore*>(task)};
  }

  // Takes over one reference to `task` (released on throw). Returns false
  // only for try_only when the queue is full. `items`: what stats() counts it as.
  bool enqueue(detail::FutureCore* task, Priority priority, bool try_only, std::size_t items = 1);

  struct Core;  // engine/src/thread/
  std::unique_ptr<Core> core_;
};

}  // namespace troupe
