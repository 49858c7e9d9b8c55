// A page of shared memory between the host and one worker (a memfd the
// worker maps as fd 4). The worker stores what it is doing there with plain
// atomic stores, no system call, so that after a crash the host knows which
// frame was running, which item of it, how far it got in the frames it was
// sent, and the last RSS, even when the results of the frames before it were
// still in the worker's send batch.
#pragma once

#include <atomic>
#include <cstdint>

namespace troupe::detail::process {

inline constexpr int worker_page_fd = 4;
inline constexpr std::size_t worker_page_size = 4096;

struct WorkerPage {
  std::atomic<std::uint64_t> running_id;       // the task or chunk running now (0: none)
  std::atomic<std::uint64_t> begun_id;         // the last task or chunk it began (never cleared)
  std::atomic<std::uint64_t> item;             // its current item (chunks)
  std::atomic<std::int64_t> item_started_ns;   // CLOCK_MONOTONIC, when that item started
  std::atomic<std::int64_t> item_deadline_ns;  // when that item times out (the frame's timeout); 0: never
  std::atomic<std::uint64_t> rss;              // bytes, refreshed after tasks and by the heartbeat
  std::atomic<std::uint64_t> cancel_id;        // host -> worker: cancel requested for this running id
  // host -> worker: bumped once a revoke frame is wholly in the channel, so
  // the worker looks ahead in what it has buffered before its next frame.
  std::atomic<std::uint64_t> revoke_epoch;
};

static_assert(sizeof(WorkerPage) <= worker_page_size);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

}  // namespace troupe::detail::process
