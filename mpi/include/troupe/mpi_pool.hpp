// troupe/mpi_pool.hpp
//
// troupe::MpiPool: an Executor whose workers are the other ranks of an MPI
// job, each running a local thread or process pool (troupe/mpi.hpp shows
// the program around it).
//
//   troupe::MpiPool pool(plugins, {.local = troupe::ProcessPoolOptions{.max_workers = 4}});
//   auto f = pool.call("text.words", doc);                        // Future<Value>
//   for (auto& v : troupe::map(pool, "text.words", docs)) ...     // a chunk travels as one message
//
// Guarantees: every accepted call ends exactly once (value, error, or
// cancelled). Work moves by self-scheduling: a rank holds at most
// frames_per_worker calls or chunks per local worker and is sent the next as
// each ends, so fast and slow ranks both stay busy. Errors arrive typed, as
// on one host (UnknownTaskError, ArgumentError, WorkerCrashedError naming
// the rank, TaskTimeoutError, RemoteError with the remote causes and stack
// trace). A rank whose local pool broke (an initializer that throws) breaks
// this pool (BrokenPoolError, cause nested). Rank 0 polls MPI with a
// back-off up to 1 ms when idle, so waiting costs no core. cancel() of
// queued work holds; of work already sent it revokes it there (a frame not
// started ends cancelled, a running task sees its cancel flag).
// interrupt_running() interrupts every rank's running work.
// Refused (UsageError): C++ callables (they cannot travel), shared counters
// and dicts (one machine's memory), a second MpiPool while one lives, a job
// of one rank.
// Thread safety: every member may be called from any thread.
// Hazards: the constructor blocks until every rank reported ready (up to
// startup_timeout); the destructor waits for the work it accepted (a task
// hung on a rank's thread pool keeps it waiting: give such work a time limit
// on process ranks). A refusal of a rank's local pool that has no MPI-wide
// meaning (its own queue_limit with the fail policy) arrives as a
// RemoteError naming it. Done callbacks run on the pool's MPI thread: keep them
// short. One MpiPool at a time per job; the serving ranks build a fresh
// local pool for each.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "troupe/executor.hpp"
#include "troupe/pool_options.hpp"
#include "troupe/pool_stats.hpp"

namespace troupe {

namespace mpi::detail {
class HostCore;  // mpi/src/host_core.hpp
}

// One serving rank, as it last reported itself.
struct RankStats {
  int rank = 0;
  std::string host;
  std::int64_t pid = 0;
  std::size_t workers = 0;  // its local pool's max_workers
  PoolStats stats;          // its local pool's figures
};

class MpiPool final : public Executor, public TimedSubmit {
 public:
  // Needs a live troupe::mpi::Environment on rank 0, the other ranks in
  // troupe::mpi::serve(plugins, options). Throws UsageError (invalid
  // options, no Environment, not rank 0, one rank only, another MpiPool
  // alive) or Error (a rank that did not report ready within
  // startup_timeout, or whose local pool could not be built: the reason).
  MpiPool(std::vector<std::filesystem::path> plugins, MpiPoolOptions options = {});
  ~MpiPool() override;

  Future<Value> submit_call(Call call) override;
  Future<std::vector<Outcome<Value>>> submit_chunk(std::string task, std::vector<Args> items) override;
  // The same with a time limit for the call (for each item of the chunk),
  // enforced on its rank: past it the task fails with TaskTimeoutError.
  Future<Value> submit_call(Call call, std::chrono::nanoseconds timeout) override;
  Future<std::vector<Outcome<Value>>> submit_chunk(std::string task, std::vector<Args> items,
                                                   std::chrono::nanoseconds timeout) override;
  // True when `local` is a process pool (a thread cannot be stopped).
  bool takes_time_limits() const noexcept override;

  // Waits (wait = true) for what was accepted to end, then every rank shuts
  // its local pool down (finalizers run) and goes back to waiting in serve().
  void shutdown(const ShutdownOptions& options = {}) override;
  void interrupt_running() override;
  bool join(Timeout timeout = std::nullopt) override;
  void check() const override;
  // Every rank builds a one-worker replica of its local pool, runs one
  // trivial task on it and shuts it down; rethrows the first failure.
  void test() override;
  // Spreads n over the ranks; each starts its share now.
  void spawn_workers(std::size_t n) override;

  std::size_t max_workers() const override;  // the ranks' local max_workers, summed
  // Summed over the ranks' last reports; `queued` adds what rank 0 holds.
  PoolGauges gauges() const override;
  std::vector<CancelledTask> cancelled_tasks() const override;
  // Items as rank 0 counts them (submitted, completed, failed, cancelled);
  // workers spawned and retired summed over the ranks.
  PoolStats stats() const override;

  int ranks() const noexcept;  // serving ranks (the job's size minus rank 0)
  std::vector<RankStats> rank_stats() const;
  const MpiPoolOptions& options() const noexcept;

 private:
  std::unique_ptr<mpi::detail::HostCore> core_;
};

}  // namespace troupe
