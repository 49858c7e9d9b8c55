// ProgressMeter: relaxed atomic counters any thread bumps, and a render
// thread (only when a target is set) that draws a snapshot every period and
// the last one at finish().
#include "troupe/detail/progress_meter.hpp"

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <thread>
#include <utility>

#include "runner/progress_renderer.hpp"
#include "runner/progress_target.hpp"

namespace troupe::detail {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kUnknownTotal = std::numeric_limits<std::uint64_t>::max();
// The rate follows roughly the last few seconds (an EWMA with this time
// constant); before that much has passed it is the plain average.
constexpr double kRateWindowSeconds = 5.0;

}  // namespace

struct ProgressMeter::State {
  std::shared_ptr<const ProgressTarget> target;
  std::string label;
  Clock::time_point start = Clock::now();

  std::atomic<std::uint64_t> ok{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> retried{0};
  std::atomic<std::uint64_t> total{kUnknownTotal};

  // The smoothed rate, updated by whoever takes a snapshot.
  mutable std::mutex rate_mutex;
  mutable double rate = 0;
  mutable Clock::time_point last_sample{};
  mutable std::uint64_t last_done = 0;
  mutable bool sampled = false;

  std::mutex mutex;  // guards stopping, finished, end
  std::condition_variable wake;
  bool stopping = false;
  bool finished = false;
  Clock::time_point end{};
  std::mutex finish_mutex;  // one finish() at a time
  std::unique_ptr<ProgressRenderer> renderer;
  std::thread thread;

  double smoothed_rate(std::uint64_t done, Clock::time_point now) const {
    std::lock_guard lock(rate_mutex);
    const double elapsed = std::chrono::duration<double>(now - start).count();
    if (!sampled || elapsed <= kRateWindowSeconds) {
      rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
    } else {
      const double dt = std::chrono::duration<double>(now - last_sample).count();
      if (dt > 0 && done >= last_done) {
        const double instant = static_cast<double>(done - last_done) / dt;
        rate += (1 - std::exp(-dt / kRateWindowSeconds)) * (instant - rate);
      }
    }
    sampled = true;
    last_sample = now;
    last_done = done;
    return rate;
  }

  void render_loop() {
    std::unique_lock lock(mutex);
    for (;;) {
      if (wake.wait_for(lock, renderer->period(), [&] { return stopping; })) {
        return;
      }
      lock.unlock();
      renderer->draw(take(false, Clock::now()));
      lock.lock();
    }
  }

  ProgressSnapshot take(bool last, Clock::time_point now) const {
    ProgressSnapshot s;
    s.label = label;
    s.ok = ok.load(std::memory_order_relaxed);
    s.failed = failed.load(std::memory_order_relaxed);
    s.retried = retried.load(std::memory_order_relaxed);
    s.done = s.ok + s.failed;
    if (const auto t = total.load(std::memory_order_relaxed); t != kUnknownTotal) {
      s.total = t;
    }
    s.elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(now - start);
    s.finished = last;
    if (last) {
      // The whole run's average: the honest figure once it is over.
      const double seconds = std::chrono::duration<double>(s.elapsed).count();
      s.rate = seconds > 0 ? static_cast<double>(s.done) / seconds : 0;
      if (s.total) {
        s.eta = std::chrono::nanoseconds(0);
      }
      return s;
    }
    s.rate = smoothed_rate(s.done, now);
    if (s.total && s.rate > 0) {
      const auto left = *s.total > s.done ? *s.total - s.done : 0;
      s.eta = std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::duration<double>(static_cast<double>(left) / s.rate));
    }
    return s;
  }
};

ProgressMeter::ProgressMeter(const Progress& how, std::string label, std::optional<std::uint64_t> total)
    : state_(std::make_unique<State>()) {
  state_->target = how.target();
  state_->label = std::move(label);
  set_total(total);
  if (state_->target) {
    state_->renderer = std::make_unique<ProgressRenderer>(*state_->target);
    state_->thread = std::thread([s = state_.get()] { s->render_loop(); });
  }
}

ProgressMeter::~ProgressMeter() {
  finish();
}

void ProgressMeter::add_ok(std::uint64_t n) noexcept {
  state_->ok.fetch_add(n, std::memory_order_relaxed);
}
void ProgressMeter::add_failed(std::uint64_t n) noexcept {
  state_->failed.fetch_add(n, std::memory_order_relaxed);
}
void ProgressMeter::add_retried(std::uint64_t n) noexcept {
  state_->retried.fetch_add(n, std::memory_order_relaxed);
}

void ProgressMeter::set_total(std::optional<std::uint64_t> total) noexcept {
  // kUnknownTotal itself cannot be a total: no run has 2^64 - 1 items.
  state_->total.store(total.value_or(kUnknownTotal), std::memory_order_relaxed);
}

ProgressSnapshot ProgressMeter::snapshot() const {
  std::unique_lock lock(state_->mutex);
  if (state_->finished) {
    const auto end = state_->end;
    lock.unlock();
    return state_->take(true, end);
  }
  lock.unlock();
  return state_->take(false, Clock::now());
}

void ProgressMeter::finish() {
  std::lock_guard finishing(state_->finish_mutex);
  Clock::time_point end;
  {
    std::lock_guard lock(state_->mutex);
    if (state_->finished) {
      return;
    }
    state_->finished = true;
    state_->stopping = true;
    state_->end = end = Clock::now();
  }
  state_->wake.notify_all();
  if (state_->thread.joinable()) {
    state_->thread.join();  // the renderer has drawn its last periodic line
  }
  if (state_->renderer) {
    state_->renderer->draw(state_->take(true, end));
  }
}

}  // namespace troupe::detail
