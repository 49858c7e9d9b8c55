// The Runner's streaming loop: one thread (run()'s caller) pulls items from
// the source while the window has room, groups them into pool tasks,
// schedules retries on a timer heap (never a sleep in a worker) and hands
// each finished item to the sink. Pool callbacks only queue the batch id and
// wake the loop, so every decision is made on one thread.
#include "troupe/detail/runner_core.hpp"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <random>
#include <set>
#include <tuple>
#include <unordered_map>

#include <unistd.h>

#include "common/log.hpp"
#include "runner/run_batch.hpp"
#include "troupe/detail/progress_meter.hpp"
#include "troupe/errors.hpp"
#include "troupe/interrupt.hpp"
#include "troupe/process_errors.hpp"
#include "troupe/process_pool.hpp"
#include "troupe/registry.hpp"
#include "troupe/thread_pool.hpp"

namespace troupe::detail {
namespace {

using runner::Batch;
using runner::batchable;
using runner::Clock;
using runner::ItemResult;
using runner::results_of;
using runner::Slot;

constexpr std::size_t kWindowPerWorker = 256;
constexpr std::chrono::microseconds kBatchTarget{200};

struct Due {
  Clock::time_point when;
  Slot slot;
};
bool later(const Due& a, const Due& b) {
  return a.when > b.when;
}

template <class E>
bool is(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const E&) {
    return true;
  } catch (...) {
    return false;
  }
}

bool retryable(Retry on, const std::exception_ptr& error) {
  switch (on) {
    case Retry::any:
      return true;
    case Retry::crash:
      return is<WorkerCrashedError>(error);
    case Retry::timeout:
      return is<TaskTimeoutError>(error);
    case Retry::crash_or_timeout:
      return is<WorkerCrashedError>(error) || is<TaskTimeoutError>(error);
  }
  return false;
}

}  // namespace

struct RunnerCore::Loop {
  std::mutex mutex;
  std::condition_variable wake;
  std::vector<std::uint64_t> completed;  // batch ids, guarded by mutex
  // Timed thread pool tasks that began running (batch id, when), guarded by mutex.
  std::vector<std::pair<std::uint64_t, Clock::time_point>> started;
};

// One run's state, on the run thread only.
class RunState {
 public:
  RunState(RunnerCore& core, Executor& executor, const RunnerOptions& options, std::shared_ptr<RunnerCore::Loop> loop,
           ProgressMeter& meter, std::atomic<std::size_t>& in_flight, std::size_t window, const RunnerCore::Sink& sink,
           const RunnerCore::Aborted& aborted, const RunnerCore::Describe& describe)
      : core_(core),
        executor_(executor),
        options_(options),
        loop_ptr_(std::move(loop)),
        loop_(*loop_ptr_),
        meter_(meter),
        in_flight_(in_flight),
        window_(window),
        sink_(sink),
        aborted_(aborted),
        describe_(describe),
        timed_(dynamic_cast<TimedSubmit*>(&executor)),
        timed_threads_(options.timeout.has_value() && timed_ == nullptr),
        max_batch_(timed_threads_
                       ? 1
                       : std::max<std::size_t>(1, window / (2 * std::max<std::size_t>(1, executor.max_workers())))),
        batch_size_(timed_threads_  ? 1
                    : options.batch ? std::min(options.batch, window)
                                    : 1),
        random_(std::random_device{}()) {}

  // Normally nothing is in flight by now. After an exception the loop did
  // not expect, the batches whose tasks still run must outlive them: cancel
  // what waits, and wait for the rest.
  ~RunState() {
    for (auto& [id, batch] : batches_) {
      std::visit([](auto& f) { f.cancel(); }, batch->future);
    }
    for (auto& [id, batch] : batches_) {
      std::visit([](auto& f) { f.wait(); }, batch->future);
    }
  }
  RunState(const RunState&) = delete;
  RunState& operator=(const RunState&) = delete;

  RunSummary run(const RunnerCore::Source& source) {
    int handled = 0;
    while (true) {
      const int level = core_.stop_level();
      if (level > handled) {
        on_stop(handled, level);
        handled = level;
      }
      if (level == 0 && !failure_) {
        feed(source);
      }
      if (batches_.empty() && retries_.empty() && (source_done_ || level > 0 || failure_)) {
        break;
      }
      const Events events = wait(handled);
      for (const auto& [id, when] : events.started) {
        if (auto it = batches_.find(id); it != batches_.end()) {
          it->second->deadline = when + *options_.timeout;
          deadlines_.emplace(*it->second->deadline, id);
        }
      }
      for (std::uint64_t id : events.completed) {
        complete(id);
      }
      expire();
    }
    summary_.interrupted = handled > 0;
    if (failure_) {
      std::rethrow_exception(failure_);
    }
    return summary_;
  }

 private:
  using BatchPtr = std::unique_ptr<Batch>;

  struct Events {
    std::vector<std::uint64_t> completed;
    std::vector<std::pair<std::uint64_t, Clock::time_point>> started;
  };

  Events wait(int handled) {
    Events events;
    std::unique_lock lock(loop_.mutex);
    auto ready = [&] {
      return !loop_.completed.empty() || !loop_.started.empty() || core_.stop_level() > handled;
    };
    std::optional<Clock::time_point> until;
    if (!retries_.empty() && core_.stop_level() == 0) {
      until = retries_.front().when;
    }
    if (!deadlines_.empty()) {
      const Clock::time_point first = deadlines_.begin()->first;
      until = until ? std::min(*until, first) : first;
    }
    if (until) {
      loop_.wake.wait_until(lock, *until, ready);
    } else {
      loop_.wake.wait(lock, ready);
    }
    events.completed.swap(loop_.completed);
    events.started.swap(loop_.started);
    return events;
  }

  // Thread pool tasks past their deadline: the item fails with
  // TaskTimeoutError now, the task's cancel flag is set, and the batch is
  // dropped so that its late result (its completion id) finds nothing.
  void expire() {
    const auto now = Clock::now();
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      const std::uint64_t id = deadlines_.begin()->second;
      deadlines_.erase(deadlines_.begin());
      auto it = batches_.find(id);
      if (it == batches_.end()) {
        continue;
      }
      const bool done = std::visit([](const auto& f) { return f.done(); }, it->second->future);
      if (done) {
        continue;  // its completion is on its way to complete()
      }
      BatchPtr batch = std::move(it->second);
      batches_.erase(it);
      const auto [worker, running, future_id] = std::visit(
          [](const auto& f) {
            f.cancel();  // running: sets the cooperative flag
            return std::make_tuple(f.worker_id(), f.running_time(), f.id());
          },
          batch->future);
      Slot& slot = batch->slots.front();
      const std::string task = slot.work.is_call() ? slot.work.call().task : std::string("<callable>");
      ItemResult result;
      result.error =
          std::make_exception_ptr(TaskTimeoutError(task, future_id, *options_.timeout, worker.value_or(0), -1));
      settle(slot, std::move(result), worker, running);
    }
  }

  // Due retries first, then new items while the window has room.
  void feed(const RunnerCore::Source& source) {
    const auto now = Clock::now();
    while (!retries_.empty() && retries_.front().when <= now) {
      std::pop_heap(retries_.begin(), retries_.end(), later);
      Slot slot = std::move(retries_.back().slot);
      retries_.pop_back();
      // A retry goes alone: a batch that crashed must not take others down again.
      std::vector<Slot> one;
      one.push_back(std::move(slot));
      submit(std::move(one));
    }
    while (!source_done_ && in_flight_.load(std::memory_order_relaxed) < window_) {
      std::optional<RunWork> work;
      try {
        work = source(next_index_);
      } catch (...) {
        failure_ = std::current_exception();
        break;
      }
      if (!work) {
        source_done_ = true;
        break;
      }
      in_flight_.fetch_add(1, std::memory_order_relaxed);
      const std::uint64_t index = next_index_++;
      try {
        core_.check(*work);
      } catch (...) {
        Slot refused{index, std::move(*work), {}};
        refused.outcome.error = std::current_exception();
        finish(refused);
        continue;
      }
      if (!pending_.empty() && !batchable(pending_.front().work, *work)) {
        submit(std::move(pending_));
        pending_.clear();
      }
      pending_.emplace_back(index, std::move(*work));
      if (pending_.size() >= batch_size_) {
        submit(std::move(pending_));
        pending_.clear();
      }
    }
    if (!pending_.empty()) {
      submit(std::move(pending_));
      pending_.clear();
    }
    if (failure_) {
      on_stop(0, 1);
    }
  }

  void submit(std::vector<Slot> slots) {
    const std::uint64_t id = next_batch_++;
    auto batch = std::make_unique<Batch>();
    batch->slots = std::move(slots);
    Batch& b = *batch;
    try {
      if (timed_threads_) {
        start_timed(b, id);
      } else {
        start(b);
      }
    } catch (...) {
      // The executor refused the task (shut down, broken, queue full): each
      // item's attempt failed with that error.
      const std::exception_ptr error = std::current_exception();
      for (auto& slot : b.slots) {
        ItemResult r;
        r.error = error;
        settle(slot, std::move(r), std::nullopt, {});
      }
      return;
    }
    batches_.emplace(id, std::move(batch));
    std::visit(
        [&](auto& future) {
          future.add_done_callback([loop = loop_ptr_, id](const auto&) {
            std::lock_guard lock(loop->mutex);
            loop->completed.push_back(id);
            loop->wake.notify_one();  // under the lock: the loop may end as soon as it sees the id
          });
        },
        b.future);
  }

  void start(Batch& b) {
    RunWork& first = b.slots.front().work;
    if (!first.is_call()) {
      b.results.resize(b.slots.size());
      const std::atomic<int>* level = &core_.stop_flag();
      b.future = static_cast<ThreadPool&>(executor_).submit([&b, level] {
        for (std::size_t i = 0; i < b.slots.size(); ++i) {
          if (level->load(std::memory_order_relaxed) >= 2) {
            b.results[i].cancelled = true;  // the second interrupt: the rest never run
            continue;
          }
          try {
            b.results[i].value = b.slots[i].work.callable()();
          } catch (...) {
            b.results[i].error = std::current_exception();
          }
        }
      });
    } else if (b.slots.size() == 1) {
      if (timed_ != nullptr && options_.timeout) {
        b.future = timed_->submit_call(first.call(), *options_.timeout);
      } else {
        b.future = executor_.submit_call(first.call());
      }
    } else {
      std::vector<Args> items;
      items.reserve(b.slots.size());
      for (const auto& slot : b.slots) {
        items.push_back(slot.work.call().args);
      }
      if (timed_ != nullptr && options_.timeout) {
        b.future = timed_->submit_chunk(first.call().task, std::move(items), *options_.timeout);
      } else {
        b.future = executor_.submit_chunk(first.call().task, std::move(items));
      }
    }
  }

  // One item on a ThreadPool under a timeout. The task owns copies of what
  // it runs (a timed-out batch is dropped while its task may still run) and
  // tells the loop when it starts, which is when its deadline starts.
  void start_timed(Batch& b, std::uint64_t id) {
    auto& pool = static_cast<ThreadPool&>(executor_);
    const RunWork& work = b.slots.front().work;
    std::function<Value(TaskContext&)> body;
    if (work.is_call()) {
      const Registry* registry = pool.options().registry;
      if (registry == nullptr) {
        throw UsageError("ThreadPool '" + pool.options().name + "': call('" + work.call().task +
                         "') needs ThreadPoolOptions::registry to resolve plugin tasks");
      }
      const TaskInfo* info = &registry->task(work.call().task);
      body = [info, call = work.call()](TaskContext& ctx) {
        return info->invoke(ctx, call.args, call.kwargs);
      };
    } else {
      body = [fn = work.callable()](TaskContext&) {
        return fn();
      };
    }
    b.future = pool.submit([body = std::move(body), loop = loop_ptr_, id](TaskContext& ctx) -> Value {
      {
        std::lock_guard lock(loop->mutex);
        loop->started.emplace_back(id, Clock::now());
        loop->wake.notify_one();
      }
      return body(ctx);
    });
  }

  void complete(std::uint64_t id) {
    auto it = batches_.find(id);
    if (it == batches_.end()) {
      return;  // timed out before: its result is discarded
    }
    BatchPtr batch = std::move(it->second);
    batches_.erase(it);
    if (batch->deadline) {
      deadlines_.erase({*batch->deadline, id});
    }
    std::vector<ItemResult> results = results_of(*batch);
    const auto [worker, running] =
        std::visit([](const auto& f) { return std::make_pair(f.worker_id(), f.running_time()); }, batch->future);
    const std::size_t n = batch->slots.size();
    const auto each = running / static_cast<std::int64_t>(n);
    adapt(n, running, results);
    for (std::size_t i = 0; i < n; ++i) {
      settle(batch->slots[i], std::move(results[i]), worker, each);
    }
  }

  // Automatic batch size: about kBatchTarget of work per pool task.
  void adapt(std::size_t n, std::chrono::nanoseconds running, const std::vector<ItemResult>& results) {
    if (options_.batch != 0 || results.empty() || results.front().cancelled) {
      return;
    }
    const double per_item = std::max(1.0, static_cast<double>(running.count()) / static_cast<double>(n));
    const double want = std::chrono::duration<double, std::nano>(kBatchTarget).count() / per_item;
    batch_size_ = std::clamp<std::size_t>(static_cast<std::size_t>(want), 1, max_batch_);
  }

  // The stop in force: a failed source or sink stops the run like stop().
  int level() const noexcept { return std::max(core_.stop_level(), failure_ ? 1 : 0); }

  void settle(Slot& slot, ItemResult&& result, std::optional<std::size_t> worker, std::chrono::nanoseconds each) {
    const int level = this->level();
    if (result.cancelled && level >= 1) {
      abort(slot);
      return;
    }
    RunOutcome& out = slot.outcome;
    ++out.attempts;
    out.worker = worker;
    out.elapsed = each;
    if (!result.error) {
      out.value = std::move(result.value);
      out.error = nullptr;
      finish(slot);
      return;
    }
    if (level >= 2 || (level >= 1 && is<CancelledError>(result.error))) {
      // Running at the second interrupt and not finished ok, or an item of a
      // chunk that the stop kept from starting.
      abort(slot);
      return;
    }
    out.attempt_errors.push_back(result.error);
    out.error = result.error;
    if (level == 0 && !failure_ && out.attempts <= options_.retries.max &&
        retryable(options_.retries.on, result.error)) {
      meter_.add_retried();
      ++summary_.retried;
      retries_.push_back({Clock::now() + delay(out.attempts), std::move(slot)});
      std::push_heap(retries_.begin(), retries_.end(), later);
      return;
    }
    finish(slot);
  }

  std::chrono::nanoseconds delay(std::size_t retry) {
    const Backoff& b = options_.retries.backoff;
    double ms = static_cast<double>(b.initial.count()) * std::pow(b.multiplier, static_cast<double>(retry - 1));
    ms = std::min(ms, static_cast<double>(b.max.count()));
    if (b.jitter > 0) {
      std::uniform_real_distribution<double> spread(-b.jitter, b.jitter);
      ms *= 1.0 + spread(random_);
    }
    return std::chrono::nanoseconds(static_cast<std::int64_t>(std::max(0.0, ms) * 1e6));
  }

  void finish(Slot& slot) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    ++summary_.done;
    if (slot.outcome.ok()) {
      ++summary_.ok;
      meter_.add_ok();
    } else {
      ++summary_.failed;
      meter_.add_failed();
      if (options_.report_errors && log_enabled(LogLevel::error)) {
        report_error(slot);
      }
    }
    call([&] { sink_(slot.index, std::move(slot.outcome)); });
  }

  // Logging a failure never ends the run: a key that will not print is
  // named by its place, and a log line that cannot be made is left out.
  void report_error(const Slot& slot) noexcept {
    try {
      std::string key;
      try {
        key = describe_(slot.index);
      } catch (...) {
        key = "item " + std::to_string(slot.index);
      }
      log(LogLevel::error, options_.label + ": " + key + " failed after " + std::to_string(slot.outcome.attempts) +
                               (slot.outcome.attempts == 1 ? " attempt: " : " attempts: ") +
                               describe_exception(slot.outcome.error));
    } catch (...) {
      // Out of memory for the line: the outcome still reaches the sink.
    }
  }

  void abort(const Slot& slot) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    ++summary_.aborted;
    call([&] { aborted_(slot.index); });
  }

  // A throwing sink stops the run like stop(); run() rethrows it at the end.
  template <class F>
  void call(F&& fn) {
    try {
      fn();
    } catch (...) {
      if (!failure_) {
        failure_ = std::current_exception();
        on_stop(0, 1);
      }
    }
  }

  void on_stop(int from, int to) {
    if (from < 1 && to >= 1) {
      for (auto& due : retries_) {
        abort(due.slot);
      }
      retries_.clear();
      // Collected first: a pending future's cancel() runs its callback here.
      std::vector<Batch*> running;
      for (auto& [id, batch] : batches_) {
        running.push_back(batch.get());
      }
      for (Batch* b : running) {
        std::visit([](auto& f) { f.cancel(); }, b->future);
      }
    }
    if (from < 2 && to >= 2) {
      executor_.interrupt_running();
    }
  }

  RunnerCore& core_;
  Executor& executor_;
  const RunnerOptions& options_;
  std::shared_ptr<RunnerCore::Loop> loop_ptr_;
  RunnerCore::Loop& loop_;
  ProgressMeter& meter_;
  std::atomic<std::size_t>& in_flight_;
  std::size_t window_;
  const RunnerCore::Sink& sink_;
  const RunnerCore::Aborted& aborted_;
  const RunnerCore::Describe& describe_;
  TimedSubmit* timed_;  // null for executors that take no time limit with a submission
  bool timed_threads_;  // a timeout the runner enforces itself (not a ProcessPool)
  std::size_t max_batch_;
  std::size_t batch_size_;
  std::mt19937_64 random_;

  std::unordered_map<std::uint64_t, BatchPtr> batches_;
  std::vector<Due> retries_;  // a min-heap on `when`
  // Timed thread pool tasks running, by deadline: as many as are in flight.
  std::set<std::pair<Clock::time_point, std::uint64_t>> deadlines_;
  std::vector<Slot> pending_;
  std::uint64_t next_index_ = 0;
  std::uint64_t next_batch_ = 0;
  bool source_done_ = false;
  std::exception_ptr failure_;
  RunSummary summary_;
};

RunnerCore::RunnerCore(Executor& executor, RunnerOptions options)
    : executor_(executor),
      options_(std::move(options)),
      thread_pool_(dynamic_cast<ThreadPool*>(&executor) != nullptr),
      loop_(std::make_shared<Loop>()) {
  const Backoff& b = options_.retries.backoff;
  std::string problems;
  if (b.initial.count() < 0 || b.max.count() < 0) {
    problems += "; retries.backoff.initial and .max must not be negative";
  }
  if (!(b.multiplier >= 1.0)) {
    problems += "; retries.backoff.multiplier must be at least 1 (got " + std::to_string(b.multiplier) + ")";
  }
  if (!(b.jitter >= 0.0 && b.jitter < 1.0)) {
    problems += "; retries.backoff.jitter must be in [0, 1) (got " + std::to_string(b.jitter) + ")";
  }
  if (options_.timeout && options_.timeout->count() <= 0) {
    problems += "; timeout must be positive (got " + std::to_string(options_.timeout->count()) + " ns)";
  }
  if (!problems.empty()) {
    throw ArgumentError("Runner options: " + problems.substr(2));
  }
  const auto* timed = dynamic_cast<TimedSubmit*>(&executor);
  if (options_.timeout && dynamic_cast<ThreadPool*>(&executor) == nullptr &&
      (timed == nullptr || !timed->takes_time_limits())) {
    throw UsageError(
        "Runner: a timeout is enforced on a ThreadPool, a ProcessPool or an MpiPool whose ranks run process pools "
        "only (an executor that implements troupe::TimedSubmit); this executor cannot stop an item");
  }
  window_ =
      options_.window != 0 ? options_.window : kWindowPerWorker * std::max<std::size_t>(1, executor.max_workers());
}

RunnerCore::~RunnerCore() = default;

void RunnerCore::check(const RunWork& work) const {
  if (!work.is_call() && !thread_pool_) {
    throw UsageError("Runner: a C++ callable runs only on a ThreadPool; give this executor a troupe::Call");
  }
  if (!work.is_call() && !work.callable()) {
    throw ArgumentError("Runner: the callable is empty");
  }
}

RunSummary RunnerCore::run(const Source& source, const Sink& sink, const Aborted& aborted, const Describe& describe,
                           std::optional<std::uint64_t> total) {
  {
    std::lock_guard lock(meter_mutex_);
    meter_ = std::make_unique<ProgressMeter>(options_.progress, options_.label, total);
  }
  std::optional<InterruptScope> scope;
  if (options_.handle_interrupts) {
    scope.emplace([this](int count) { stop(count >= 2 ? 2 : 1); });
  }
  RunState state(*this, executor_, options_, loop_, *meter_, in_flight_, window_, sink, aborted, describe);
  struct Finish {
    ProgressMeter& meter;
    ~Finish() { meter.finish(); }
  } finish{*meter_};
  return state.run(source);
}

void RunnerCore::stop(int level) noexcept {
  int seen = stop_level_.load(std::memory_order_acquire);
  while (seen < level && !stop_level_.compare_exchange_weak(seen, level, std::memory_order_acq_rel)) {
  }
  try {
    std::lock_guard lock(loop_->mutex);
    loop_->wake.notify_one();
  } catch (...) {
    // A mutex that cannot lock: the loop still sees the level on its next wake-up.
  }
}

ProgressSnapshot RunnerCore::snapshot() const {
  std::lock_guard lock(meter_mutex_);
  if (!meter_) {
    ProgressSnapshot none;
    none.label = options_.label;
    return none;
  }
  return meter_->snapshot();
}

}  // namespace troupe::detail
