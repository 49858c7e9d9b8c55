// ProcessPool's implementation: the API side (submit, counters, shutdown;
// pool_core.cpp) and the reactor thread that owns every worker
// (pool_loop.cpp: the loop, shutdown, timers; pool_frames.cpp: what the
// workers' frames mean, and what a worker's end does to its work). The
// reactor, supervisor and dispatcher it drives know nothing of each other.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "process/dispatcher.hpp"
#include "process/job.hpp"
#include "process/protocol.hpp"
#include "process/reactor.hpp"
#include "process/supervisor.hpp"
#include "troupe/pool_stats.hpp"
#include "troupe/process_pool.hpp"
#include "troupe/promise.hpp"

namespace troupe::detail::process {

class PoolCore {
 public:
  PoolCore(std::vector<std::filesystem::path> plugin_paths, ProcessPoolOptions opts);
  ~PoolCore();

  // ---- API side (any thread) ----
  void throw_if_unavailable() const;
  Future<Value> submit_call(Call call, std::optional<std::chrono::nanoseconds> timeout);
  Future<ChunkResult> submit_chunk(std::string task, std::vector<Args> items,
                                   std::optional<std::chrono::nanoseconds> timeout);
  void request_shutdown(const ProcessShutdownOptions& opts);
  // interrupt_running(): the reactor kills the workers running frames.
  void request_interrupt();
  bool join(Timeout timeout);
  void spawn_workers(std::size_t n);
  PoolGauges gauges() const;
  PoolStats stats_snapshot() const;
  std::vector<CancelledTask> cancelled_list_copy() const;
  std::vector<std::int64_t> pid_list() const;
  std::exception_ptr broken_error() const;
  bool on_reactor_thread() const { return std::this_thread::get_id() == reactor_id; }
  const std::filesystem::path& worker_executable() const { return supervisor_.executable(); }
  // The first ready worker's task table; null until a worker was ready.
  const TaskTable* tasks() const { return task_table.load(std::memory_order_acquire); }

  const ProcessPoolOptions options;
  const std::vector<std::filesystem::path> plugins;
  const std::size_t max_workers;
  std::atomic<std::size_t> live{0};
  std::atomic<std::size_t> busy{0};
  std::atomic<std::size_t> idle{0};
  std::shared_ptr<Shared> shared;

 private:
  // API side.
  void wait_for_room();
  std::exception_ptr unknown_task(const std::string& task) const;
  std::uint64_t timeout_ns(const std::optional<std::chrono::nanoseconds>& own) const;
  std::exception_ptr too_large_argument(const std::string& task, std::size_t size) const;
  std::exception_ptr cannot_encode(const std::string& task, const std::exception& e) const;
  template <class T>
  void enqueue(JobPtr job, Promise<T>& promise);
  template <class T>
  void accept(Promise<T>& promise, std::size_t units);

  // Reactor thread: the loop (pool_loop.cpp).
  void run();
  void take_inbox();
  void begin_stop(const ProcessShutdownOptions& opts);
  bool spawn_one();
  void stop_idle_workers();
  void interrupt_workers();
  void cancel_job(Job& job, const std::exception_ptr& cause, bool queued);
  void break_pool(std::exception_ptr error);
  void revoke_cancelled(WorkerProcess& w);
  void forward_cancel(WorkerProcess& w);
  std::optional<std::chrono::nanoseconds> timeout_of(const WorkerProcess& w, std::uint64_t id) const;
  std::int64_t next_task_deadline(const WorkerProcess& w) const;
  int next_timeout_ms() const;
  void check_timers();
  void check_task_timeout(WorkerProcess& w, std::int64_t now);
  void publish_gauges();

  // Reactor thread: frames and ends (pool_frames.cpp).
  void on_event(std::uint64_t tag, std::uint32_t events);
  void handle_frame(WorkerProcess& w, const FrameView& frame);
  Job* head(WorkerProcess& w, std::uint64_t id);
  void pop_head(WorkerProcess& w, std::int64_t now);
  void on_ready(WorkerProcess& w, Ready&& ready, std::int64_t now);
  void on_init_failed(WorkerProcess& w, const InitFailed& message);
  void on_result(WorkerProcess& w, Result&& result, std::int64_t now);
  void on_failure(WorkerProcess& w, const Failure& failure, std::int64_t now);
  void on_chunk_part(WorkerProcess& w, const FrameView& frame, std::int64_t now);
  void read_item(MsgpackReader& reader, Job& job, std::size_t at);
  void on_retiring(WorkerProcess& w, const Retiring& message);
  void on_bye(WorkerProcess& w, const Bye& bye);
  void on_revoked(WorkerProcess& w, std::uint64_t id);
  void count_items(const Job& job, std::size_t lost);
  void on_exit(WorkerProcess& w);
  void count_exit(const WorkerProcess& w, const WorkerExit& exit);
  std::exception_ptr settle_work(WorkerProcess& w, const Reaped& reaped);
  void after_crash(const std::exception_ptr& crash, std::int64_t now, bool at_startup);
  void fail_job_crashed(Job& job, const WorkerExit& exit, bool result_lost);
  bool fail_lost_before(WorkerProcess& w, std::uint64_t id, const WorkerExit& exit);
  void fail_begun(WorkerProcess& w, std::uint64_t begun_id, const WorkerExit& exit);
  void fail_head(WorkerProcess& w, const std::exception_ptr& first_error, const WorkerExit& exit,
                 std::uint64_t running_item);
  void fail_interrupted(WorkerProcess& w, std::uint64_t running_item);

  Reactor reactor_;
  Supervisor supervisor_;
  Dispatcher dispatcher_;

  // Submitters -> reactor.
  std::mutex inbox_mutex;
  std::vector<JobPtr> inbox;
  std::atomic<std::size_t> inbox_size{0};
  std::atomic<bool> control_pending{false};
  std::optional<ProcessShutdownOptions> shutdown_request;
  std::size_t spawn_requests = 0;
  bool interrupt_request = false;
  bool reactor_exited = false;  // inbox_mutex
  std::atomic<bool> accepting{true};
  std::atomic<std::uint64_t> next_id{1};

  // What the API reads.
  mutable std::mutex state_mutex;
  bool shut_down = false;
  std::exception_ptr broken;
  std::vector<CancelledTask> cancelled_list;
  PoolStats stats;
  std::vector<std::int64_t> pids;
  std::atomic<std::uint64_t> submitted{0};
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> failed{0};
  // Published once by the reactor, read by submitters.
  std::atomic<const TaskTable*> task_table{nullptr};
  std::unique_ptr<const TaskTable> task_table_owner;

  // Reactor-only.
  Value record;  // scratch for a chunk item's error record
  std::int64_t next_revoke_scan_ns = 0;
  bool some_job_timed = false;  // a job with its own timeout was ever submitted
  std::deque<std::pair<std::int64_t, std::exception_ptr>> crashes;
  std::size_t startup_failures = 0;  // in a row, since a worker last reported ready
  std::exception_ptr broken_cause;
  bool stopping = false;
  ProcessShutdownOptions stop_options;
  std::chrono::nanoseconds grace{0};  // shutdown_grace until shutdown() names its own
  std::size_t published_peak = 0;

  std::mutex join_mutex;
  std::thread reactor;
  std::thread::id reactor_id;
};

}  // namespace troupe::detail::process
