// troupe/process_pool.hpp
//
// A pool of troupe-worker processes that run plugin tasks, so a plugin that
// crashes, hangs or leaks takes down a worker, never the host.
//
//   troupe::ProcessPool pool({"plugins/libtroupe_text.so"}, {.max_workers = 4, .task_timeout = 30s});
//   auto f = pool.call("text.words", doc);                       // Future<Value>
//   for (auto& v : troupe::map(pool, "text.words", docs)) ...    // chunks travel as one frame
//
// Guarantees: every accepted call ends exactly once (value, error, or
// cancelled). A worker that dies fails only the task (or the unreported
// items of the map chunk) it was running, with WorkerCrashedError (worker id,
// pid, signal or exit status, task, last RSS); work already sent to it but
// not started runs elsewhere; the worker is replaced (or, with
// on_worker_crash = break_pool, the pool breaks). A hung task past
// task_timeout fails with TaskTimeoutError and its worker is replaced. A
// remote exception arrives as RemoteError (type, message, causes, stack
// trace). Workers start lazily with posix_spawn from the pool's one reactor
// thread, each in its own process group, and die with their host
// (parent-death signal, EOF on their channel, parent-pid watch). The
// destructor is shutdown({.wait = true}): queued work runs, finalizers run.
// An initializer or finalizer that throws, a crash storm (crash_storm.max
// deaths within crash_storm.within), or crash_storm.max workers in a row
// that die or time out before ready, breaks the pool (BrokenPoolError,
// cause nested); a fresh pool can replace it.
// Thread safety: every member may be called from any thread.
// An unknown task name is UnknownTaskError and arguments that do not bind
// (wrong type, out of range, missing) ArgumentError, as on a ThreadPool,
// each with the worker's RemoteError as its nested cause. stats() counts
// items: a map chunk of N items is N submitted, each item completed, failed
// or cancelled, counted before its future completes.
// Once a worker has reported ready, a name missing from its task table fails
// the future before anything is sent.
// Hazards: the host never loads the plugins itself. Up to a few frames are
// pipelined to each worker, and a future counts as running once it was sent:
// cancel() on it returns false and sets the cooperative flag, which a running
// task sees within ~100 ms; a frame the worker has not started yet is revoked
// and its future ends cancelled (CancelledError) within ~100 ms. Done
// callbacks run on the reactor thread: keep them short, and never call
// shutdown({.wait = true}) or join() from one (UsageError / DeadlockError).
// Someone else reaping the pool's children (waitpid(-1), SIGCHLD ignored)
// loses their exit status.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "troupe/executor.hpp"
#include "troupe/pool_options.hpp"
#include "troupe/process_errors.hpp"
#include "troupe/sdk/call.hpp"
#include "troupe/sdk/descriptor.hpp"
#include "troupe/thread_pool.hpp"

namespace troupe {

// shutdown() of a process pool: ShutdownOptions plus what to do with workers
// that are still running tasks.
struct ProcessShutdownOptions {
  bool wait = true;
  bool cancel_pending = false;
  // Do not wait for running tasks: queued work is cancelled, every worker is
  // told to stop, and one still running after `grace` gets SIGTERM, after
  // another `grace` SIGKILL. Their tasks fail with WorkerCrashedError.
  bool kill_workers = false;
  std::optional<std::chrono::nanoseconds> grace = std::nullopt;  // nullopt: ProcessPoolOptions::shutdown_grace
};

// ProcessPool::shutdown(ProcessShutdownOptions) hides Executor::shutdown on purpose.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverloaded-virtual"

namespace detail {
namespace process {
class PoolCore;  // engine/src/process/pool_core.hpp
}  // namespace process

// Routes Executor::shutdown(ShutdownOptions) to the process pool's own
// shutdown, which hides it (so `pool.shutdown({.wait = false})` is not ambiguous).
class ProcessExecutor : public Executor {
 public:
  void shutdown(const ShutdownOptions& options = {}) final {
    shutdown_processes({.wait = options.wait, .cancel_pending = options.cancel_pending});
  }

 protected:
  virtual void shutdown_processes(const ProcessShutdownOptions& options) = 0;
};
}  // namespace detail

class ProcessPool final : public detail::ProcessExecutor, public TimedSubmit {
 public:
  // `plugins` are loaded by each worker (never by the host). Throws
  // troupe::Error when troupe-worker cannot be found, UsageError for
  // contradictory options.
  explicit ProcessPool(std::vector<std::filesystem::path> plugins, ProcessPoolOptions options = {});
  ~ProcessPool() override;

  // An argument that cannot be encoded or is over max_frame gives a future
  // that has already failed (ArgumentError); nothing is sent.
  Future<Value> submit_call(Call call) override;
  Future<std::vector<Outcome<Value>>> submit_chunk(std::string task, std::vector<Args> items) override;
  // The same with `timeout` in place of task_timeout for this call (for each
  // item of this chunk): past it the worker is killed and the task (item)
  // fails with TaskTimeoutError, as with task_timeout.
  Future<Value> submit_call(Call call, std::chrono::nanoseconds timeout) override;
  Future<std::vector<Outcome<Value>>> submit_chunk(std::string task, std::vector<Args> items,
                                                   std::chrono::nanoseconds timeout) override;

  void shutdown(const ProcessShutdownOptions& options = {});
  void interrupt_running() override;
  using Executor::join;
  bool join(Timeout timeout = std::nullopt) override;
  void check() const override;
  // Starts a one-worker replica (its own troupe-worker: plugins loaded,
  // initializer run), makes one round trip and shuts it down; rethrows what
  // broke the replica (InitializerError, a start-up crash).
  void test() override;
  // Starts the processes now and returns before they are ready.
  void spawn_workers(std::size_t n) override;

  std::size_t max_workers() const override;
  // live_workers counts processes still starting; busy_workers are ready
  // workers with frames in flight, idle_workers ready ones without.
  PoolGauges gauges() const override;
  std::vector<CancelledTask> cancelled_tasks() const override;
  PoolStats stats() const override;

  const ProcessPoolOptions& options() const noexcept;
  const std::vector<std::filesystem::path>& plugins() const noexcept;
  // The qualified names of the plugins' tasks, as the first ready worker
  // reported them; empty until a worker has been ready.
  std::vector<std::string> task_names() const;
  // Every task, initializer and finalizer of the plugins with its signature
  // (Signature::kind tells them apart), as the first ready worker reported
  // them; empty until a worker has been ready. Reading it runs no plugin
  // code in this process: config::check builds on it.
  std::vector<Signature> signatures() const;
  // Process ids of the live workers (for tests and diagnostics).
  std::vector<std::int64_t> worker_pids() const;

 protected:
  detail::shared::SharedState* shared_state() const noexcept override;

 private:
  void shutdown_processes(const ProcessShutdownOptions& options) override;

  std::unique_ptr<detail::process::PoolCore> core_;
};

#pragma GCC diagnostic pop

}  // namespace troupe
