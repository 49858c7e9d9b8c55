// troupe/detail/map_engine.hpp
//
// The machinery behind troupe/map.hpp: the engine that keeps a map's window
// of chunk futures full and hands results out in order (or as completed).
// detail/map_builders.hpp reads the input and builds the plugin-task and
// callable maps on it. Not part of the API.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "troupe/detail/map_chunk.hpp"
#include "troupe/detail/progress_meter.hpp"
#include "troupe/errors.hpp"
#include "troupe/executor.hpp"
#include "troupe/future.hpp"
#include "troupe/outcome.hpp"
#include "troupe/thread_pool.hpp"

// `Options` below is troupe::MapOptions (troupe/map.hpp), a parameter so
// this header stands on its own.
namespace troupe::detail {

inline constexpr std::size_t kMaxAutoChunk = 16384;  // measured: larger chunks fall out of L2
inline constexpr std::int64_t kAutoChunkTargetNs = 200'000;
inline constexpr std::int64_t kWaitSpinNs = 100'000;

template <class R>
using OutcomeChunk = std::vector<Outcome<R>>;

// Drives one map: keeps the window of chunk futures full and hands out
// results in order (or as completed). Subclasses read the input and submit.
template <class R>
class MapEngine {
 public:
  using value_type = R;
  using Values = ChunkValues<R>;
  using Stored = typename Values::Stored;
  using ChunkFuture = std::variant<Future<Values>, Future<OutcomeChunk<R>>>;

  template <class Options>
  MapEngine(const Options& options, std::size_t workers)
      : ordered_(options.ordered),
        deadline_(deadline_after(options.timeout)),
        buffer_(options.buffer_size != 0 ? options.buffer_size : 4 * std::max<std::size_t>(workers, 1)),
        chunk_(options.chunk_size),
        auto_chunk_(options.chunk_size == 0),
        workers_(std::max<std::size_t>(workers, 1)),
        completions_(std::make_shared<Completions>()) {
    if constexpr (requires { options.progress; }) {
      if (options.progress) {
        meter_ = std::make_shared<ProgressMeter>(options.progress, "map", std::nullopt);
      }
    }
  }
  MapEngine(const MapEngine&) = delete;
  MapEngine& operator=(const MapEngine&) = delete;
  virtual ~MapEngine() { cancel(); }

  // Reads and submits everything now (map_all).
  void make_eager() {
    buffer_ = std::numeric_limits<std::size_t>::max();
    start();
    fill();
  }

  // Loads the next non-empty chunk; false at the end. Throws TimeoutError
  // and the input range's error.
  bool next_chunk() { return advance_chunk(); }

  // The current chunk: [data(), data() + size()), and its first failed item
  // at or after `from` (nullptr when none).
  Stored* data() noexcept { return results_.values; }
  std::size_t size() const noexcept { return size_; }
  Stored* error_at_or_after(const Stored* from) noexcept {
    const auto index = static_cast<std::size_t>(from - data());
    while (error_index_ < results_.errors.size() && results_.errors[error_index_].first < index) {
      ++error_index_;
    }
    return error_index_ < results_.errors.size() ? data() + results_.errors[error_index_].first : nullptr;
  }
  // The error of the failed item `at` (found by error_at_or_after).
  [[noreturn]] void throw_error(const Stored* at) {
    static_cast<void>(at);
    std::rethrow_exception(results_.errors[error_index_].second);
  }
  std::exception_ptr error_of(const Stored* /*at*/) const { return results_.errors[error_index_].second; }

  static R& value_of(Stored& stored) noexcept { return Values::value_of(stored); }

  // Every remaining result in input order (the map becomes ordered); throws
  // the first failed item's error in input order and cancels the rest. When
  // the map wrote its results in place (output_), that vector is returned.
  std::vector<R> collect() {
    ordered_ = true;
    std::vector<R> out;
    if (!output_) {
      if (auto n = input_size()) {
        out.reserve(*n);
      }
    }
    while (advance_chunk()) {
      if (Stored* failed = error_at_or_after(data())) {
        auto error = error_of(failed);
        cancel();
        std::rethrow_exception(error);
      }
      if (!output_) {
        for (std::size_t i = 0; i < size_; ++i) {
          out.push_back(std::move(value_of(data()[i])));
        }
      }
    }
    if (output_) {
      return std::move(*output_);
    }
    return out;
  }

  // Waits for every chunk, in input order, handing each chunk's results to
  // `sink(values, count)` (map_into: a callable map's results went straight
  // to the caller's storage and values is null). Throws the first failed
  // item's error in input order, TimeoutError or the input's error, each
  // only once every chunk has ended (cancel() waits for running chunks:
  // wait_on_cancel_).
  template <class Sink>
  void drain(Sink&& sink) {
    ordered_ = true;
    try {
      while (advance_chunk()) {
        if (!results_.errors.empty()) {
          auto error = results_.errors.front().second;
          cancel();
          std::rethrow_exception(error);
        }
        sink(results_.values, size_);
      }
    } catch (...) {
      cancel();
      throw;
    }
  }

  // Cancels every chunk in flight (running ones see the cooperative flag);
  // with wait_on_cancel_, returns once the running ones have ended too.
  void cancel() noexcept {
    for (auto& slot : window_) {
      std::visit([](auto& f) { f.cancel(); }, slot.future);
    }
    if (wait_on_cancel_) {
      for (auto& slot : window_) {
        std::visit([](auto& f) { static_cast<void>(f.wait()); }, slot.future);
      }
    }
    window_.clear();
    finished_ = true;
    input_done_ = true;
    size_ = 0;
    finish_progress();
  }

 protected:
  // Reads up to `n` items and submits them as one chunk; the future and the
  // item count, or nullopt when the input is exhausted.
  virtual std::optional<std::pair<ChunkFuture, std::size_t>> submit_next(std::size_t n) = 0;
  virtual std::optional<std::size_t> input_size() const { return std::nullopt; }

 private:
  // A chunk's items are counted once, by whichever comes first: its done
  // callback (as it completes) or extract() (as the caller takes it; the
  // callback may still be about to run, since waiters wake first).
  enum : std::uint8_t { kUncounted, kCounting, kCounted };
  using CountFlag = std::atomic<std::uint8_t>;
  struct Slot {
    ChunkFuture future;
    std::size_t count = 0;
    std::uint64_t key = 0;
    std::shared_ptr<CountFlag> counted;  // with a progress meter
  };
  struct Completions {
    std::mutex mutex;
    std::condition_variable ready_cv;
    std::deque<std::uint64_t> ready;
  };

  bool advance_chunk() {
    for (;;) {
      if (finished_) {
        size_ = 0;
        finish_progress();
        return false;
      }
      if (window_.empty() && input_error_) {
        // Every item read before the input failed has been yielded: now its error.
        finished_ = true;
        size_ = 0;
        std::rethrow_exception(std::exchange(input_error_, nullptr));
      }
      start();
      fill();
      if (!take_next_chunk()) {
        finished_ = true;
        size_ = 0;
        finish_progress();
        return false;
      }
      if (size_ > 0) {
        return true;
      }
    }
  }

  // Picks the first chunk size (once).
  void start() {
    if (started_) {
      return;
    }
    started_ = true;
    if (meter_) {
      meter_->set_total(input_size());
    }
    if (auto_chunk_) {
      if (auto n = input_size()) {
        chunk_ = std::clamp<std::size_t>((*n + 4 * workers_ - 1) / (4 * workers_), 1, kMaxAutoChunk);
        auto_chunk_ = false;
      } else {
        chunk_ = 1;
      }
    }
  }

  void fill() {
    while (!input_done_ && window_.size() < buffer_) {
      std::optional<std::pair<ChunkFuture, std::size_t>> next;
      try {
        next = submit_next(chunk_);
      } catch (...) {
        // The input is unusable past its error; what is in flight arrives
        // first, then the error reaches the caller (next_chunk()).
        input_done_ = true;
        input_error_ = std::current_exception();
        return;
      }
      if (!next) {
        input_done_ = true;
        return;
      }
      Slot slot{std::move(next->first), next->second, next_key_++, nullptr};
      if (meter_) {
        slot.counted = std::make_shared<CountFlag>(kUncounted);
        std::visit(
            [&](auto& f) {
              f.add_done_callback([meter = meter_, counted = slot.counted, count = slot.count](const auto& done) {
                auto expected = static_cast<std::uint8_t>(kUncounted);
                if (counted->compare_exchange_strong(expected, kCounting)) {
                  count_done(*meter, done, count);
                  counted->store(kCounted, std::memory_order_release);
                }
              });
            },
            slot.future);
      }
      if (!ordered_) {
        std::visit(
            [&](auto& f) {
              f.add_done_callback([done = completions_, key = slot.key](const auto&) {
                std::lock_guard lock(done->mutex);
                done->ready.push_back(key);
                done->ready_cv.notify_one();
              });
            },
            slot.future);
      }
      window_.push_back(std::move(slot));
    }
  }

  // While the chunk due next is not done, runs this map's own queued chunks
  // on the iterating thread (it, else the newest one still pending), as
  // TBB's calling thread takes part: no third thread competing for the
  // cores, and the results it makes are in its cache.
  void help_window(const ChunkFuture& due) {
    auto core_of = [](const ChunkFuture& f) -> FutureCore* {
      return std::visit([](auto& fut) -> FutureCore* { return FutureAccess::core(fut); }, f);
    };
    FutureCore* const due_core = core_of(due);
    while (!due_core->done()) {
      FutureCore* pick = nullptr;
      if (due_core->state() == FutureState::pending) {
        pick = due_core;
      } else {
        for (auto slot = window_.rbegin(); slot != window_.rend(); ++slot) {
          FutureCore* core = core_of(slot->future);
          if (core->state() == FutureState::pending) {
            pick = core;
            break;
          }
        }
      }
      if (pick == nullptr || !ExecutorAccess::try_run_inline(*executor_, *pick)) {
        return;
      }
    }
  }

  [[noreturn]] void time_out() {
    cancel();
    throw TimeoutError("map: the deadline passed before all results arrived; the rest was cancelled");
  }

  bool take_next_chunk() {
    if (window_.empty()) {
      return false;
    }
    auto it = window_.begin();
    if (ordered_ && executor_ != nullptr && !deadline_) {  // a timed wait must be able to time out
      help_window(it->future);
    }
    if (ordered_) {
      // A chunk is due within ~200 µs: poll for a while before sleeping,
      // since waking a sleeping thread costs ~25 µs on a VM, more than a
      // small chunk's work. The clock is read on every turn and the poll
      // never runs past the deadline: under load one yield() can give the
      // core away for a whole time slice.
      std::int64_t spin_until = now_ns() + kWaitSpinNs;
      if (deadline_ && *deadline_ < spin_until) {
        spin_until = *deadline_;
      }
      while (!std::visit([](auto& f) { return f.done(); }, it->future) && now_ns() < spin_until) {
        std::this_thread::yield();
      }
      if (!std::visit([&](auto& f) { return f.wait(remaining()); }, it->future)) {
        time_out();
      }
    } else {
      if (current_wait_helper() != nullptr) {
        // Inside a pool task: wait through the chunks' futures, so the worker
        // runs its own chunks not yet started (or the pool compensates).
        for (;;) {
          {
            std::lock_guard lock(completions_->mutex);
            if (!completions_->ready.empty()) {
              break;
            }
          }
          auto pending = std::find_if(window_.begin(), window_.end(), [](const Slot& s) {
            return !std::visit([](auto& f) { return f.done(); }, s.future);
          });
          if (pending == window_.end()) {
            std::this_thread::yield();  // done; its callback is about to report it
            continue;
          }
          if (!std::visit([&](auto& f) { return f.wait(remaining()); }, pending->future)) {
            time_out();
          }
        }
      }
      std::uint64_t key = 0;
      {
        std::unique_lock lock(completions_->mutex);
        auto ready = [&] {
          return !completions_->ready.empty();
        };
        if (deadline_) {
          if (!completions_->ready_cv.wait_until(lock, as_time_point(*deadline_), ready)) {
            lock.unlock();
            time_out();
          }
        } else {
          completions_->ready_cv.wait(lock, ready);
        }
        key = completions_->ready.front();
        completions_->ready.pop_front();
      }
      it = std::find_if(window_.begin(), window_.end(), [&](const Slot& s) { return s.key == key; });
    }
    Slot slot = std::move(*it);
    window_.erase(it);
    fill();  // top up before the caller consumes, so workers stay busy
    extract(slot);
    return true;
  }

  void extract(Slot& slot) {
    if (recycler_) {
      recycler_->give(std::move(results_.owned));
    }
    results_.owned.clear();
    results_.errors.clear();
    if (slot.counted) {
      // Before the value is moved out: a callback counting it reads it.
      auto expected = static_cast<std::uint8_t>(kUncounted);
      if (slot.counted->compare_exchange_strong(expected, kCounting)) {
        std::visit([&](auto& f) { count_done(*meter_, f, slot.count); }, slot.future);
        slot.counted->store(kCounted, std::memory_order_release);
      } else {
        while (slot.counted->load(std::memory_order_acquire) != kCounted) {
          std::this_thread::yield();  // the callback is counting a few numbers
        }
      }
    }
    std::visit([&](auto& f) { extract_from(f, slot.count); }, slot.future);
    size_ = results_.count;
    error_index_ = 0;
    if (auto_chunk_ && slot.count > 0) {
      const auto ran = std::visit([](auto& f) { return f.running_time().count(); }, slot.future);
      const auto per_item = std::max<std::int64_t>(1, ran / static_cast<std::int64_t>(slot.count));
      const auto wanted = static_cast<std::size_t>(std::max<std::int64_t>(1, kAutoChunkTargetNs / per_item));
      chunk_ = std::clamp<std::size_t>(wanted, 1, std::min(kMaxAutoChunk, chunk_ * 4));
    }
  }

  // The chunk as a whole failed or was cancelled: each of its items carries that.
  template <class F>
  void fail_all(F& future, std::size_t count) {
    std::exception_ptr error;
    try {
      future.get();
    } catch (...) {
      error = std::current_exception();
    }
    results_.owned.resize(count);
    results_.values = results_.owned.data();
    results_.count = count;
    for (std::size_t i = 0; i < count; ++i) {
      results_.errors.emplace_back(i, error);
    }
  }

  void extract_from(Future<Values>& future, std::size_t count) {
    if (future.state() != FutureState::done) {
      fail_all(future, count);
      return;
    }
    results_ = std::move(FutureAccess::core(future)->value());
  }

  void extract_from(Future<OutcomeChunk<R>>& future, std::size_t count) {
    if (future.state() != FutureState::done) {
      fail_all(future, count);
      return;
    }
    auto& outcomes = FutureAccess::core(future)->value();
    results_.owned.resize(outcomes.size());
    results_.values = results_.owned.data();
    results_.count = outcomes.size();
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
      if (outcomes[i].ok()) {
        Values::store(results_.values[i], std::move(outcomes[i]).value());
      } else {
        results_.errors.emplace_back(i, outcomes[i].error());
      }
    }
  }

  // A completed chunk's items, ok or failed (all failed when the chunk as a
  // whole did; none when it was cancelled: those items never ended).
  static void count_done(ProgressMeter& meter, const Future<Values>& f, std::size_t count) {
    if (f.state() == FutureState::cancelled) {
      return;
    }
    if (f.state() != FutureState::done) {
      meter.add_failed(count);
      return;
    }
    const Values& values = FutureAccess::core(f)->value();
    meter.add_failed(values.errors.size());
    meter.add_ok(values.count - values.errors.size());
  }
  static void count_done(ProgressMeter& meter, const Future<OutcomeChunk<R>>& f, std::size_t count) {
    if (f.state() == FutureState::cancelled) {
      return;
    }
    if (f.state() != FutureState::done) {
      meter.add_failed(count);
      return;
    }
    std::size_t ok = 0;
    const auto& outcomes = FutureAccess::core(f)->value();
    for (const auto& o : outcomes) {
      ok += o.ok() ? 1 : 0;
    }
    meter.add_ok(ok);
    meter.add_failed(outcomes.size() - ok);
  }

  void finish_progress() {
    if (meter_) {
      meter_->finish();
    }
  }

  Timeout remaining() const {
    if (!deadline_) {
      return std::nullopt;
    }
    return std::chrono::nanoseconds(std::max<std::int64_t>(0, *deadline_ - now_ns()));
  }
  static Clock::time_point as_time_point(std::int64_t ns) {
    return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
  }

  std::size_t size_ = 0;
  std::size_t error_index_ = 0;
  Values results_;

  bool ordered_;
  Deadline deadline_;
  std::size_t buffer_;
  std::size_t chunk_;
  bool auto_chunk_;
  std::size_t workers_;
  bool started_ = false;
  bool input_done_ = false;
  bool finished_ = false;
  std::exception_ptr input_error_;
  std::deque<Slot> window_;
  std::uint64_t next_key_ = 0;
  std::shared_ptr<Completions> completions_;
  std::shared_ptr<ProgressMeter> meter_;  // with MapOptions::progress

 public:
  std::shared_ptr<ValueRecycler<R>> recycler_;  // set by callable maps
  Executor* executor_ = nullptr;                // callable maps: runs queued chunks inline instead of blocking
  std::shared_ptr<std::vector<R>> output_;      // map_all over a sized input: chunks write their results here
  bool wait_on_cancel_ = false;                 // map_into: chunks write into storage the caller owns
};

}  // namespace troupe::detail
