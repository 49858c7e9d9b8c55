// ProcessPool: the API side (submit, counters, shutdown) and the reactor
// thread that owns every worker process. One epoll set holds an eventfd
// (wake-ups from submitters), each worker's channel and each worker's pidfd.
// Only the reactor thread spawns workers: PR_SET_PDEATHSIG, which each worker
// sets on itself, follows the thread that spawned it.
#include "troupe/process_pool.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "process/error_record.hpp"
#include "process/frame_codec.hpp"
#include "process/protocol.hpp"
#include "process/spawn.hpp"
#include "process/worker_page.hpp"
#include "troupe/cpu_count.hpp"
#include "troupe/detail/spelling.hpp"
#include "troupe/errors.hpp"

namespace troupe {

namespace tp = detail::process;
using tp::Message;

namespace {

std::int64_t now_ns() noexcept {
  return detail::now_ns();
}

// `outer` with `cause` as its nested exception.
template <class E>
std::exception_ptr nest(const std::exception_ptr& cause, E outer) {
  try {
    std::rethrow_exception(cause);
  } catch (...) {
    try {
      std::throw_with_nested(std::move(outer));
    } catch (...) {
      return std::current_exception();
    }
  }
}

std::string what_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

std::string seconds_text(std::chrono::nanoseconds d) {
  char text[64];
  std::snprintf(text, sizeof text, "%.3g s", std::chrono::duration<double>(d).count());
  return text;
}

using ChunkResult = std::vector<Outcome<Value>>;

// One submission: a call or a map chunk, its encoded frame and its promise.
struct Job {
  std::uint64_t id = 0;
  std::string task;
  std::vector<std::uint8_t> frame;
  bool chunk = false;
  std::size_t items = 0;
  bool started = false;
  detail::Promise<Value> call;
  detail::Promise<ChunkResult> chunk_promise;
  ChunkResult outcomes;
  std::size_t reported = 0;                         // chunk items whose outcome arrived
  std::optional<std::chrono::nanoseconds> timeout;  // per task (per item of a chunk); none: the pool's task_timeout
  bool revoke_sent = false;
  // Reported chunk items by outcome; they reach the pool's counters when the chunk ends.
  std::size_t ok_items = 0;
  std::size_t failed_items = 0;
  std::size_t cancelled_items = 0;

  // What the pool's item counters count: a call is one item, a chunk its items.
  std::size_t units() const { return chunk ? items : 1; }

  bool cancel_requested() const {
    return (chunk ? chunk_promise.cancel_flag() : call.cancel_flag())->load(std::memory_order_relaxed);
  }
  void set_promise(detail::Promise<Value>&& p) { call = std::move(p); }
  void set_promise(detail::Promise<ChunkResult>&& p) { chunk_promise = std::move(p); }
  bool try_start(std::size_t worker) { return chunk ? chunk_promise.try_start(worker) : call.try_start(worker); }
  bool fail(std::exception_ptr error) {
    return chunk ? chunk_promise.set_exception(std::move(error)) : call.set_exception(std::move(error));
  }
  bool cancel(std::exception_ptr cause) {
    return chunk ? chunk_promise.set_cancelled(std::move(cause)) : call.set_cancelled(std::move(cause));
  }
  void request_cancel() {
    if (chunk) {
      chunk_promise.request_cancel();
    } else {
      call.request_cancel();
    }
  }
  // A map chunk whose worker died: reported items keep their outcomes, the rest get `error`.
  bool finish_chunk_with(const std::function<std::exception_ptr(std::size_t)>& error_for) {
    outcomes.resize(items);
    for (std::size_t i = reported; i < items; ++i) {
      outcomes[i] = Outcome<Value>(error_for(i));
    }
    return chunk_promise.set_value(std::move(outcomes));
  }
};

using JobPtr = std::unique_ptr<Job>;

// The workers' tasks by qualified name, from their ready message.
using TaskTable = std::unordered_map<std::string, Signature>;

// What submitters, cancel hooks and the reactor share; outlives the pool
// while a future's cancel hook may still run.
struct Shared {
  std::atomic<std::int64_t> queued{0};       // accepted, not yet sent to a worker
  std::atomic<std::int64_t> outstanding{0};  // accepted, not yet ended
  std::atomic<std::uint64_t> cancelled{0};
  std::atomic<int> waiters{0};
  std::mutex mutex;
  std::condition_variable changed;

  void notify() {
    if (waiters.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard lock(mutex);
      changed.notify_all();
    }
  }
  void ended(std::int64_t n = 1) {
    if (outstanding.fetch_sub(n, std::memory_order_seq_cst) == n) {
      notify();
    }
  }
};

enum class Phase { starting, ready, stopping };

struct Slot {
  std::uint64_t token = 0;
  std::size_t id = 0;
  pid_t pid = -1;
  int pidfd = -1;
  int fd = -1;
  tp::WorkerPage* page = nullptr;
  Phase phase = Phase::starting;
  tp::FrameBuffer in{tp::default_max_frame + 16};
  std::vector<std::uint8_t> out;
  std::size_t out_pos = 0;
  bool want_write = false;
  bool channel_open = true;
  std::deque<JobPtr> inflight;
  std::int64_t spawned_ns = 0;
  std::int64_t idle_since_ns = 0;
  std::int64_t current_started_ns = 0;  // when the head of `inflight` became the head (for the EWMA)
  std::int64_t last_result_ns = 0;
  double ewma_ns = 0;
  std::optional<std::uint64_t> last_rss;
  bool retiring = false;
  bool expected_exit = false;  // bye, init_failed, or killed by the pool on purpose
  bool timed_out = false;      // killed for task_timeout
  std::uint64_t timed_out_id = 0;
  std::chrono::nanoseconds timed_out_after{0};
  bool revoke_unflushed = false;  // a revoke frame is in `out`: bump the page's revoke epoch once it is sent
  std::uint64_t timed_out_item = 0;
  bool start_timed_out = false;
  bool killed_for_shutdown = false;
  std::string protocol_error;  // why the pool killed it, when the channel broke the protocol
  std::int64_t term_at = 0;    // escalation: SIGTERM at, then SIGKILL at
  std::int64_t kill_at = 0;
};

}  // namespace

struct ProcessPool::Core {
  Core(std::vector<std::filesystem::path> plugin_paths, ProcessPoolOptions opts)
      : options(std::move(opts)), plugins(std::move(plugin_paths)), shared(std::make_shared<Shared>()) {
    if (options.queue_full_policy == QueueFullPolicy::caller_runs) {
      throw UsageError(
          "QueueFullPolicy::caller_runs is not available for a ProcessPool: the host does not load "
          "plugins, so it cannot run a task itself; use block or fail");
    }
    max_workers = options.max_workers != 0 ? options.max_workers : std::max<std::size_t>(1, cpu_count());
    if (options.min_workers > max_workers) {
      throw UsageError("ProcessPool '" + options.name + "': min_workers (" + std::to_string(options.min_workers) +
                       ") is above max_workers (" + std::to_string(max_workers) + ")");
    }
    if (options.max_frame < 1024) {
      throw UsageError("ProcessPool '" + options.name + "': max_frame must be at least 1024 bytes");
    }
    for (auto& p : plugins) {
      p = std::filesystem::absolute(p);
    }
    worker_executable = tp::find_worker_executable(options.worker_executable);
    epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (epoll_fd < 0 || wake_fd < 0) {
      const int error = errno;
      close_fds();
      throw Error(std::string("ProcessPool: cannot create its epoll set or eventfd: ") + std::strerror(error));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 0;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &ev);
    grace = options.shutdown_grace;  // retiring workers (idle, recycled) get it too, not only shutdown()
    rng.seed(std::random_device{}());
    reactor = std::thread([this] { run(); });
    reactor_id = reactor.get_id();
  }

  ~Core() { close_fds(); }

  void close_fds() {
    if (epoll_fd >= 0) {
      ::close(epoll_fd);
      epoll_fd = -1;
    }
    if (wake_fd >= 0) {
      ::close(wake_fd);
      wake_fd = -1;
    }
  }

  // ---- API side ---------------------------------------------------------------

  void throw_if_unavailable() const {
    std::lock_guard lock(state_mutex);
    if (broken) {
      std::rethrow_exception(broken);
    }
    if (shut_down) {
      throw UsageError("ProcessPool '" + options.name + "' was shut down; it takes no more work");
    }
  }

  void wake() {
    if (sleeping.load(std::memory_order_seq_cst) && sleeping.exchange(false, std::memory_order_seq_cst)) {
      const std::uint64_t one = 1;
      [[maybe_unused]] const auto n = ::write(wake_fd, &one, sizeof one);
    }
  }

  void wait_for_room() {
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
  void enqueue(JobPtr job, detail::Promise<T>& promise) {
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
    wake();
  }

  // Registers the future's cancel hook and the counters of an accepted job.
  template <class T>
  void accept(detail::Promise<T>& promise, std::size_t units) {
    shared->queued.fetch_add(1, std::memory_order_seq_cst);
    shared->outstanding.fetch_add(1, std::memory_order_seq_cst);
    submitted.fetch_add(units, std::memory_order_relaxed);
    promise.on_cancel([s = shared, units] {
      // A pending future cancelled by its owner: the reactor drops it when it gets there.
      s->queued.fetch_sub(1, std::memory_order_seq_cst);
      s->cancelled.fetch_add(units, std::memory_order_relaxed);
      s->ended();
      s->notify();
    });
  }

  std::exception_ptr too_large_argument(const std::string& task, std::size_t size) const {
    return std::make_exception_ptr(ArgumentError(
        "the arguments of " + task + " encode to " + tp::format_bytes(size) + ", over the ProcessPool's max_frame of " +
        tp::format_bytes(options.max_frame) + "; pass less (or a path to a file), or raise max_frame"));
  }

  // The task table the first ready worker sent, once there is one: names
  // are checked before anything is sent.
  std::exception_ptr unknown_task(const std::string& task) const {
    const TaskTable* table = task_table.load(std::memory_order_acquire);
    if (table == nullptr || table->contains(task)) {
      return nullptr;
    }
    std::vector<std::string> names;
    names.reserve(table->size());
    for (const auto& [name, signature] : *table) {
      names.push_back(name);
    }
    return std::make_exception_ptr(UnknownTaskError("no task named '" + task + "' in the plugins of ProcessPool '" +
                                                    options.name + "'" + detail::did_you_mean(task, names)));
  }

  std::exception_ptr cannot_encode(const std::string& task, const std::exception& e) const {
    return std::make_exception_ptr(
        ArgumentError("the arguments of " + task + " cannot be encoded for a worker process: " + e.what()));
  }

  Future<Value> submit_call(Call call, std::optional<std::chrono::nanoseconds> timeout) {
    throw_if_unavailable();
    const std::uint64_t id = next_id.fetch_add(1, std::memory_order_relaxed);
    auto [future, promise] = detail::make_future_pair<Value>(id);
    if (auto error = unknown_task(call.task)) {
      promise.set_exception(std::move(error));
      return future;
    }
    auto job = std::make_unique<Job>();
    job->id = id;
    job->timeout = timeout;
    try {
      tp::Task message{id, call.task, std::move(call.args), std::move(call.kwargs)};
      const auto size = tp::write_frame(job->frame, message);
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

  Future<ChunkResult> submit_chunk(std::string task, std::vector<Args> items,
                                   std::optional<std::chrono::nanoseconds> timeout) {
    throw_if_unavailable();
    const std::uint64_t id = next_id.fetch_add(1, std::memory_order_relaxed);
    auto [future, promise] = detail::make_future_pair<ChunkResult>(id);
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
      const auto at = tp::begin_frame(job->frame, Message::chunk);
      tp::MsgpackWriter writer(job->frame);
      tp::encode(writer, tp::Chunk{id, task, items.size()});
      for (const auto& item : items) {
        tp::encode_chunk_item(writer, item);
      }
      const auto size = tp::end_frame(job->frame, at);
      if (size - 4 > options.max_frame) {
        promise.set_exception(
            too_large_argument(task + " (a map chunk of " + std::to_string(items.size()) + ")", size));
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

  void request_shutdown(const ProcessShutdownOptions& opts) {
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
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(wake_fd, &one, sizeof one);
    if (opts.wait) {
      std::lock_guard lock(join_mutex);
      if (reactor.joinable()) {
        reactor.join();
      }
    }
  }

  bool join(Timeout timeout) {
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
        shared->changed.wait_for(lock, std::chrono::nanoseconds(left));
      }
    }
    shared->waiters.fetch_sub(1, std::memory_order_seq_cst);
    return done;
  }

  void spawn_workers(std::size_t n) {
    throw_if_unavailable();
    {
      std::lock_guard lock(inbox_mutex);
      spawn_requests += n;
      control_pending.store(true, std::memory_order_seq_cst);
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto written = ::write(wake_fd, &one, sizeof one);
  }

  PoolStats stats_snapshot() const {
    PoolStats s;
    {
      std::lock_guard lock(state_mutex);
      s = stats;
    }
    s.live_workers = live.load(std::memory_order_relaxed);
    s.busy_workers = busy.load(std::memory_order_relaxed);
    s.idle_workers = idle.load(std::memory_order_relaxed);
    s.queued = static_cast<std::size_t>(std::max<std::int64_t>(0, shared->queued.load(std::memory_order_relaxed)));
    s.submitted = submitted.load(std::memory_order_relaxed);
    s.completed = completed.load(std::memory_order_relaxed);
    s.failed = failed.load(std::memory_order_relaxed);
    s.cancelled = shared->cancelled.load(std::memory_order_relaxed);
    return s;
  }

  // ---- reactor ------------------------------------------------------------------

  void run() {
    epoll_event events[64];
    for (;;) {
      take_inbox();
      if (stopping && slots.empty() && pending.empty()) {
        std::lock_guard lock(inbox_mutex);
        if (inbox.empty()) {
          reactor_exited = true;
          break;
        }
        continue;
      }
      dispatch();
      stop_idle_workers();
      flush_all();
      publish_gauges();
      const int timeout = next_timeout_ms();
      sleeping.store(true, std::memory_order_seq_cst);
      if (inbox_size.load(std::memory_order_seq_cst) > 0 || control_pending.load(std::memory_order_seq_cst)) {
        sleeping.store(false, std::memory_order_seq_cst);
        continue;
      }
      const int n = ::epoll_wait(epoll_fd, events, 64, timeout);
      sleeping.store(false, std::memory_order_seq_cst);
      for (int i = 0; i < n; ++i) {
        const std::uint64_t data = events[i].data.u64;
        if (data == 0) {
          std::uint64_t count = 0;
          [[maybe_unused]] const auto r = ::read(wake_fd, &count, sizeof count);
          continue;
        }
        auto it = slots.find(data >> 1);
        if (it == slots.end()) {
          continue;
        }
        Slot& slot = *it->second;
        if ((data & 1) != 0) {
          reap(slot);
        } else {
          if (events[i].events & EPOLLOUT) {
            flush(slot);
          }
          if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
            read_channel(slot);
          }
        }
      }
      check_timers();
    }
    publish_gauges();
    shared->notify();
  }

  bool reactor_exited = false;  // inbox_mutex

  void take_inbox() {
    std::vector<JobPtr> taken;
    std::optional<ProcessShutdownOptions> stop_now;
    std::size_t spawn_now = 0;
    {
      std::lock_guard lock(inbox_mutex);
      taken.swap(inbox);
      inbox_size.store(0, std::memory_order_seq_cst);
      if (control_pending.load(std::memory_order_relaxed)) {
        control_pending.store(false, std::memory_order_relaxed);
        if (shutdown_request && !(stopping && stop_options.kill_workers >= shutdown_request->kill_workers &&
                                  stop_options.cancel_pending >= shutdown_request->cancel_pending)) {
          stop_now = shutdown_request;
        }
        spawn_now = std::exchange(spawn_requests, 0);
      }
    }
    for (auto& job : taken) {
      if (broken_cause) {
        cancel_job(*job, broken_cause, true);
        continue;
      }
      pending.push_back(std::move(job));
    }
    peak_pending = std::max(peak_pending, pending.size());
    if (spawn_now > 0 && !broken_cause && !stopping) {
      for (std::size_t i = 0; i < spawn_now && live_count() < max_workers; ++i) {
        spawn();
      }
    }
    if (stop_now) {
      begin_stop(*stop_now);
    }
  }

  std::size_t live_count() const { return slots.size(); }

  // A job that never reached a worker (or whose pool broke) ends cancelled.
  void cancel_job(Job& job, const std::exception_ptr& cause, bool queued) {
    // Listed before the future completes: whoever it wakes may look at once.
    {
      std::lock_guard lock(state_mutex);
      cancelled_list.push_back(CancelledTask{job.id, job.task});
    }
    // Counted before the future completes; taken back if its owner was first.
    shared->cancelled.fetch_add(job.units(), std::memory_order_relaxed);
    if (job.cancel(cause)) {
      if (queued && !job.started) {
        shared->queued.fetch_sub(1, std::memory_order_seq_cst);
      }
      shared->ended();
      return;
    }
    shared->cancelled.fetch_sub(job.units(), std::memory_order_relaxed);
    // Its owner cancelled it first (the cancel hook did the counting): not ours to list.
    std::lock_guard lock(state_mutex);
    for (auto it = cancelled_list.rbegin(); it != cancelled_list.rend(); ++it) {
      if (it->id == job.id) {
        cancelled_list.erase(std::next(it).base());
        break;
      }
    }
  }

  void begin_stop(const ProcessShutdownOptions& opts) {
    stopping = true;
    stop_options = opts;
    grace = opts.grace.value_or(options.shutdown_grace);
    if (opts.cancel_pending || opts.kill_workers) {
      while (!pending.empty()) {
        JobPtr job = std::move(pending.front());
        pending.pop_front();
        cancel_job(*job, nullptr, true);
      }
      for (auto& [token, slot] : slots) {
        for (auto& job : slot->inflight) {
          job->request_cancel();
        }
        if (!opts.kill_workers) {
          revoke_cancelled(*slot);
        }
      }
    }
    if (opts.kill_workers) {
      for (auto& [token, slot] : slots) {
        slot->killed_for_shutdown = true;
        send_shutdown(*slot);
      }
    }
    shared->notify();
  }

  // ---- workers --------------------------------------------------------------------

  std::size_t free_id() {
    for (std::size_t i = 0;; ++i) {
      if (i >= used_ids.size()) {
        used_ids.resize(i + 1, false);
      }
      if (!used_ids[i]) {
        used_ids[i] = true;
        return i;
      }
    }
  }

  void spawn() {
    tp::SpawnedWorker spawned;
    try {
      spawned = tp::spawn_worker(worker_executable, options.env);
    } catch (...) {
      break_pool(nest(std::current_exception(),
                      BrokenPoolError("ProcessPool '" + options.name + "' cannot start worker processes")));
      return;
    }
    auto slot = std::make_unique<Slot>();
    slot->token = next_token++;
    slot->id = free_id();
    slot->pid = spawned.pid;
    slot->pidfd = spawned.pidfd;
    slot->fd = spawned.channel;
    slot->page = static_cast<tp::WorkerPage*>(spawned.page);
    slot->spawned_ns = now_ns();
    slot->in = tp::FrameBuffer(options.max_frame + 16);
    const int buffer = 1 << 20;
    ::setsockopt(slot->fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    ::setsockopt(slot->fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = slot->token << 1;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, slot->fd, &ev);
    ev.events = EPOLLIN;
    ev.data.u64 = (slot->token << 1) | 1;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, slot->pidfd, &ev);

    std::uint64_t max_tasks = 0;
    if (options.max_tasks_per_worker) {
      max_tasks = *options.max_tasks_per_worker;
      if (options.recycle_jitter > 0) {
        max_tasks += std::uniform_int_distribution<std::uint64_t>(0, options.recycle_jitter)(rng);
      }
    }
    tp::Hello hello{slot->id,
                    options.name,
                    {},
                    options.initializer,
                    options.finalizer,
                    max_tasks,
                    options.max_memory_per_worker.value_or(0),
                    options.max_frame};
    for (const auto& p : plugins) {
      hello.plugins.push_back(p.string());
    }
    tp::write_frame(slot->out, hello);
    {
      std::lock_guard lock(state_mutex);
      ++stats.spawned;
      pids.push_back(spawned.pid);
    }
    slots.emplace(slot->token, std::move(slot));
  }

  std::size_t depth(const Slot& slot) const {
    if (slot.ewma_ns <= 0) {
      return 8;
    }
    // About 4 ms of work queued per worker, never fewer than 4 frames.
    const double frames = 4'000'000.0 / slot.ewma_ns;
    return static_cast<std::size_t>(std::clamp(frames, 4.0, 1024.0));
  }

  void dispatch() {
    if (broken_cause) {
      return;
    }
    std::size_t starting = 0;
    for (auto& [token, slot] : slots) {
      starting += slot->phase == Phase::starting && slot->inflight.empty() ? 1 : 0;
    }
    while (!pending.empty()) {
      // An idle ready worker, else a starting one with nothing queued: its
      // first frame waits in the channel behind hello (it runs after ready).
      Slot* target = nullptr;
      for (auto& [token, slot] : slots) {
        if (slot->phase == Phase::ready && !slot->retiring && slot->inflight.empty()) {
          target = slot.get();
          break;
        }
      }
      if (target == nullptr) {
        for (auto& [token, slot] : slots) {
          if (slot->phase == Phase::starting && slot->inflight.empty()) {
            target = slot.get();
            --starting;
            break;
          }
        }
      }
      if (target == nullptr && live_count() >= max_workers && !at_max) {
        at_max = true;
        std::lock_guard lock(state_mutex);
        ++stats.times_hit_max_workers;
      }
      if (target == nullptr && live_count() < max_workers && starting < pending.size()) {
        spawn();
        if (broken_cause) {
          return;
        }
        ++starting;
        continue;
      }
      if (target == nullptr) {
        if (pending.size() <= starting) {
          break;  // what is left waits for the workers that are starting
        }
        std::size_t best = SIZE_MAX;
        for (auto& [token, slot] : slots) {
          if (slot->phase == Phase::ready && !slot->retiring && slot->inflight.size() < depth(*slot) &&
              slot->inflight.size() < best) {
            best = slot->inflight.size();
            target = slot.get();
          }
        }
      }
      if (target == nullptr) {
        break;
      }
      if (target->inflight.empty()) {
        at_max = false;
      }
      JobPtr job = std::move(pending.front());
      pending.pop_front();
      if (!job->started) {
        if (!job->try_start(target->id)) {
          continue;  // cancelled by its owner while queued; the hook counted it
        }
        job->started = true;
        shared->queued.fetch_sub(1, std::memory_order_seq_cst);
      }
      if (target->inflight.empty()) {
        target->current_started_ns = now_ns();
      }
      target->out.insert(target->out.end(), job->frame.begin(), job->frame.end());
      target->inflight.push_back(std::move(job));
    }
    shared->notify();
  }

  void send_shutdown(Slot& slot) {
    if (slot.phase == Phase::stopping) {
      return;
    }
    slot.phase = Phase::stopping;
    slot.term_at = now_ns() + grace.count();
    if (slot.channel_open) {
      tp::write_frame(slot.out, tp::Shutdown{});
    }
  }

  // Idle workers leave: on shutdown once the queue is empty, past idle_timeout above min_workers.
  void stop_idle_workers() {
    if (broken_cause) {
      return;
    }
    const auto now = now_ns();
    std::size_t staying = 0;
    for (auto& [token, slot] : slots) {
      staying += slot->phase != Phase::stopping ? 1 : 0;
    }
    for (auto& [token, slot] : slots) {
      if (slot->phase != Phase::ready || !slot->inflight.empty()) {
        continue;
      }
      if (stopping && pending.empty()) {
        send_shutdown(*slot);
        std::lock_guard lock(state_mutex);
        ++stats.retired.shutdown;
      } else if (!stopping && options.idle_timeout && staying > options.min_workers && pending.empty() &&
                 now - slot->idle_since_ns >= options.idle_timeout->count()) {
        send_shutdown(*slot);
        --staying;
        std::lock_guard lock(state_mutex);
        ++stats.retired.idle_timeout;
      }
    }
  }

  void set_write_interest(Slot& slot, bool on) {
    if (slot.want_write == on || !slot.channel_open) {
      return;
    }
    slot.want_write = on;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0u);
    ev.data.u64 = slot.token << 1;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, slot.fd, &ev);
  }

  void flush(Slot& slot) {
    if (!slot.channel_open) {
      slot.out.clear();
      slot.out_pos = 0;
      return;
    }
    while (slot.out_pos < slot.out.size()) {
      const ssize_t n =
          ::send(slot.fd, slot.out.data() + slot.out_pos, slot.out.size() - slot.out_pos, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        slot.out_pos += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        set_write_interest(slot, true);
        return;
      }
      // EPIPE / ECONNRESET: the worker is gone; its pidfd tells the rest.
      close_channel(slot);
      return;
    }
    slot.out.clear();
    slot.out_pos = 0;
    set_write_interest(slot, false);
    if (slot.revoke_unflushed) {
      slot.revoke_unflushed = false;
      slot.page->revoke_epoch.fetch_add(1, std::memory_order_release);  // the revoke is wholly in the channel
    }
  }

  void flush_all() {
    for (auto& [token, slot] : slots) {
      if (slot->out.size() > slot->out_pos) {
        flush(*slot);
      }
    }
  }

  void close_channel(Slot& slot) {
    if (!slot.channel_open) {
      return;
    }
    slot.channel_open = false;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, slot.fd, nullptr);
    slot.out.clear();
    slot.out_pos = 0;
  }

  void read_channel(Slot& slot) {
    while (slot.channel_open) {
      auto space = slot.in.prepare();
      const ssize_t n = ::recv(slot.fd, space.data(), space.size(), MSG_DONTWAIT);
      if (n > 0) {
        slot.in.commit(static_cast<std::size_t>(n));
        try {
          tp::FrameView frame{};
          while (slot.channel_open && slot.in.next(frame)) {
            handle_frame(slot, frame);
          }
        } catch (const std::exception& e) {
          protocol_error(slot, e.what());
        }
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
      }
      close_channel(slot);  // EOF or error: the process is ending; the pidfd follows
    }
  }

  // A malformed or out-of-order frame: the worker cannot be trusted; kill it
  // and treat it as a crash with this reason.
  void protocol_error(Slot& slot, const std::string& what) {
    slot.protocol_error = what;
    ::kill(slot.pid, SIGKILL);
    close_channel(slot);
  }

  Job* head(Slot& slot, std::uint64_t id) {
    if (slot.inflight.empty() || slot.inflight.front()->id != id) {
      throw tp::FrameError("worker " + std::to_string(slot.id) + " answered for task " + std::to_string(id) +
                           ", which is not the one it was running");
    }
    return slot.inflight.front().get();
  }

  void pop_head(Slot& slot, std::int64_t now) {
    const auto interval = now - std::max(slot.last_result_ns, slot.current_started_ns);
    slot.ewma_ns = slot.ewma_ns <= 0 ? static_cast<double>(interval) : 0.9 * slot.ewma_ns + 0.1 * interval;
    slot.last_result_ns = now;
    slot.inflight.pop_front();
    slot.current_started_ns = now;
    if (slot.inflight.empty()) {
      slot.idle_since_ns = now;
    }
    shared->ended();
  }

  // The item counters for a chunk that ends now: its reported items by
  // outcome, plus `lost` items that failed with their worker.
  void count_items(const Job& job, std::size_t lost) {
    completed.fetch_add(job.ok_items, std::memory_order_relaxed);
    failed.fetch_add(job.failed_items + lost, std::memory_order_relaxed);
    shared->cancelled.fetch_add(job.cancelled_items, std::memory_order_relaxed);
  }

  void read_item(tp::MsgpackReader& reader, Job& job, std::size_t at) {
    switch (tp::decode_item(reader, job.outcomes[at].value(), record)) {
      case tp::ItemStatus::ok:
        ++job.ok_items;
        return;
      case tp::ItemStatus::error:
        job.outcomes[at] = Outcome<Value>(tp::exception_from_record(record));
        ++job.failed_items;
        return;
      case tp::ItemStatus::cancelled:
        ++job.cancelled_items;
        job.outcomes[at] = Outcome<Value>(std::make_exception_ptr(
            CancelledError("map item " + std::to_string(at) + " of '" + job.task + "' cancelled")));
        return;
    }
  }

  void handle_frame(Slot& slot, const tp::FrameView& frame) {
    const auto now = now_ns();
    switch (frame.type) {
      case Message::ready:
        return on_ready(slot, tp::read_frame<tp::Ready>(frame), now);
      case Message::init_failed:
        return on_init_failed(slot, tp::read_frame<tp::InitFailed>(frame));
      case Message::result: {
        auto result = tp::read_frame<tp::Result>(frame);
        slot.last_rss = result.rss;
        Job* job = head(slot, result.id);
        completed.fetch_add(1, std::memory_order_relaxed);  // a started future ends only here
        job->call.set_value(std::move(result.value));
        pop_head(slot, now);
        return;
      }
      case Message::error: {
        const auto failure = tp::read_frame<tp::Failure>(frame);
        slot.last_rss = failure.rss;
        Job* job = head(slot, failure.id);
        auto error = tp::exception_from_record(failure.error);
        failed.fetch_add(job->units(), std::memory_order_relaxed);  // a chunk that could not run fails every item
        job->fail(std::move(error));
        pop_head(slot, now);
        return;
      }
      case Message::chunk_part:
        return on_chunk_part(slot, frame, now);
      case Message::heartbeat:
        slot.last_rss = tp::read_frame<tp::Heartbeat>(frame).rss;  // the timers read the shared page
        return;
      case Message::retiring:
        return on_retiring(slot, tp::read_frame<tp::Retiring>(frame));
      case Message::bye:
        return on_bye(slot, tp::read_frame<tp::Bye>(frame));
      case Message::revoked:
        return on_revoked(slot, tp::read_frame<tp::Revoked>(frame).id);
      default:
        throw tp::FrameError("unexpected message type " + std::to_string(static_cast<int>(frame.type)) +
                             " from a worker");
    }
  }

  void on_ready(Slot& slot, tp::Ready&& ready, std::int64_t now) {
    slot.last_rss = ready.rss;
    slot.phase = Phase::ready;
    slot.idle_since_ns = now;
    if (task_table.load(std::memory_order_acquire) == nullptr) {
      // Every worker loads the same plugins: the first table is the pool's.
      auto table = std::make_unique<TaskTable>();
      for (auto& signature : ready.tasks) {
        std::string name = signature.qualified_name;
        table->emplace(std::move(name), std::move(signature));
      }
      task_table_owner = std::move(table);
      task_table.store(task_table_owner.get(), std::memory_order_release);
    }
  }

  void on_init_failed(Slot& slot, const tp::InitFailed& message) {
    const auto remote = tp::exception_from_record(message.error);
    slot.expected_exit = true;
    {
      std::lock_guard lock(state_mutex);
      ++stats.retired.crash;
    }
    break_pool(
        nest(remote, InitializerError((options.initializer ? "the initializer " + options.initializer->task
                                                           : std::string("loading the plugins")) +
                                      " failed in worker " + std::to_string(slot.id) + " (pid " +
                                      std::to_string(slot.pid) + "): " + what_of(remote) + "; the pool is broken")));
  }

  void on_chunk_part(Slot& slot, const tp::FrameView& frame, std::int64_t now) {
    tp::MsgpackReader reader(frame.body, frame.end);
    tp::ChunkPart part;
    tp::decode(reader, part);
    Job* job = head(slot, part.id);
    if (part.first != job->reported || part.count > job->items - part.first) {  // no `first + count`: it can wrap
      throw tp::FrameError("a chunk part out of order");
    }
    if (job->outcomes.empty()) {
      job->outcomes.resize(job->items);
    }
    for (std::uint64_t i = 0; i < part.count; ++i) {
      read_item(reader, *job, part.first + i);
    }
    job->reported = part.first + part.count;
    tp::ChunkPartTail tail;
    tp::decode(reader, tail);
    if (!reader.at_end()) {
      throw tp::FrameError("trailing bytes after a chunk part");
    }
    slot.last_rss = tail.rss;
    if (tail.last) {
      if (job->reported != job->items) {
        throw tp::FrameError("the last chunk part left items unreported");
      }
      count_items(*job, 0);
      job->chunk_promise.set_value(std::move(job->outcomes));
      pop_head(slot, now);
    }
  }

  void on_retiring(Slot& slot, const tp::Retiring& message) {
    slot.last_rss = message.rss;
    slot.retiring = true;
    requeue_unstarted(slot, 0);
    send_shutdown(slot);
    std::lock_guard lock(state_mutex);
    ++(message.reason == tp::RetireReason::max_memory ? stats.retired.memory : stats.retired.max_tasks);
  }

  void on_bye(Slot& slot, const tp::Bye& bye) {
    slot.expected_exit = true;
    if (bye.finalizer_error) {
      const auto remote = tp::exception_from_record(*bye.finalizer_error);
      break_pool(nest(
          remote, FinalizerError(
                      (options.finalizer ? "the finalizer " + options.finalizer->task : std::string("the finalizer")) +
                      " failed in worker " + std::to_string(slot.id) + " (pid " + std::to_string(slot.pid) +
                      "): " + what_of(remote) + "; the pool is broken")));
    }
  }

  // A frame the worker had not started when our revoke reached it.
  void on_revoked(Slot& slot, std::uint64_t id) {
    head(slot, id);  // answered in the frame's place: it must be the head
    JobPtr job = std::move(slot.inflight.front());
    slot.inflight.pop_front();
    if (slot.inflight.empty()) {
      slot.idle_since_ns = now_ns();
    }
    cancel_job(*job, nullptr, false);
  }

  // Jobs sent to `slot` from position `from` on go back to the front of the queue.
  void requeue_unstarted(Slot& slot, std::size_t from) {
    while (slot.inflight.size() > from) {
      pending.push_front(std::move(slot.inflight.back()));
      slot.inflight.pop_back();
    }
  }

  WorkerExit collect_exit(Slot& slot) {
    WorkerExit exit;
    exit.worker_id = slot.id;
    exit.pid = slot.pid;
    exit.last_rss = slot.last_rss;
    exit.starting = slot.phase == Phase::starting;
    siginfo_t info{};
    int r = ::waitid(P_PID, static_cast<id_t>(slot.pid), &info, WEXITED | WNOHANG);
    if (r == 0 && info.si_pid == 0) {
      r = ::waitid(P_PID, static_cast<id_t>(slot.pid), &info, WEXITED);
    }
    if (r == 0) {
      if (info.si_code == CLD_EXITED) {
        exit.exit_status = info.si_status;
      } else {
        exit.signal = info.si_status;
      }
    }
    // Only the pool's own SIGKILL is its doing: a worker that sent a bad
    // frame and then crashed on its own keeps its own cause.
    if (!slot.protocol_error.empty() && exit.signal == SIGKILL) {
      exit.killed_for = "it broke the frame protocol (" + slot.protocol_error + ")";
    }
    return exit;
  }

  std::string cause_name(const WorkerExit& exit) const {
    if (exit.signal != 0) {
      return signal_name(exit.signal);
    }
    if (exit.exit_status) {
      return "exit " + std::to_string(*exit.exit_status);
    }
    return "unknown";
  }

  void reap(Slot& slot) {
    read_channel(slot);  // results it sent before it died count
    WorkerExit exit = collect_exit(slot);
    const auto now = now_ns();
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, slot.pidfd, nullptr);
    close_channel(slot);
    ::close(slot.pidfd);
    ::close(slot.fd);
    // What it was running, from the shared page: results of frames before it
    // that were still in its send batch died with it, so those frames run again.
    const std::uint64_t running_id = slot.page->running_id.load(std::memory_order_acquire);
    const std::uint64_t running_item = slot.page->item.load(std::memory_order_relaxed);
    if (const auto page_rss = slot.page->rss.load(std::memory_order_relaxed); page_rss != 0) {
      exit.last_rss = page_rss;
    }
    ::munmap(slot.page, tp::worker_page_size);
    slot.page = nullptr;

    // Counters first: whoever a failed future wakes may read them at once.
    const bool is_crash =
        !slot.timed_out && (slot.start_timed_out || (!slot.killed_for_shutdown && !slot.expected_exit));
    {
      std::lock_guard lock(state_mutex);
      if (is_crash) {
        ++stats.retired.crash;
        ++stats.crashes_by_cause[slot.start_timed_out       ? "startup_timeout"
                                 : !exit.killed_for.empty() ? "protocol error"
                                                            : cause_name(exit)];
      }
      pids.erase(std::remove(pids.begin(), pids.end(), slot.pid), pids.end());
    }

    std::exception_ptr crash;
    if (slot.timed_out) {
      if (bring_to_front(slot, slot.timed_out_id)) {
        Job& job = *slot.inflight.front();
        const std::optional<std::size_t> item =
            job.chunk ? std::optional<std::size_t>(static_cast<std::size_t>(slot.timed_out_item)) : std::nullopt;
        auto timeout_error =
            std::make_exception_ptr(TaskTimeoutError(job.task, job.id, slot.timed_out_after, slot.id, slot.pid, item));
        fail_head(slot, timeout_error, exit, slot.timed_out_item);
      }
      requeue_unstarted(slot, 0);
    } else if (slot.start_timed_out) {
      crash = std::make_exception_ptr(Error("worker " + std::to_string(slot.id) + " (pid " + std::to_string(slot.pid) +
                                            ") did not report ready within the startup_timeout of " +
                                            seconds_text(options.startup_timeout) +
                                            " (slow plugin loading or initializer?); it was killed"));
      requeue_unstarted(slot, 0);
    } else if (slot.killed_for_shutdown || (slot.expected_exit && stopping && stop_options.kill_workers)) {
      for (auto& job : slot.inflight) {
        fail_job_crashed(*job, exit);
      }
      slot.inflight.clear();
    } else if (slot.expected_exit) {
      requeue_unstarted(slot, 0);
    } else {
      // A crash: the task it was running fails, what it had not started runs elsewhere.
      std::string task;
      std::uint64_t key = 0;
      if (running_id != 0 && bring_to_front(slot, running_id)) {
        task = slot.inflight.front()->task;
        key = slot.inflight.front()->id;
        fail_head(slot, nullptr, exit, running_item);
      }
      requeue_unstarted(slot, 0);
      crash = exit.killed_for.empty() ? std::make_exception_ptr(WorkerCrashedError(exit, task, key))
                                      : std::make_exception_ptr(Error(
                                            "worker " + std::to_string(slot.id) + " (pid " + std::to_string(slot.pid) +
                                            ") broke the frame protocol (" + slot.protocol_error + "); it was killed"));
    }
    requeue_unstarted(slot, 0);  // whatever is still listed never started there
    if (slot.id < used_ids.size()) {
      used_ids[slot.id] = false;
    }
    slots.erase(slot.token);  // `slot` is gone from here on

    if (crash && !broken_cause && !(stopping && stop_options.kill_workers)) {
      crashes.emplace_back(now, crash);
      while (!crashes.empty() && now - crashes.front().first > options.crash_storm.within.count()) {
        crashes.pop_front();
      }
      if (options.on_worker_crash == OnWorkerCrash::break_pool) {
        break_pool(nest(crash, BrokenPoolError("ProcessPool '" + options.name + "' is broken: " + what_of(crash) +
                                               " (on_worker_crash = break_pool)")));
      } else if (options.crash_storm.max != 0 && crashes.size() >= options.crash_storm.max) {
        std::string list;
        for (const auto& [when, error] : crashes) {
          list += "\n  " + what_of(error);
        }
        break_pool(nest(crash, BrokenPoolError("ProcessPool '" + options.name + "' is broken by a crash storm: " +
                                               std::to_string(crashes.size()) + " worker deaths within " +
                                               seconds_text(options.crash_storm.within) + ":" + list)));
      }
    }
  }

  void fail_job_crashed(Job& job, const WorkerExit& exit) {
    if (job.chunk) {
      count_items(job, job.items - job.reported);
      job.finish_chunk_with(
          [&](std::size_t i) { return std::make_exception_ptr(WorkerCrashedError(exit, job.task, job.id, i)); });
    } else {
      failed.fetch_add(1, std::memory_order_relaxed);
      job.fail(std::make_exception_ptr(WorkerCrashedError(exit, job.task, job.id)));
    }
    shared->ended();
  }

  // Moves the frames sent before `id` back to the queue (they ended, but their
  // results died with the worker) and leaves `id` at the front. False when
  // `id` is not in flight on the slot (its outcome already arrived).
  bool bring_to_front(Slot& slot, std::uint64_t id) {
    std::size_t at = 0;
    while (at < slot.inflight.size() && slot.inflight[at]->id != id) {
      ++at;
    }
    if (at == slot.inflight.size()) {
      return false;
    }
    for (std::size_t i = at; i-- > 0;) {
      pending.push_front(std::move(slot.inflight[i]));
    }
    slot.inflight.erase(slot.inflight.begin(), slot.inflight.begin() + static_cast<std::ptrdiff_t>(at));
    return true;
  }

  // The head of the slot's queue: it (or, for a chunk, its unreported items)
  // fail; `first_error` (if set) goes to the item that was running.
  void fail_head(Slot& slot, const std::exception_ptr& first_error, const WorkerExit& exit,
                 std::uint64_t running_item) {
    JobPtr job = std::move(slot.inflight.front());
    slot.inflight.pop_front();
    if (job->chunk) {
      const std::size_t running = std::max<std::size_t>(job->reported, static_cast<std::size_t>(running_item));
      count_items(*job, job->items - job->reported);
      job->finish_chunk_with([&](std::size_t i) {
        if (first_error && i == running) {
          return first_error;
        }
        return std::make_exception_ptr(WorkerCrashedError(exit, job->task, job->id, i));
      });
    } else {
      failed.fetch_add(1, std::memory_order_relaxed);
      job->fail(first_error ? first_error : std::make_exception_ptr(WorkerCrashedError(exit, job->task, job->id)));
    }
    shared->ended();
  }

  void break_pool(std::exception_ptr error) {
    if (broken_cause) {
      return;
    }
    broken_cause = error;
    {
      std::lock_guard lock(state_mutex);
      broken = error;
    }
    accepting.store(false, std::memory_order_release);
    take_inbox();
    while (!pending.empty()) {
      JobPtr job = std::move(pending.front());
      pending.pop_front();
      cancel_job(*job, error, true);
    }
    for (auto& [token, slot] : slots) {
      for (auto& job : slot->inflight) {
        cancel_job(*job, error, false);
      }
      slot->inflight.clear();
      slot->expected_exit = true;
      ::kill(slot->pid, SIGKILL);
    }
    shared->notify();
  }

  // Frames sent but not started whose futures were cancelled (or whose pool
  // shuts down with cancel_pending): the worker answers `revoked` for them.
  void revoke_cancelled(Slot& slot) {
    if (slot.inflight.empty() || !slot.channel_open || slot.phase == Phase::stopping) {
      return;
    }
    const std::uint64_t running = slot.page->running_id.load(std::memory_order_acquire);
    tp::Revoke revoke;
    for (auto& job : slot.inflight) {
      if (job->id != running && !job->revoke_sent && job->cancel_requested()) {
        job->revoke_sent = true;
        revoke.ids.push_back(job->id);
      }
    }
    if (!revoke.ids.empty()) {
      tp::write_frame(slot.out, revoke);
      slot.revoke_unflushed = true;
    }
  }

  // A running frame whose future was cancelled (or whose pool shuts down
  // with cancel_pending): tell the worker through the shared page.
  void forward_cancel(Slot& slot) {
    const std::uint64_t running = slot.page->running_id.load(std::memory_order_acquire);
    if (running == 0 || slot.page->cancel_id.load(std::memory_order_relaxed) == running) {
      return;
    }
    for (const auto& job : slot.inflight) {
      if (job->id == running) {
        if (job->cancel_requested()) {
          slot.page->cancel_id.store(running, std::memory_order_release);
        }
        return;
      }
    }
  }

  // The timeout of frame `id` in flight on `slot`: its own, else task_timeout.
  std::optional<std::chrono::nanoseconds> timeout_of(const Slot& slot, std::uint64_t id) const {
    for (const auto& job : slot.inflight) {  // the running frame is nearly always the head
      if (job->id == id) {
        return job->timeout ? job->timeout : options.task_timeout;
      }
    }
    return options.task_timeout;
  }

  // When the running item of a busy slot times out; between frames (not
  // running yet), look again soon.
  std::int64_t next_task_deadline(const Slot& slot) const {
    const std::uint64_t running = slot.page->running_id.load(std::memory_order_acquire);
    const auto timeout = timeout_of(slot, running != 0 ? running : slot.inflight.front()->id);
    if (!timeout) {
      return INT64_MAX;
    }
    return running != 0 ? slot.page->item_started_ns.load(std::memory_order_relaxed) + timeout->count()
                        : now_ns() + std::min<std::int64_t>(timeout->count(), 50'000'000);
  }

  int next_timeout_ms() const {
    std::int64_t next = INT64_MAX;
    for (const auto& [token, slot] : slots) {
      if (!slot->inflight.empty()) {
        next = std::min(next, now_ns() + 100'000'000);  // look for cancelled running frames
      }
      if (slot->phase == Phase::starting) {
        next = std::min(next, slot->spawned_ns + options.startup_timeout.count());
      }
      if (!slot->inflight.empty() && !slot->timed_out) {
        next = std::min(next, next_task_deadline(*slot));
      }
      if (options.idle_timeout && slot->phase == Phase::ready && slot->inflight.empty()) {
        next = std::min(next, slot->idle_since_ns + options.idle_timeout->count());
      }
      if (slot->term_at != 0) {
        next = std::min(next, slot->term_at);
      }
      if (slot->kill_at != 0) {
        next = std::min(next, slot->kill_at);
      }
    }
    if (next == INT64_MAX) {
      return -1;
    }
    const auto left = next - now_ns();
    return left <= 0 ? 0 : static_cast<int>(std::min<std::int64_t>((left + 999'999) / 1'000'000, 60'000));
  }

  void check_timers() {
    const auto now = now_ns();
    const bool scan_for_revokes = now >= next_revoke_scan_ns;
    if (scan_for_revokes) {
      next_revoke_scan_ns = now + 20'000'000;
    }
    for (auto& [token, slot] : slots) {
      forward_cancel(*slot);
      if (scan_for_revokes) {
        revoke_cancelled(*slot);
      }
      if (slot->phase == Phase::starting && !slot->start_timed_out &&
          now - slot->spawned_ns >= options.startup_timeout.count()) {
        slot->start_timed_out = true;
        ::kill(slot->pid, SIGKILL);
      }
      const std::uint64_t running_id = slot->page->running_id.load(std::memory_order_acquire);
      const auto timeout = running_id != 0 && !slot->timed_out ? timeout_of(*slot, running_id) : std::nullopt;
      if (timeout && now - slot->page->item_started_ns.load(std::memory_order_relaxed) >= timeout->count()) {
        slot->timed_out = true;
        slot->timed_out_after = *timeout;
        slot->timed_out_id = running_id;
        slot->timed_out_item = slot->page->item.load(std::memory_order_relaxed);
        slot->expected_exit = true;
        ::kill(slot->pid, SIGKILL);
        std::lock_guard lock(state_mutex);
        ++stats.crashes_by_cause["task_timeout"];
      }
      if (slot->term_at != 0 && now >= slot->term_at) {
        slot->term_at = 0;
        slot->kill_at = now + grace.count();
        slot->expected_exit = true;
        ::kill(slot->pid, SIGTERM);
      }
      if (slot->kill_at != 0 && now >= slot->kill_at) {
        slot->kill_at = 0;
        ::kill(slot->pid, SIGKILL);
      }
    }
  }

  void publish_gauges() {
    std::size_t busy_now = 0;
    std::size_t idle_now = 0;
    for (const auto& [token, slot] : slots) {
      if (slot->phase == Phase::ready) {
        (slot->inflight.empty() ? idle_now : busy_now) += 1;
      }
    }
    live.store(slots.size(), std::memory_order_relaxed);
    busy.store(busy_now, std::memory_order_relaxed);
    idle.store(idle_now, std::memory_order_relaxed);
    if (peak_pending > published_peak) {
      std::lock_guard lock(state_mutex);
      stats.peak_queue = std::max(stats.peak_queue, peak_pending);
      published_peak = peak_pending;
    }
  }

  ProcessPoolOptions options;
  std::vector<std::filesystem::path> plugins;
  std::shared_ptr<Shared> shared;
  std::size_t max_workers = 1;
  std::filesystem::path worker_executable;
  int epoll_fd = -1;
  int wake_fd = -1;

  // Submitters -> reactor.
  std::mutex inbox_mutex;
  std::vector<JobPtr> inbox;
  std::atomic<std::size_t> inbox_size{0};
  std::atomic<bool> control_pending{false};
  std::optional<ProcessShutdownOptions> shutdown_request;
  std::size_t spawn_requests = 0;
  std::atomic<bool> sleeping{false};
  std::atomic<bool> accepting{true};
  std::atomic<std::uint64_t> next_id{1};

  // What the API reads.
  mutable std::mutex state_mutex;
  bool shut_down = false;
  std::exception_ptr broken;
  std::vector<CancelledTask> cancelled_list;
  PoolStats stats;
  std::vector<std::int64_t> pids;
  std::atomic<std::size_t> live{0};
  std::atomic<std::size_t> busy{0};
  std::atomic<std::size_t> idle{0};
  std::atomic<std::uint64_t> submitted{0};
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> failed{0};
  // Published once by the reactor, read by submitters.
  std::atomic<const TaskTable*> task_table{nullptr};
  std::unique_ptr<const TaskTable> task_table_owner;

  // Reactor-only.
  std::deque<JobPtr> pending;
  Value record;  // scratch for a chunk item's error record
  std::int64_t next_revoke_scan_ns = 0;
  std::unordered_map<std::uint64_t, std::unique_ptr<Slot>> slots;
  std::uint64_t next_token = 1;
  std::vector<bool> used_ids;
  std::deque<std::pair<std::int64_t, std::exception_ptr>> crashes;
  std::exception_ptr broken_cause;
  bool stopping = false;
  ProcessShutdownOptions stop_options;
  std::chrono::nanoseconds grace{0};  // shutdown_grace until shutdown() names its own
  std::size_t peak_pending = 0;
  std::size_t published_peak = 0;
  bool at_max = false;  // the last time work arrived, every worker was busy at max_workers
  std::mt19937_64 rng;

  std::mutex join_mutex;
  std::thread reactor;
  std::thread::id reactor_id;
};

ProcessPool::ProcessPool(std::vector<std::filesystem::path> plugins, ProcessPoolOptions options)
    : core_(std::make_unique<Core>(std::move(plugins), std::move(options))) {}

ProcessPool::~ProcessPool() {
  if (std::this_thread::get_id() == core_->reactor_id) {
    std::fprintf(stderr,
                 "troupe: ProcessPool '%s' destroyed from its own reactor thread (a done callback held the last "
                 "reference); terminating\n",
                 core_->options.name.c_str());
    std::terminate();
  }
  core_->request_shutdown({.wait = true});
}

Future<Value> ProcessPool::submit_call(Call call) {
  return core_->submit_call(std::move(call), std::nullopt);
}

Future<std::vector<Outcome<Value>>> ProcessPool::submit_chunk(std::string task, std::vector<Args> items) {
  return core_->submit_chunk(std::move(task), std::move(items), std::nullopt);
}

Future<Value> ProcessPool::submit_call(Call call, std::chrono::nanoseconds timeout) {
  return core_->submit_call(std::move(call), timeout);
}

Future<std::vector<Outcome<Value>>> ProcessPool::submit_chunk(std::string task, std::vector<Args> items,
                                                              std::chrono::nanoseconds timeout) {
  return core_->submit_chunk(std::move(task), std::move(items), timeout);
}

void ProcessPool::shutdown(const ProcessShutdownOptions& options) {
  core_->request_shutdown(options);
}
void ProcessPool::shutdown_processes(const ProcessShutdownOptions& options) {
  core_->request_shutdown(options);
}

bool ProcessPool::join(Timeout timeout) {
  return core_->join(timeout);
}

void ProcessPool::check() const {
  core_->throw_if_unavailable();
}

void ProcessPool::test() {
  ProcessPoolOptions replica_options = core_->options;
  replica_options.max_workers = 1;
  replica_options.min_workers = 0;
  replica_options.name = core_->options.name + "-test";
  replica_options.worker_executable = core_->worker_executable;
  ProcessPool replica(core_->plugins, replica_options);
  // An empty chunk is a round trip through a started worker: plugins loaded, initializer run.
  replica.submit_chunk("", {}).get();
  replica.shutdown({.wait = true});
  std::lock_guard lock(replica.core_->state_mutex);
  if (replica.core_->broken) {
    std::rethrow_exception(replica.core_->broken);
  }
}

void ProcessPool::spawn_workers(std::size_t n) {
  core_->spawn_workers(n);
}

std::size_t ProcessPool::workers() const {
  return core_->live.load(std::memory_order_relaxed);
}
std::size_t ProcessPool::max_workers() const {
  return core_->max_workers;
}
std::size_t ProcessPool::busy_workers() const {
  return core_->busy.load(std::memory_order_relaxed);
}
std::size_t ProcessPool::free_workers() const {
  return core_->idle.load(std::memory_order_relaxed);
}
std::size_t ProcessPool::pending_tasks() const {
  return static_cast<std::size_t>(std::max<std::int64_t>(0, core_->shared->queued.load(std::memory_order_relaxed)));
}

std::vector<CancelledTask> ProcessPool::cancelled_tasks() const {
  std::lock_guard lock(core_->state_mutex);
  return core_->cancelled_list;
}

PoolStats ProcessPool::stats() const {
  return core_->stats_snapshot();
}

const ProcessPoolOptions& ProcessPool::options() const noexcept {
  return core_->options;
}
const std::vector<std::filesystem::path>& ProcessPool::plugins() const noexcept {
  return core_->plugins;
}

std::vector<std::int64_t> ProcessPool::worker_pids() const {
  std::lock_guard lock(core_->state_mutex);
  return core_->pids;
}

}  // namespace troupe
