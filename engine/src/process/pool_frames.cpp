// What the workers' frames mean to the pool, and what a worker's end does to
// the work it had: the task it ran fails (crash, timeout), and so does every
// task it ran whose result had not arrived; what it had not started runs
// elsewhere.
#include <signal.h>

#include <algorithm>

#include "process/error_record.hpp"
#include "process/pool_core.hpp"
#include "troupe/errors.hpp"

namespace troupe::detail::process {

namespace {

std::string cause_name(const WorkerExit& exit) {
  if (exit.signal != 0) {
    return signal_name(exit.signal);
  }
  if (exit.exit_status) {
    return "exit " + std::to_string(*exit.exit_status);
  }
  return "unknown";
}

}  // namespace

void PoolCore::on_event(std::uint64_t tag, std::uint32_t events) {
  WorkerProcess* w = supervisor_.find(tag >> 1);
  if (w == nullptr) {
    return;
  }
  const auto on_frame = [this](WorkerProcess& from, const FrameView& frame) {
    handle_frame(from, frame);
  };
  if ((tag & 1) != 0) {
    supervisor_.read_channel(*w, on_frame);  // results it sent before it died count
    on_exit(*w);
    return;
  }
  if (events & EPOLLOUT) {
    supervisor_.flush(*w);
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
    supervisor_.read_channel(*w, on_frame);
  }
}

Job* PoolCore::head(WorkerProcess& w, std::uint64_t id) {
  if (w.inflight.empty() || w.inflight.front()->id != id) {
    throw FrameError("worker " + std::to_string(w.id) + " answered for task " + std::to_string(id) +
                     ", which is not the one it was running");
  }
  return w.inflight.front().get();
}

void PoolCore::pop_head(WorkerProcess& w, std::int64_t now) {
  const auto interval = now - std::max(w.last_result_ns, w.current_started_ns);
  w.ewma_ns = w.ewma_ns <= 0 ? static_cast<double>(interval) : 0.9 * w.ewma_ns + 0.1 * interval;
  w.last_result_ns = now;
  w.inflight.pop_front();
  w.current_started_ns = now;
  if (w.inflight.empty()) {
    w.idle_since_ns = now;
  }
  shared->ended();
}

// The item counters for a chunk that ends now: its reported items by
// outcome, plus `lost` items that failed with their worker.
void PoolCore::count_items(const Job& job, std::size_t lost) {
  completed.fetch_add(job.ok_items, std::memory_order_relaxed);
  failed.fetch_add(job.failed_items + lost, std::memory_order_relaxed);
  shared->cancelled.fetch_add(job.cancelled_items, std::memory_order_relaxed);
}

void PoolCore::read_item(MsgpackReader& reader, Job& job, std::size_t at) {
  switch (decode_item(reader, job.outcomes[at].value(), record)) {
    case ItemStatus::ok:
      ++job.ok_items;
      return;
    case ItemStatus::error:
      job.outcomes[at] = Outcome<Value>(exception_from_record(record));
      ++job.failed_items;
      return;
    case ItemStatus::cancelled:
      ++job.cancelled_items;
      job.outcomes[at] = Outcome<Value>(std::make_exception_ptr(
          CancelledError("map item " + std::to_string(at) + " of '" + job.task + "' cancelled")));
      return;
  }
}

void PoolCore::handle_frame(WorkerProcess& w, const FrameView& frame) {
  const auto now = detail::now_ns();
  switch (frame.type) {
    case Message::ready:
      return on_ready(w, read_frame<Ready>(frame), now);
    case Message::init_failed:
      return on_init_failed(w, read_frame<InitFailed>(frame));
    case Message::result:
      return on_result(w, read_frame<Result>(frame), now);
    case Message::error:
      return on_failure(w, read_frame<Failure>(frame), now);
    case Message::chunk_part:
      return on_chunk_part(w, frame, now);
    case Message::heartbeat:
      w.last_rss = read_frame<Heartbeat>(frame).rss;  // the timers read the shared page
      return;
    case Message::retiring:
      return on_retiring(w, read_frame<Retiring>(frame));
    case Message::bye:
      return on_bye(w, read_frame<Bye>(frame));
    case Message::revoked:
      return on_revoked(w, read_frame<Revoked>(frame).id);
    default:
      throw FrameError("unexpected message type " + std::to_string(static_cast<int>(frame.type)) + " from a worker");
  }
}

void PoolCore::on_result(WorkerProcess& w, Result&& result, std::int64_t now) {
  w.last_rss = result.rss;
  Job* job = head(w, result.id);
  completed.fetch_add(1, std::memory_order_relaxed);  // a started future ends only here
  job->call.set_value(std::move(result.value));
  pop_head(w, now);
}

void PoolCore::on_failure(WorkerProcess& w, const Failure& failure, std::int64_t now) {
  w.last_rss = failure.rss;
  Job* job = head(w, failure.id);
  auto error = exception_from_record(failure.error);
  failed.fetch_add(job->units(), std::memory_order_relaxed);  // a chunk that could not run fails every item
  job->fail(std::move(error));
  pop_head(w, now);
}

void PoolCore::on_ready(WorkerProcess& w, Ready&& ready, std::int64_t now) {
  w.last_rss = ready.rss;
  if (w.phase == Phase::starting) {  // one told to stop while it started stays stopping (no revokes, no work)
    w.phase = Phase::ready;
  }
  startup_failures = 0;
  w.idle_since_ns = now;
  if (task_table.load(std::memory_order_acquire) == nullptr) {
    // Every worker loads the same plugins: the first table is the pool's.
    static std::atomic<std::uint64_t> serials{1};
    auto table = std::make_unique<TaskTable>();
    table->serial = serials.fetch_add(1, std::memory_order_relaxed);
    for (auto& signature : ready.tasks) {
      if (signature.kind != "task") {
        table->hooks.push_back(std::move(signature));
        continue;
      }
      std::string name = signature.qualified_name;
      table->tasks.emplace(std::move(name), std::move(signature));
    }
    task_table_owner = std::move(table);
    task_table.store(task_table_owner.get(), std::memory_order_release);
  }
}

void PoolCore::on_init_failed(WorkerProcess& w, const InitFailed& message) {
  const auto remote = exception_from_record(message.error);
  w.expect(ExitReason::left);
  {
    std::lock_guard lock(state_mutex);
    ++stats.retired.crash;
  }
  break_pool(nest(remote, InitializerError((options.initializer ? "the initializer " + options.initializer->task
                                                                : std::string("loading the plugins")) +
                                           " failed in worker " + std::to_string(w.id) + " (pid " +
                                           std::to_string(w.pid) + "): " + what_of(remote) + "; the pool is broken")));
}

void PoolCore::on_chunk_part(WorkerProcess& w, const FrameView& frame, std::int64_t now) {
  MsgpackReader reader(frame.body, frame.end);
  ChunkPart part;
  decode(reader, part);
  Job* job = head(w, part.id);
  if (part.first != job->reported || part.count > job->items - part.first) {  // no `first + count`: it can wrap
    throw FrameError("a chunk part out of order");
  }
  if (job->outcomes.empty()) {
    job->outcomes.resize(job->items);
  }
  for (std::uint64_t i = 0; i < part.count; ++i) {
    read_item(reader, *job, part.first + i);
  }
  job->reported = part.first + part.count;
  ChunkPartTail tail;
  decode(reader, tail);
  if (!reader.at_end()) {
    throw FrameError("trailing bytes after a chunk part");
  }
  w.last_rss = tail.rss;
  if (tail.last) {
    if (job->reported != job->items) {
      throw FrameError("the last chunk part left items unreported");
    }
    count_items(*job, 0);
    job->chunk_promise.set_value(std::move(job->outcomes));
    pop_head(w, now);
  }
}

void PoolCore::on_retiring(WorkerProcess& w, const Retiring& message) {
  w.last_rss = message.rss;
  w.retiring = true;
  dispatcher_.requeue_unstarted(w);
  supervisor_.retire(w, grace, detail::now_ns());
  std::lock_guard lock(state_mutex);
  ++(message.reason == RetireReason::max_memory ? stats.retired.memory : stats.retired.max_tasks);
}

void PoolCore::on_bye(WorkerProcess& w, const Bye& bye) {
  w.expect(ExitReason::left);
  if (bye.finalizer_error) {
    const auto remote = exception_from_record(*bye.finalizer_error);
    break_pool(nest(remote, FinalizerError((options.finalizer ? "the finalizer " + options.finalizer->task
                                                              : std::string("the finalizer")) +
                                           " failed in worker " + std::to_string(w.id) + " (pid " +
                                           std::to_string(w.pid) + "): " + what_of(remote) + "; the pool is broken")));
  }
}

// A frame the worker had not started when our revoke reached it.
void PoolCore::on_revoked(WorkerProcess& w, std::uint64_t id) {
  head(w, id);  // answered in the frame's place: it must be the head
  JobPtr job = std::move(w.inflight.front());
  w.inflight.pop_front();
  if (w.inflight.empty()) {
    w.idle_since_ns = detail::now_ns();
  }
  cancel_job(*job, nullptr, false);
}

void PoolCore::fail_job_crashed(Job& job, const WorkerExit& exit, bool result_lost) {
  if (job.chunk) {
    count_items(job, job.items - job.reported);
    job.finish_chunk_with([&](std::size_t i) {
      return std::make_exception_ptr(WorkerCrashedError(exit, job.task, job.id, i, result_lost));
    });
  } else {
    failed.fetch_add(1, std::memory_order_relaxed);
    job.fail(std::make_exception_ptr(WorkerCrashedError(exit, job.task, job.id, std::nullopt, result_lost)));
  }
  shared->ended();
}

namespace {

bool in_flight(const WorkerProcess& w, std::uint64_t id) {
  return std::any_of(w.inflight.begin(), w.inflight.end(), [id](const JobPtr& job) { return job->id == id; });
}

}  // namespace

// At most once: frames sent before `id` ended on the worker (it runs them in
// order), but their results died in its send batch. They fail; a revoked one
// (answered, not run) ends cancelled. False when `id` is not in flight.
bool PoolCore::fail_lost_before(WorkerProcess& w, std::uint64_t id, const WorkerExit& exit) {
  if (id == 0 || !in_flight(w, id)) {
    return false;
  }
  while (w.inflight.front()->id != id) {
    JobPtr job = std::move(w.inflight.front());
    w.inflight.pop_front();
    if (job->revoke_sent) {
      cancel_job(*job, nullptr, false);
    } else {
      fail_job_crashed(*job, exit, true);
    }
  }
  return true;
}

// Every frame up to the last one the worker began, if the host has no
// answer for it yet: never run again. What it had not begun stays listed
// (the caller requeues it).
void PoolCore::fail_begun(WorkerProcess& w, std::uint64_t begun_id, const WorkerExit& exit) {
  if (!fail_lost_before(w, begun_id, exit)) {
    return;
  }
  JobPtr job = std::move(w.inflight.front());
  w.inflight.pop_front();
  fail_job_crashed(*job, exit, true);
}

// The head of the slot's queue: it (or, for a chunk, its unreported items)
// fail; `first_error` (if set) goes to the item that was running.
void PoolCore::fail_head(WorkerProcess& w, const std::exception_ptr& first_error, const WorkerExit& exit,
                         std::uint64_t running_item) {
  JobPtr job = std::move(w.inflight.front());
  w.inflight.pop_front();
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

// interrupt_running() killed `w` in the head frame: it ends cancelled, and
// so does each item of its chunk not reported yet, saying which ran.
void PoolCore::fail_interrupted(WorkerProcess& w, std::uint64_t running_item) {
  JobPtr job = std::move(w.inflight.front());
  w.inflight.pop_front();
  const std::string where = "'" + job->task + "' (future " + std::to_string(job->id) + ") on worker " +
                            std::to_string(w.id) + " (pid " + std::to_string(w.pid) + ")";
  const std::string how = " when interrupt_running() killed the worker";
  if (job->chunk) {
    const std::size_t running = std::max<std::size_t>(job->reported, static_cast<std::size_t>(running_item));
    count_items(*job, job->items - job->reported);
    job->finish_chunk_with([&](std::size_t i) {
      const std::string item = "item " + std::to_string(i) + " of " + where;
      return std::make_exception_ptr(CancelledError(i < running ? item + " had run, but its result was lost" + how
                                                    : i == running
                                                        ? item + " was interrupted: it was running" + how
                                                        : item + " was interrupted before it started" + how));
    });
  } else {
    failed.fetch_add(1, std::memory_order_relaxed);
    job->fail(std::make_exception_ptr(CancelledError(where + " was interrupted: it was running" + how)));
  }
  shared->ended();
}

// Counters first: whoever a failed future wakes may read them at once.
void PoolCore::count_exit(const WorkerProcess& w, const WorkerExit& exit) {
  const bool crash = w.exit_reason == ExitReason::unexpected || w.exit_reason == ExitReason::protocol_error ||
                     w.exit_reason == ExitReason::startup_timeout;
  std::lock_guard lock(state_mutex);
  if (crash) {
    ++stats.retired.crash;
    ++stats.crashes_by_cause[w.exit_reason == ExitReason::startup_timeout ? "startup_timeout"
                             : !exit.killed_for.empty()                   ? "protocol error"
                                                                          : cause_name(exit)];
  }
  pids.erase(std::remove(pids.begin(), pids.end(), w.pid), pids.end());
}

// What the end of `w` does to its frames; returns the crash to count
// towards a crash storm (none for an exit the pool expected). At most once:
// a frame the worker began is never sent again.
std::exception_ptr PoolCore::settle_work(WorkerProcess& w, const Reaped& reaped) {
  const WorkerExit& exit = reaped.exit;
  const std::string who = "worker " + std::to_string(w.id) + " (pid " + std::to_string(w.pid) + ")";
  std::exception_ptr crash;
  switch (w.exit_reason) {
    case ExitReason::task_timeout:
      if (fail_lost_before(w, w.timed_out_id, exit)) {
        const Job& job = *w.inflight.front();
        const std::optional<std::size_t> item =
            job.chunk ? std::optional<std::size_t>(static_cast<std::size_t>(w.timed_out_item)) : std::nullopt;
        fail_head(w, std::make_exception_ptr(TaskTimeoutError(job.task, job.id, w.timed_out_after, w.id, w.pid, item)),
                  exit, w.timed_out_item);
      }
      break;
    case ExitReason::interrupted:
      if (fail_lost_before(w, reaped.running_id, exit)) {
        fail_interrupted(w, reaped.running_item);
      }
      break;
    case ExitReason::startup_timeout:
      crash = std::make_exception_ptr(Error(who + " did not report ready within the startup_timeout of " +
                                            seconds_text(options.startup_timeout) +
                                            " (slow plugin loading or initializer?); it was killed"));
      break;
    case ExitReason::killed_for_shutdown:
    case ExitReason::left:
      if (w.exit_reason == ExitReason::killed_for_shutdown || (stopping && stop_options.kill_workers)) {
        for (auto& job : w.inflight) {
          fail_job_crashed(*job, exit, false);
        }
        w.inflight.clear();
      }
      break;
    case ExitReason::unexpected:
    case ExitReason::protocol_error: {
      // A crash: the frame it was running fails with it.
      std::string task;
      std::uint64_t key = 0;
      if (fail_lost_before(w, reaped.running_id, exit)) {
        task = w.inflight.front()->task;
        key = w.inflight.front()->id;
        fail_head(w, nullptr, exit, reaped.running_item);
      }
      crash = exit.killed_for.empty() ? std::make_exception_ptr(WorkerCrashedError(exit, task, key))
                                      : std::make_exception_ptr(Error(who + " broke the frame protocol (" +
                                                                      w.protocol_error + "); it was killed"));
      break;
    }
  }
  // Whatever else it began has no result here (it died between frames, or
  // before their results left): those fail too; what it never began runs elsewhere.
  fail_begun(w, reaped.begun_id, exit);
  return crash;
}

void PoolCore::on_exit(WorkerProcess& w) {
  const Reaped reaped = supervisor_.reap(w);
  count_exit(w, reaped.exit);
  const bool at_startup = w.phase == Phase::starting;
  const std::exception_ptr crash = settle_work(w, reaped);
  // What it never began runs elsewhere, unless its cancel was asked (a
  // revoke on its way, or not sent yet): that ends cancelled, as the revoke
  // would have, instead of starting on a fresh worker.
  for (auto it = w.inflight.begin(); it != w.inflight.end();) {
    if ((*it)->revoke_sent || (*it)->cancel_requested()) {
      JobPtr job = std::move(*it);
      it = w.inflight.erase(it);
      cancel_job(*job, nullptr, false);
    } else {
      ++it;
    }
  }
  dispatcher_.requeue_unstarted(w);
  supervisor_.forget(w);  // `w` is gone from here on
  if (crash && !broken_cause && !(stopping && stop_options.kill_workers)) {
    after_crash(crash, detail::now_ns(), at_startup);
  }
}

// Respawn (the dispatcher starts a replacement on demand), or break the
// pool: on_worker_crash = break_pool, a run of start-up failures, or a
// crash storm. Start-up failures count in a row, whatever `within` says:
// a worker that takes startup_timeout to fail would otherwise never meet
// `max` of them inside the window, and the pool would respawn for ever.
void PoolCore::after_crash(const std::exception_ptr& crash, std::int64_t now, bool at_startup) {
  crashes.emplace_back(now, crash);
  while (!crashes.empty() && now - crashes.front().first > options.crash_storm.within.count()) {
    crashes.pop_front();
  }
  if (at_startup) {
    ++startup_failures;
  }
  if (options.on_worker_crash == OnWorkerCrash::break_pool) {
    break_pool(nest(crash, BrokenPoolError("ProcessPool '" + options.name + "' is broken: " + what_of(crash) +
                                           " (on_worker_crash = break_pool)")));
  } else if (at_startup && options.crash_storm.max != 0 && startup_failures >= options.crash_storm.max) {
    break_pool(nest(crash, BrokenPoolError("ProcessPool '" + options.name + "' is broken: its workers fail to start (" +
                                           std::to_string(startup_failures) +
                                           " start-up failures in a row, no worker became ready in between); "
                                           "the last: " +
                                           what_of(crash))));
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

}  // namespace troupe::detail::process
