#include "process/dispatcher.hpp"

#include <algorithm>
#include <cstdint>

namespace troupe::detail::process {

Dispatcher::Dispatcher(Supervisor& supervisor, Shared& shared, std::size_t max_workers, Hooks hooks)
    : supervisor_(supervisor), shared_(shared), max_workers_(max_workers), hooks_(std::move(hooks)) {}

void Dispatcher::push_back(JobPtr job) {
  pending_.push_back(std::move(job));
  peak_ = std::max(peak_, pending_.size());
}

void Dispatcher::push_front(JobPtr job) {
  pending_.push_front(std::move(job));
}

JobPtr Dispatcher::pop_front() {
  JobPtr job = std::move(pending_.front());
  pending_.pop_front();
  return job;
}

// An idle ready worker, else a starting one with nothing queued.
WorkerProcess* Dispatcher::idle_or_starting(std::size_t& starting) {
  for (auto& [token, w] : supervisor_.workers()) {
    if (w->phase == Phase::ready && !w->retiring && w->inflight.empty()) {
      return w.get();
    }
  }
  for (auto& [token, w] : supervisor_.workers()) {
    if (w->phase == Phase::starting && w->inflight.empty()) {
      --starting;
      return w.get();
    }
  }
  return nullptr;
}

WorkerProcess* Dispatcher::least_loaded() {
  WorkerProcess* target = nullptr;
  std::size_t best = SIZE_MAX;
  for (auto& [token, w] : supervisor_.workers()) {
    if (w->phase == Phase::ready && !w->retiring && w->inflight.size() < depth(*w) && w->inflight.size() < best) {
      best = w->inflight.size();
      target = w.get();
    }
  }
  return target;
}

void Dispatcher::send(WorkerProcess& w, JobPtr job) {
  if (w.inflight.empty()) {
    at_max_ = false;
    w.current_started_ns = detail::now_ns();
  }
  w.out.insert(w.out.end(), job->frame.begin(), job->frame.end());
  w.inflight.push_back(std::move(job));
}

void Dispatcher::dispatch() {
  std::size_t starting = 0;
  for (auto& [token, w] : supervisor_.workers()) {
    starting += w->phase == Phase::starting && w->inflight.empty() ? 1 : 0;
  }
  while (!pending_.empty()) {
    WorkerProcess* target = idle_or_starting(starting);
    const bool at_max = supervisor_.live() >= max_workers_;
    if (target == nullptr && at_max && !at_max_) {
      at_max_ = true;
      hooks_.hit_max();
    }
    if (target == nullptr && !at_max && starting < pending_.size()) {
      if (!hooks_.spawn()) {
        return;
      }
      ++starting;
      continue;
    }
    if (target == nullptr) {
      if (pending_.size() <= starting) {
        break;  // what is left waits for the workers that are starting
      }
      target = least_loaded();
    }
    if (target == nullptr) {
      break;
    }
    JobPtr job = pop_front();
    if (!job->started) {
      if (!job->try_start(target->id)) {
        continue;  // cancelled by its owner while queued; the hook counted it
      }
      job->started = true;
      shared_.queued.fetch_sub(1, std::memory_order_seq_cst);
    }
    send(*target, std::move(job));
  }
  hooks_.room_freed();
}

void Dispatcher::requeue_unstarted(WorkerProcess& w, std::size_t from) {
  while (w.inflight.size() > from) {
    pending_.push_front(std::move(w.inflight.back()));
    w.inflight.pop_back();
  }
}

}  // namespace troupe::detail::process
