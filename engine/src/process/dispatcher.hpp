// The process pool's pending work and who gets it: jobs wait here until a
// worker takes them; each worker keeps a pipelining depth of about 4 ms of
// work in flight. Frames sent but never begun (the worker died or retired
// first) come back to the front of the queue.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>

#include "process/job.hpp"
#include "process/supervisor.hpp"

namespace troupe::detail::process {

class Dispatcher {
 public:
  struct Hooks {
    std::function<bool()> spawn;       // start one more worker; false: the pool broke trying
    std::function<void()> hit_max;     // work arrived and every worker was busy at max_workers
    std::function<void()> room_freed;  // jobs left the queue (submitters blocked on queue_limit)
  };

  Dispatcher(Supervisor& supervisor, Shared& shared, std::size_t max_workers, Hooks hooks);

  void push_back(JobPtr job);
  void push_front(JobPtr job);
  JobPtr pop_front();
  bool empty() const { return pending_.empty(); }
  std::size_t size() const { return pending_.size(); }
  std::size_t peak() const { return peak_; }

  // Sends what it can: to idle ready workers first, then to a starting
  // worker with nothing queued (its frame waits behind the hello), then
  // pipelined onto ready workers below their depth; spawns while more work
  // waits than workers are starting and fewer than max_workers live.
  void dispatch();

  // How many frames `w` may have in flight: about 4 ms of its measured work,
  // never fewer than 4 (8 before anything was measured), at most 1024.
  static std::size_t depth(const WorkerProcess& w) {
    if (w.ewma_ns <= 0) {
      return 8;
    }
    const double frames = 4'000'000.0 / w.ewma_ns;
    return frames <= 4.0 ? 4 : frames >= 1024.0 ? 1024 : static_cast<std::size_t>(frames);
  }

  // Jobs sent to `w` from position `from` on go back to the front of the queue.
  void requeue_unstarted(WorkerProcess& w, std::size_t from = 0);

 private:
  WorkerProcess* idle_or_starting(std::size_t& starting);
  WorkerProcess* least_loaded();
  void send(WorkerProcess& w, JobPtr job);

  Supervisor& supervisor_;
  Shared& shared_;
  std::size_t max_workers_;
  Hooks hooks_;
  std::deque<JobPtr> pending_;
  std::size_t peak_ = 0;
  bool at_max_ = false;  // the last time work arrived, every worker was busy at max_workers
};

}  // namespace troupe::detail::process
