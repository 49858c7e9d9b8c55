// troupe/pool_stats.hpp
//
// troupe::PoolStats: one snapshot of a pool's figures (php-fpm's status page,
// folly's getPoolStats), shared by ThreadPool and ProcessPool.
//
// Guarantees: counters only grow over a pool's life (completed, failed,
// cancelled, spawned, retired, peak_queue, times_hit_max_workers); gauges
// (live/idle/busy workers, queued) are a moment's reading.
// Hazards: the snapshot is not atomic across fields: with work in flight,
// live_workers may differ from idle_workers + busy_workers by the workers
// that are starting or retiring at that moment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace troupe {

// Why workers left the pool.
struct RetiredCounts {
  std::uint64_t idle_timeout = 0;  // idle past idle_timeout, above min_workers
  std::uint64_t max_tasks = 0;     // reached max_tasks_per_worker
  std::uint64_t memory = 0;        // crossed max_memory_per_worker (process pool)
  std::uint64_t crash = 0;         // died (process pool) or initializer/finalizer threw
  std::uint64_t shutdown = 0;      // shutdown, join of a broken pool, destruction

  std::uint64_t total() const noexcept { return idle_timeout + max_tasks + memory + crash + shutdown; }
};

// The gauges alone: cheap to read (a few relaxed loads), as
// Executor::workers() and its siblings do.
struct PoolGauges {
  std::size_t live_workers = 0;  // started and not yet exited
  std::size_t idle_workers = 0;  // live, waiting for work
  std::size_t busy_workers = 0;  // live, running a task
  std::size_t queued = 0;        // queue entries (a chunk is one) accepted, not yet started (queue_limit counts these)
};

struct PoolStats : PoolGauges {
  // Counters since the pool was made. ThreadPool counts items: a task is
  // one, a map chunk of N items is N (each item completed, failed or
  // cancelled on its own), updated before the task's future completes.
  // (ProcessPool counts a chunk as one today.)
  std::uint64_t submitted = 0;
  std::uint64_t completed = 0;  // ended with a value
  std::uint64_t failed = 0;     // ended with an exception
  std::uint64_t cancelled = 0;  // cancelled before they ran (by cancel(), shutdown or a broken pool)
  std::uint64_t spawned = 0;    // workers started
  RetiredCounts retired;
  std::size_t peak_queue = 0;               // the largest `queued` seen
  std::uint64_t times_hit_max_workers = 0;  // work arrived with every worker busy and live == max_workers

  // Process pool: crashes by cause ("SIGSEGV", "exit 3", "task_timeout", "oom"...); empty for threads.
  std::map<std::string, std::uint64_t> crashes_by_cause;
};

}  // namespace troupe
