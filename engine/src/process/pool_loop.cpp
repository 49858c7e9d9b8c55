// The reactor thread's loop: taking work and control requests from the
// inbox, dispatching, retiring idle workers, shutdown, a broken pool, and
// the timers (start-up, task timeouts, cancellation, revokes, escalation).
#include <signal.h>

#include <algorithm>

#include "process/pool_core.hpp"
#include "troupe/errors.hpp"

namespace troupe::detail::process {

void PoolCore::run() {
  for (;;) {
    take_inbox();
    if (stopping && supervisor_.live() == 0 && dispatcher_.empty()) {
      std::lock_guard lock(inbox_mutex);
      if (inbox.empty()) {
        reactor_exited = true;
        break;
      }
      continue;
    }
    if (!broken_cause) {
      dispatcher_.dispatch();
      stop_idle_workers();
    }
    supervisor_.flush_all();
    publish_gauges();
    const int timeout = next_timeout_ms();
    reactor_.about_to_sleep();
    if (inbox_size.load(std::memory_order_seq_cst) > 0 || control_pending.load(std::memory_order_seq_cst)) {
      reactor_.awake();
      continue;
    }
    for (const epoll_event& event : reactor_.wait(timeout)) {
      on_event(event.data.u64, event.events);
    }
    check_timers();
  }
  publish_gauges();
  shared->notify();
}

void PoolCore::take_inbox() {
  std::vector<JobPtr> taken;
  std::optional<ProcessShutdownOptions> stop_now;
  std::size_t spawn_now = 0;
  bool interrupt_now = false;
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
      interrupt_now = std::exchange(interrupt_request, false);
    }
  }
  for (auto& job : taken) {
    if (broken_cause) {
      cancel_job(*job, broken_cause, true);
      continue;
    }
    some_job_timed = some_job_timed || job->timeout.has_value();
    dispatcher_.push_back(std::move(job));
  }
  if (spawn_now > 0 && !broken_cause && !stopping) {
    for (std::size_t i = 0; i < spawn_now && supervisor_.live() < max_workers; ++i) {
      spawn_one();
    }
  }
  if (interrupt_now) {
    interrupt_workers();  // before the new jobs are dispatched: they are queued work, not running
  }
  if (stop_now) {
    begin_stop(*stop_now);
  }
}

// Only the workers in a frame now: the frames they were sent but had not
// begun go back to the queue when they are reaped (on_exit).
void PoolCore::interrupt_workers() {
  for (auto& [token, w] : supervisor_.workers()) {
    if (w->phase != Phase::starting && !w->inflight.empty() &&
        w->page->running_id.load(std::memory_order_acquire) != 0) {
      supervisor_.kill(*w, ExitReason::interrupted);
    }
  }
}

// A job that never reached a worker (or whose pool broke, or that a worker
// gave back revoked) ends cancelled.
void PoolCore::cancel_job(Job& job, const std::exception_ptr& cause, bool queued) {
  // Listed and counted before the future completes: whoever it wakes may look at once.
  {
    std::lock_guard lock(state_mutex);
    cancelled_list.push_back(CancelledTask{job.id, job.task});
  }
  shared->cancelled.fetch_add(job.units(), std::memory_order_relaxed);
  if (job.cancel(cause)) {
    if (queued && !job.started) {
      shared->queued.fetch_sub(1, std::memory_order_seq_cst);
    }
    shared->ended();
    return;
  }
  // Its owner cancelled it first (the cancel hook did the counting): not ours to list.
  shared->cancelled.fetch_sub(job.units(), std::memory_order_relaxed);
  std::lock_guard lock(state_mutex);
  for (auto it = cancelled_list.rbegin(); it != cancelled_list.rend(); ++it) {
    if (it->id == job.id) {
      cancelled_list.erase(std::next(it).base());
      break;
    }
  }
}

void PoolCore::begin_stop(const ProcessShutdownOptions& opts) {
  stopping = true;
  stop_options = opts;
  grace = opts.grace.value_or(options.shutdown_grace);
  if (opts.cancel_pending || opts.kill_workers) {
    while (!dispatcher_.empty()) {
      JobPtr job = dispatcher_.pop_front();
      cancel_job(*job, nullptr, true);
    }
    for (auto& [token, w] : supervisor_.workers()) {
      for (auto& job : w->inflight) {
        job->request_cancel();
      }
      if (!opts.kill_workers) {
        revoke_cancelled(*w);
      }
    }
  }
  if (opts.kill_workers) {
    const auto now = detail::now_ns();
    for (auto& [token, w] : supervisor_.workers()) {
      w->expect(ExitReason::killed_for_shutdown);
      supervisor_.retire(*w, grace, now);
    }
  }
  shared->notify();
}

bool PoolCore::spawn_one() {
  try {
    const WorkerProcess& w = supervisor_.spawn();
    std::lock_guard lock(state_mutex);
    ++stats.spawned;
    pids.push_back(w.pid);
    return true;
  } catch (...) {
    break_pool(nest(std::current_exception(),
                    BrokenPoolError("ProcessPool '" + options.name + "' cannot start worker processes")));
    return false;
  }
}

// Idle workers leave: on shutdown once the queue is empty, past idle_timeout above min_workers.
void PoolCore::stop_idle_workers() {
  const auto now = detail::now_ns();
  std::size_t staying = 0;
  for (auto& [token, w] : supervisor_.workers()) {
    staying += w->phase != Phase::stopping ? 1 : 0;
  }
  for (auto& [token, w] : supervisor_.workers()) {
    if (w->phase != Phase::ready || !w->inflight.empty()) {
      continue;
    }
    if (stopping && dispatcher_.empty()) {
      supervisor_.retire(*w, grace, now);
      std::lock_guard lock(state_mutex);
      ++stats.retired.shutdown;
    } else if (!stopping && options.idle_timeout && staying > options.min_workers && dispatcher_.empty() &&
               now - w->idle_since_ns >= options.idle_timeout->count()) {
      supervisor_.retire(*w, grace, now);
      --staying;
      std::lock_guard lock(state_mutex);
      ++stats.retired.idle_timeout;
    }
  }
}

void PoolCore::break_pool(std::exception_ptr error) {
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
  while (!dispatcher_.empty()) {
    JobPtr job = dispatcher_.pop_front();
    cancel_job(*job, error, true);
  }
  for (auto& [token, w] : supervisor_.workers()) {
    for (auto& job : w->inflight) {
      cancel_job(*job, error, false);
    }
    w->inflight.clear();
    supervisor_.kill(*w, ExitReason::left);
  }
  shared->notify();
}

// Frames sent but not started whose futures were cancelled (or whose pool
// shuts down with cancel_pending): the worker answers `revoked` for them.
void PoolCore::revoke_cancelled(WorkerProcess& w) {
  if (w.inflight.empty() || !w.channel_open || w.phase == Phase::stopping) {
    return;
  }
  const std::uint64_t running = w.page->running_id.load(std::memory_order_acquire);
  Revoke revoke;
  for (auto& job : w.inflight) {
    if (job->id != running && !job->revoke_sent && job->cancel_requested()) {
      job->revoke_sent = true;
      revoke.ids.push_back(job->id);
    }
  }
  if (!revoke.ids.empty()) {
    write_frame(w.out, revoke);
    w.revoke_unflushed = true;
  }
}

// A running frame whose future was cancelled (or whose pool shuts down
// with cancel_pending): tell the worker through the shared page.
void PoolCore::forward_cancel(WorkerProcess& w) {
  const std::uint64_t running = w.page->running_id.load(std::memory_order_acquire);
  if (running == 0 || w.page->cancel_id.load(std::memory_order_relaxed) == running) {
    return;
  }
  for (const auto& job : w.inflight) {
    if (job->id == running) {
      if (job->cancel_requested()) {
        w.page->cancel_id.store(running, std::memory_order_release);
      }
      return;
    }
  }
}

// The timeout of frame `id` in flight on `w`: its own, else task_timeout.
std::optional<std::chrono::nanoseconds> PoolCore::timeout_of(const WorkerProcess& w, std::uint64_t id) const {
  for (const auto& job : w.inflight) {  // the running frame is nearly always the head
    if (job->id == id) {
      return job->timeout ? job->timeout : options.task_timeout;
    }
  }
  return options.task_timeout;
}

// When the running item of a busy worker times out; between frames (not
// running yet), look again soon.
std::int64_t PoolCore::next_task_deadline(const WorkerProcess& w) const {
  if (!options.task_timeout && !some_job_timed) {
    return INT64_MAX;  // the common case: no timeouts, nothing to look up per loop
  }
  if (w.page->running_id.load(std::memory_order_acquire) != 0) {
    const std::int64_t deadline = w.page->item_deadline_ns.load(std::memory_order_relaxed);
    return deadline != 0 ? deadline : INT64_MAX;
  }
  return detail::now_ns() + 50'000'000;
}

int PoolCore::next_timeout_ms() const {
  const auto now = detail::now_ns();
  std::int64_t next = INT64_MAX;
  for (const auto& [token, w] : supervisor_.workers()) {
    if (!w->inflight.empty()) {
      next = std::min(next, now + 100'000'000);  // look for cancelled frames
      if (w->exit_reason < ExitReason::task_timeout) {
        next = std::min(next, next_task_deadline(*w));
      }
    }
    if (w->phase == Phase::starting) {
      next = std::min(next, w->spawned_ns + options.startup_timeout.count());
    }
    if (options.idle_timeout && w->phase == Phase::ready && w->inflight.empty()) {
      next = std::min(next, w->idle_since_ns + options.idle_timeout->count());
    }
    for (const std::int64_t at : {w->term_at, w->kill_at}) {
      if (at != 0) {
        next = std::min(next, at);
      }
    }
  }
  if (next == INT64_MAX) {
    return -1;
  }
  const auto left = next - detail::now_ns();
  return left <= 0 ? 0 : static_cast<int>(std::min<std::int64_t>((left + 999'999) / 1'000'000, 60'000));
}

void PoolCore::check_task_timeout(WorkerProcess& w, std::int64_t now) {
  if (!options.task_timeout && !some_job_timed) {
    return;
  }
  const std::uint64_t running_id = w.page->running_id.load(std::memory_order_acquire);
  if (running_id == 0 || w.exit_reason >= ExitReason::task_timeout) {
    return;
  }
  // The worker stamps each item's deadline from the timeout its frame carries.
  const std::int64_t deadline = w.page->item_deadline_ns.load(std::memory_order_relaxed);
  if (deadline == 0 || now < deadline) {
    return;
  }
  w.timed_out_after = timeout_of(w, running_id).value_or(std::chrono::nanoseconds(0));
  w.timed_out_id = running_id;
  w.timed_out_item = w.page->item.load(std::memory_order_relaxed);
  supervisor_.kill(w, ExitReason::task_timeout);
  std::lock_guard lock(state_mutex);
  ++stats.crashes_by_cause["task_timeout"];
}

void PoolCore::check_timers() {
  const auto now = detail::now_ns();
  const bool scan_for_revokes = now >= next_revoke_scan_ns;
  if (scan_for_revokes) {
    next_revoke_scan_ns = now + 20'000'000;
  }
  for (auto& [token, w] : supervisor_.workers()) {
    forward_cancel(*w);
    if (scan_for_revokes) {
      revoke_cancelled(*w);
    }
    if (w->phase == Phase::starting && w->exit_reason != ExitReason::startup_timeout &&
        now - w->spawned_ns >= options.startup_timeout.count()) {
      supervisor_.kill(*w, ExitReason::startup_timeout);
    }
    check_task_timeout(*w, now);
    supervisor_.escalate(*w, now, grace);
  }
}

void PoolCore::publish_gauges() {
  std::size_t busy_now = 0;
  std::size_t idle_now = 0;
  for (const auto& [token, w] : supervisor_.workers()) {
    if (w->phase == Phase::ready) {
      (w->inflight.empty() ? idle_now : busy_now) += 1;
    }
  }
  live.store(supervisor_.live(), std::memory_order_relaxed);
  busy.store(busy_now, std::memory_order_relaxed);
  idle.store(idle_now, std::memory_order_relaxed);
  if (dispatcher_.peak() > published_peak) {
    std::lock_guard lock(state_mutex);
    stats.peak_queue = std::max(stats.peak_queue, dispatcher_.peak());
    published_peak = dispatcher_.peak();
  }
}

}  // namespace troupe::detail::process
