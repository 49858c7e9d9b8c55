#include "process/pool_core.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "process/spawn.hpp"
#include "troupe/cpu_count.hpp"
#include "troupe/detail/spelling.hpp"
#include "troupe/errors.hpp"
#include "troupe/promise.hpp"

namespace troupe::detail::process {

namespace {

std::size_t effective_max_workers(const ProcessPoolOptions& options) {
  return options.max_workers != 0 ? options.max_workers : std::max<std::size_t>(1, cpu_count());
}

// Every check of the options, in one place (throws UsageError).
const ProcessPoolOptions& check_options(const ProcessPoolOptions& options) {
  throw_if_invalid(options);
  return options;
}

std::vector<std::filesystem::path> absolute_paths(std::vector<std::filesystem::path> paths) {
  for (auto& p : paths) {
    p = std::filesystem::absolute(p);
  }
  return paths;
}

}  // namespace

PoolCore::PoolCore(std::vector<std::filesystem::path> plugin_paths, ProcessPoolOptions opts)
    : options(check_options(opts)),
      plugins(absolute_paths(std::move(plugin_paths))),
      max_workers(effective_max_workers(options)),
      shared(std::make_shared<Shared>()),
      supervisor_(reactor_, options, find_worker_executable(options.worker_executable), plugins),
      dispatcher_(supervisor_, *shared, max_workers,
                  {.spawn = [this] { return spawn_one(); },
                   .hit_max =
                       [this] {
                         std::lock_guard lock(state_mutex);
                         ++stats.times_hit_max_workers;
                       },
                   .room_freed =
                       [this] {
                         shared->notify();
                       }}),
      grace(options.shutdown_grace) {  // retiring workers (idle, recycled) get it too, not only shutdown()
  reactor = std::thread([this] { run(); });
  reactor_id = reactor.get_id();
}

PoolCore::~PoolCore() = default;

void PoolCore::throw_if_unavailable() const {
  std::lock_guard lock(state_mutex);
  if (broken) {
    std::rethrow_exception(broken);
  }
  if (shut_down) {
    throw UsageError("ProcessPool '" + options.name + "' was shut down; it takes no more work");
  }
}

void PoolCore::wait_for_room() {
  if (!options.queue_limit) {
    return;
  }
  const auto limit = static_cast<std::int64_t>(*options.queue_limit);
  if (shared->queued.load(std::memory_order_acquire) < limit) {
    return;
  }
  if (options.queue_full_policy == QueueFullPolicy::fail) {
    throw QueueFullError("ProcessPool '" + options.name + "': queue_limit of " + std::to_string(limit) +
                         " queued tasks reached");
  }
  if (std::this_thread::get_id() == reactor_id) {
    throw DeadlockError("ProcessPool '" + options.name +
                        "': a done callback submitted to a full queue; it would wait on itself");
  }
  std::unique_lock lock(shared->mutex);
  shared->waiters.fetch_add(1, std::memory_order_seq_cst);
  shared->changed.wait(lock, [&] {
    return shared->queued.load(std::memory_order_acquire) < limit || !accepting.load(std::memory_order_acquire);
  });
  shared->waiters.fetch_sub(1, std::memory_order_seq_cst);
}

// Hands an accepted job to the reactor; UsageError once the reactor has
// finished (a submit that raced with shutdown).
template <class T>
void PoolCore::enqueue(JobPtr job, Promise<T>& promise) {
  {
    std::lock_guard lock(inbox_mutex);
    if (reactor_exited) {
      throw UsageError("ProcessPool '" + options.name + "' was shut down; it takes no more work");
    }
    accept(promise, job->units());
    job->set_promise(std::move(promise));
    inbox.push_back(std::move(job));
    inbox_size.store(inbox.size(), std::memory_order_seq_cst);
  }
  reactor_.wake();
}

// Registers the future's cancel hook and the counters of an accepted job.
template <class T>
void PoolCore::accept(Promise<T>& promise, std::size_t units) {
  shared->queued.fetch_add(1, std::memory_order_seq_cst);
  shared->outstanding.fetch_add(1, std::memory_order_seq_cst);
  submitted.fetch_add(units, std::memory_order_relaxed);
  // A pending future cancelled by its owner: the reactor drops it when it
  // gets there. A call's hook captures the shared state alone, which
  // std::function stores without allocating (the submit path is hot).
  if constexpr (std::is_same_v<T, Value>) {
    promise.on_cancel([s = shared] { s->cancelled_pending(1); });
  } else {
    promise.on_cancel([s = shared, units] { s->cancelled_pending(units); });
  }
}

// The timeout a frame carries: its own, else the pool's; 0: none.
std::uint64_t PoolCore::timeout_ns(const std::optional<std::chrono::nanoseconds>& own) const {
  const auto timeout = own ? own : options.task_timeout;
  return timeout ? static_cast<std::uint64_t>(std::max<std::int64_t>(1, timeout->count())) : 0;
}

std::exception_ptr PoolCore::too_large_argument(const std::string& task, std::size_t size) const {
  return std::make_exception_ptr(ArgumentError(
      "the arguments of " + task + " encode to " + format_bytes(size) + ", over the ProcessPool's max_frame of " +
      format_bytes(options.max_frame) + "; pass less (or a path to a file), or raise max_frame"));
}

// The task table the first ready worker sent, once there is one: names
// are checked before anything is sent.
std::exception_ptr PoolCore::unknown_task(const std::string& task) const {
  const TaskTable* table = task_table.load(std::memory_order_acquire);
  if (table == nullptr) {
    return nullptr;
  }
  // Submitters mostly repeat one name: a string compare instead of a hash lookup per submit.
  thread_local std::uint64_t known_in = 0;
  thread_local std::string known;
  if (known_in == table->serial && known == task) {
    return nullptr;
  }
  if (table->tasks.contains(task)) {
    known_in = table->serial;
    known = task;
    return nullptr;
  }
  std::vector<std::string> names;
  names.reserve(table->tasks.size());
  for (const auto& [name, signature] : table->tasks) {
    names.push_back(name);
  }
  return std::make_exception_ptr(UnknownTaskError("no task named '" + task + "' in the plugins of ProcessPool '" +
                                                  options.name + "'" + detail::did_you_mean(task, names)));
}

std::exception_ptr PoolCore::cannot_encode(const std::string& task, const std::exception& e) const {
  return std::make_exception_ptr(
      ArgumentError("the arguments of " + task + " cannot be encoded for a worker process: " + e.what()));
}

Future<Value> PoolCore::submit_call(Call call, std::optional<std::chrono::nanoseconds> timeout) {
  throw_if_unavailable();
  const std::uint64_t id = next_id.fetch_add(1, std::memory_order_relaxed);
  auto [future, promise] = make_future_pair<Value>(id);
  if (auto error = unknown_task(call.task)) {
    promise.set_exception(std::move(error));
    return future;
  }
  auto job = std::make_unique<Job>();
  job->id = id;
  job->timeout = timeout;
  try {
    Task message{id, call.task, timeout_ns(timeout), std::move(call.args), std::move(call.kwargs)};
    const auto size = write_frame(job->frame, message);
    if (size - 4 > options.max_frame) {
      promise.set_exception(too_large_argument(call.task, size));
      return future;
    }
  } catch (const std::exception& e) {
    promise.set_exception(cannot_encode(call.task, e));
    return future;
  }
  wait_for_room();
  job->task = std::move(call.task);
  enqueue(std::move(job), promise);
  return future;
}

Future<ChunkResult> PoolCore::submit_chunk(std::string task, std::vector<Args> items,
                                           std::optional<std::chrono::nanoseconds> timeout) {
  throw_if_unavailable();
  const std::uint64_t id = next_id.fetch_add(1, std::memory_order_relaxed);
  auto [future, promise] = make_future_pair<ChunkResult>(id);
  if (auto error = items.empty() ? nullptr : unknown_task(task)) {  // an empty chunk is the ping
    promise.set_exception(std::move(error));
    return future;
  }
  auto job = std::make_unique<Job>();
  job->id = id;
  job->chunk = true;
  job->items = items.size();
  job->timeout = timeout;
  try {
    std::size_t estimate = 32 + task.size();
    if (!items.empty() && items.front().size() == 1 && items.front().front().is_number()) {
      estimate += items.size() * 11;
    }
    job->frame.reserve(estimate);
    const auto at = begin_frame(job->frame, Message::chunk);
    MsgpackWriter writer(job->frame);
    encode(writer, Chunk{id, task, timeout_ns(timeout), items.size()});
    for (const auto& item : items) {
      encode_chunk_item(writer, item);
    }
    const auto size = end_frame(job->frame, at);
    if (size - 4 > options.max_frame) {
      promise.set_exception(too_large_argument(task + " (a map chunk of " + std::to_string(items.size()) + ")", size));
      return future;
    }
  } catch (const std::exception& e) {
    promise.set_exception(cannot_encode(task, e));
    return future;
  }
  wait_for_room();
  job->task = std::move(task);
  enqueue(std::move(job), promise);
  return future;
}

void PoolCore::request_shutdown(const ProcessShutdownOptions& opts) {
  const bool on_reactor = std::this_thread::get_id() == reactor_id;
  if (opts.wait && on_reactor) {
    throw UsageError("ProcessPool '" + options.name +
                     "': shutdown({.wait = true}) from a done callback (the reactor thread) would wait on itself");
  }
  {
    std::lock_guard lock(state_mutex);
    shut_down = true;
  }
  accepting.store(false, std::memory_order_release);
  {
    std::lock_guard lock(inbox_mutex);
    if (!shutdown_request || opts.kill_workers || opts.cancel_pending) {
      ProcessShutdownOptions merged = opts;
      if (shutdown_request) {
        merged.kill_workers = merged.kill_workers || shutdown_request->kill_workers;
        merged.cancel_pending = merged.cancel_pending || shutdown_request->cancel_pending;
      }
      shutdown_request = merged;
      control_pending.store(true, std::memory_order_seq_cst);
    }
  }
  shared->notify();  // submitters blocked on a full queue
  reactor_.wake_always();
  if (opts.wait) {
    std::lock_guard lock(join_mutex);
    if (reactor.joinable()) {
      reactor.join();
    }
  }
}

namespace {
constexpr std::int64_t kLongestWaitStepNs = 3'600'000'000'000;
}  // namespace

bool PoolCore::join(Timeout timeout) {
  if (std::this_thread::get_id() == reactor_id) {
    throw DeadlockError("ProcessPool '" + options.name +
                        "': join() from a done callback (the reactor thread) would wait on itself");
  }
  const auto deadline = detail::deadline_after(timeout);
  std::unique_lock lock(shared->mutex);
  shared->waiters.fetch_add(1, std::memory_order_seq_cst);
  bool done = true;
  while (shared->outstanding.load(std::memory_order_seq_cst) > 0) {
    if (!deadline) {
      shared->changed.wait(lock);
    } else {
      const auto left = *deadline - now_ns();
      if (left <= 0) {
        done = false;
        break;
      }
      // In steps of at most an hour: wait_for adds its argument to now(),
      // which overflows (and returns at once) near a saturated deadline.
      shared->changed.wait_for(lock, std::chrono::nanoseconds(std::min<std::int64_t>(left, kLongestWaitStepNs)));
    }
  }
  shared->waiters.fetch_sub(1, std::memory_order_seq_cst);
  return done;
}

void PoolCore::request_interrupt() {
  {
    std::lock_guard lock(inbox_mutex);
    interrupt_request = true;
    control_pending.store(true, std::memory_order_seq_cst);
  }
  reactor_.wake_always();
}

void PoolCore::spawn_workers(std::size_t n) {
  throw_if_unavailable();
  {
    std::lock_guard lock(inbox_mutex);
    spawn_requests += n;
    control_pending.store(true, std::memory_order_seq_cst);
  }
  reactor_.wake_always();
}

PoolGauges PoolCore::gauges() const {
  PoolGauges g;
  g.live_workers = live.load(std::memory_order_relaxed);
  g.busy_workers = busy.load(std::memory_order_relaxed);
  g.idle_workers = idle.load(std::memory_order_relaxed);
  g.queued = static_cast<std::size_t>(std::max<std::int64_t>(0, shared->queued.load(std::memory_order_relaxed)));
  return g;
}

PoolStats PoolCore::stats_snapshot() const {
  PoolStats s;
  {
    std::lock_guard lock(state_mutex);
    s = stats;
  }
  static_cast<PoolGauges&>(s) = gauges();
  s.submitted = submitted.load(std::memory_order_relaxed);
  s.completed = completed.load(std::memory_order_relaxed);
  s.failed = failed.load(std::memory_order_relaxed);
  s.cancelled = shared->cancelled.load(std::memory_order_relaxed);
  return s;
}

std::vector<CancelledTask> PoolCore::cancelled_list_copy() const {
  std::lock_guard lock(state_mutex);
  return cancelled_list;
}

std::vector<std::int64_t> PoolCore::pid_list() const {
  std::lock_guard lock(state_mutex);
  return pids;
}

std::exception_ptr PoolCore::broken_error() const {
  std::lock_guard lock(state_mutex);
  return broken;
}

}  // namespace troupe::detail::process
