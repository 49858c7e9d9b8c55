// troupe/pool_options.hpp
//
// The options of both pool kinds: two flat structs, so designated
// initializers work (`ThreadPool pool({.max_workers = 4, .name = "io"})`),
// whose shared fields are declared once (the TROUPE_DETAIL_*_OPTIONS lists
// both expand), and one validate() per kind that returns every problem.
//
// Guarantees: the same option gets the same answer on both kinds; what a
// kind cannot do (caller_runs on a process pool) is refused the same way,
// naming the option and the kind. Both pool constructors call
// throw_if_invalid(), so a pool never starts with options validate() refuses.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "troupe/sdk/call.hpp"
#include "troupe/sdk/worker.hpp"

namespace troupe {

class Registry;

// What to do when queue_limit is reached.
enum class QueueFullPolicy {
  block,        // submit waits for room (a pool's own task runs that submission itself)
  fail,         // submit throws QueueFullError
  caller_runs,  // the submitting thread runs the task itself (thread pools only)
};

// A per-worker initializer or finalizer: a C++ callable taking the Worker, or
// a plugin initializer/finalizer call by name with arguments (needs
// ThreadPoolOptions::registry).
class WorkerHook {
 public:
  WorkerHook() = default;
  template <class F>
  requires std::invocable<F&, Worker&> &&(!std::same_as<std::remove_cvref_t<F>, WorkerHook>)WorkerHook(F fn)
      : fn_(std::move(fn)) {}                        // NOLINT: implicit on purpose
  WorkerHook(Call call) : call_(std::move(call)) {}  // NOLINT: implicit on purpose

  explicit operator bool() const noexcept { return static_cast<bool>(fn_) || call_.has_value(); }
  const std::function<void(Worker&)>& callable() const noexcept { return fn_; }
  const std::optional<Call>& plugin_call() const noexcept { return call_; }

 private:
  std::function<void(Worker&)> fn_;
  std::optional<Call> call_;
};

enum class OnWorkerCrash {
  respawn,     // fail the task in flight, start a replacement
  break_pool,  // fail it and break the pool (loky's behaviour)
};

// Workers dying at start-up or on every task: the max-th death within
// `within` breaks the pool instead of respawning for ever, and so do max
// start-up failures in a row (no worker ready in between) whatever `within`
// says. max = 0: never.
struct CrashStorm {
  std::size_t max = 5;
  std::chrono::nanoseconds within = std::chrono::seconds(10);
};

// The largest max_workers validate() accepts: each worker is a thread or a
// process, and a pool sizes its bookkeeping by the bound.
inline constexpr std::size_t kMaxWorkersLimit = 32768;

// The options both kinds share, as X(type, name, default). Two lists, not
// one, because each struct keeps its fields in the order designated
// initializers already use. Each list's options are documented above it
// (a // comment inside a macro would swallow its next line).
//
// max_workers           0: troupe::cpu_count(). At most kMaxWorkersLimit.
// min_workers           0. Workers kept alive through idle timeouts (not
//                       started eagerly; see spawn_workers); at most
//                       max_workers.
// idle_timeout          60 s. An idle worker past it retires (down to
//                       min_workers); 0: as soon as it is idle; nullopt:
//                       never; negative is refused.
// max_tasks_per_worker  nullopt (no limit). A worker retires after that many
//                       tasks (a map chunk counts as one); 0 is refused.
#define TROUPE_DETAIL_POOL_WORKER_OPTIONS(X)                                         \
  X(std::size_t, max_workers, 0)                                                     \
  X(std::size_t, min_workers, 0)                                                     \
  X(std::optional<std::chrono::nanoseconds>, idle_timeout, std::chrono::seconds(60)) \
  X(std::optional<std::size_t>, max_tasks_per_worker, std::nullopt)

// queue_limit        nullopt (unbounded). Work accepted but not yet handed
//                    to a worker; 0 is refused.
// queue_full_policy  block. What submit does at queue_limit; caller_runs
//                    exists only on thread pools.
#define TROUPE_DETAIL_POOL_QUEUE_OPTIONS(X)                \
  X(std::optional<std::size_t>, queue_limit, std::nullopt) \
  X(QueueFullPolicy, queue_full_policy, QueueFullPolicy::block)

#define TROUPE_DETAIL_DECLARE_OPTION(type, name, default_value) type name = default_value;

struct ThreadPoolOptions {
  TROUPE_DETAIL_POOL_WORKER_OPTIONS(TROUPE_DETAIL_DECLARE_OPTION)
  WorkerHook initializer{};  // none. Runs once on each worker before its first task.
  WorkerHook finalizer{};    // none. Runs once on each worker as it exits.
  TROUPE_DETAIL_POOL_QUEUE_OPTIONS(TROUPE_DETAIL_DECLARE_OPTION)
  // "pool". Threads are named troupe:<name>:<id> (cut to 15 bytes); errors
  // name the pool by it. Empty is refused.
  std::string name = "pool";
  // null. Resolves plugin calls (call, submit_call, submit_chunk, map on
  // task names, Call hooks); a Call hook without it is refused. Must
  // outlive the pool.
  const Registry* registry = nullptr;
  // 50 us. How long an idle worker polls the queue before it sleeps:
  // latency bought with CPU time. Zero sleeps at once; negative is refused.
  std::chrono::nanoseconds spin_before_sleep = std::chrono::microseconds(50);
};

struct ProcessPoolOptions {
  TROUPE_DETAIL_POOL_WORKER_OPTIONS(TROUPE_DETAIL_DECLARE_OPTION)
  // 0. Each worker's limit is max_tasks_per_worker + uniform[0, jitter];
  // needs max_tasks_per_worker.
  std::size_t recycle_jitter = 0;
  // nullopt (none). Bytes of RSS after a task; over it the worker retires. 0 is refused.
  std::optional<std::uint64_t> max_memory_per_worker = std::nullopt;
  std::optional<Call> initializer = std::nullopt;  // none. Plugin initializer, run in each worker before ready.
  std::optional<Call> finalizer = std::nullopt;    // none. Plugin finalizer, run when a worker leaves in order.
  TROUPE_DETAIL_POOL_QUEUE_OPTIONS(TROUPE_DETAIL_DECLARE_OPTION)
  // empty. Added to (and overriding) the host's environment; a name that is
  // empty or holds '=' is refused.
  std::map<std::string, std::string> env = {};
  // nullopt (none). Per task, per item of a chunk; zero or negative is refused.
  std::optional<std::chrono::nanoseconds> task_timeout = std::nullopt;
  OnWorkerCrash on_worker_crash = OnWorkerCrash::respawn;  // respawn.
  // 10 s. Spawn to ready; zero or negative is refused.
  std::chrono::nanoseconds startup_timeout = std::chrono::seconds(10);
  // 5 s. Then SIGTERM, again, then SIGKILL; 0 signals at once; negative is refused.
  std::chrono::nanoseconds shutdown_grace = std::chrono::seconds(5);
  // 64 MiB. An argument or result over it fails its own future; under 1024 is refused.
  std::size_t max_frame = 64u << 20;
  // {max: 5, within: 10 s}. within must be positive when max > 0.
  CrashStorm crash_storm = {};
  // empty: $TROUPE_WORKER, else next to libtroupe.
  std::filesystem::path worker_executable = {};
  // "process-pool". Errors name the pool by it. Empty is refused.
  std::string name = "process-pool";
};

// The pool each serving rank of an MpiPool runs (troupe/mpi_pool.hpp).
using LocalPoolOptions = std::variant<ThreadPoolOptions, ProcessPoolOptions>;

// A pool spread over the ranks of an MPI job (`troupe::mpi`): rank 0 hands
// out work, every other rank runs `local` on the same plugins. Plain data,
// so a host that does not link MPI still reads and checks it.
struct MpiPoolOptions {
  // A ProcessPool with max_workers 0. On each rank, max_workers 0 ("auto")
  // is that node's cores divided by the ranks on the node, at least 1.
  LocalPoolOptions local = ProcessPoolOptions{};
  // 2. Calls or map chunks a rank holds per local worker: one running, the
  // rest waiting there, so a worker does not wait for a round trip to rank
  // 0; a rank asks for more as each one ends. 1 to 1024.
  std::size_t frames_per_worker = 2;
  TROUPE_DETAIL_POOL_QUEUE_OPTIONS(TROUPE_DETAIL_DECLARE_OPTION)
  // 60 s. Every rank reports ready (its local pool built) within it, or the
  // pool does not start; zero or negative is refused.
  std::chrono::nanoseconds startup_timeout = std::chrono::seconds(60);
  // "mpi-pool". Errors name the pool by it. Empty is refused.
  std::string name = "mpi-pool";
};

#undef TROUPE_DETAIL_DECLARE_OPTION

// One refused option: its name (`crash_storm.within`), the value given as
// text, and what is allowed.
struct OptionProblem {
  std::string option;
  std::string value;
  std::string allowed;

  // "queue_limit = 0: must be at least 1, or unset for no limit"
  std::string to_string() const;
  friend bool operator==(const OptionProblem&, const OptionProblem&) = default;
};

// Every problem with `options`, one entry each; empty when valid.
std::vector<OptionProblem> validate(const ThreadPoolOptions& options);
std::vector<OptionProblem> validate(const ProcessPoolOptions& options);
// The local pool's problems are named `local.<option>`.
std::vector<OptionProblem> validate(const MpiPoolOptions& options);

// Throws UsageError listing every problem validate() finds, naming the pool
// kind and name ("ThreadPool 'io': 2 invalid options: ..."); else returns.
void throw_if_invalid(const ThreadPoolOptions& options);
void throw_if_invalid(const ProcessPoolOptions& options);
void throw_if_invalid(const MpiPoolOptions& options);

}  // namespace troupe
