// troupe/map.hpp
//
// The map family, written once for every Executor: apply a plugin task (any
// pool) or a C++ callable (ThreadPool) to each item of a range.
//
//   for (auto v : troupe::map(pool, [](int x) { return x * 2; }, std::views::iota(0, 100))) ...
//   for (auto& o : troupe::map(pool, "testing.double", items).outcomes()) o.ok() ? ... : ...;
//
// Guarantees: map()/starmap() are lazy: nothing is read or submitted until
// begin(), then at most `buffer_size` chunks are in flight, and the next
// input is read only as results are consumed (memory stays flat on an
// endless input). map_all()/starmap_all() read and submit everything at the
// call. Results come in input order (ordered, the default) or as chunks
// complete. An item's error is rethrown when its result is dereferenced
// (`*it`), or captured as an Outcome with outcomes(); either way `++it`
// goes on past it. Dropping the range cancels every chunk not yet started
// (running chunks see TaskContext::cancelled()). `timeout` is a deadline
// from the map call: the wait that passes it cancels everything left and
// throws TimeoutError; the range then ends. An exception thrown by the input
// range itself reaches the caller from begin() or ++; chunks already in
// flight still arrive after it.
// Defaults: chunk_size 0 = automatic (sized input: n / (4 * max_workers),
// capped at 16384; unsized input: adaptive, starting at 1 and aiming at
// ~200 µs of work per chunk); buffer_size 0 = 4 * max_workers chunks.
// Thread safety: a map range is used by one thread at a time.
// Hazards: the input range is read on the iterating thread and must outlive
// the iteration (items are copied into chunks, so it need not outlive the
// work). A callable is copied once and shared by the chunks that run it.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
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

#include <tbb/scalable_allocator.h>

#include "troupe/errors.hpp"
#include "troupe/executor.hpp"
#include "troupe/future.hpp"
#include "troupe/outcome.hpp"
#include "troupe/thread_pool.hpp"

namespace troupe {

struct MapOptions {
  std::size_t chunk_size = 0;   // items per task; 0: automatic
  std::size_t buffer_size = 0;  // chunks in flight; 0: 4 * max_workers
  bool ordered = true;          // input order; false: as chunks complete
  Timeout timeout{};            // deadline from the map call; nullopt: none
};

namespace detail {

inline constexpr std::size_t kMaxAutoChunk = 16384;  // measured: larger chunks fall out of L2
inline constexpr std::int64_t kAutoChunkTargetNs = 200'000;
inline constexpr std::int64_t kWaitSpinNs = 100'000;

// Default-initialises on resize(n) (no zeroing pass for trivial types): a
// chunk's slots are all assigned, or marked failed and never read.
// On tbbmalloc: it keeps freed chunk buffers for reuse, where glibc hands
// 128 KiB blocks back to the system and pays a page fault per 4 KiB again.
template <class T>
struct DefaultInitAllocator : tbb::scalable_allocator<T> {
  using value_type = T;
  template <class U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  DefaultInitAllocator() noexcept = default;
  template <class U>
  DefaultInitAllocator(const DefaultInitAllocator<U>& /*other*/) noexcept {}  // NOLINT(google-explicit-constructor)
  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... A>
  void construct(U* p, A&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<A>(args)...);
  }
};

// One chunk's results, contiguous, with the (rare) failed items on the side.
template <class R>
struct ChunkValues {
  using Stored =
      std::conditional_t<std::is_default_constructible_v<R> && std::is_move_assignable_v<R>, R, std::optional<R>>;
  std::vector<Stored, DefaultInitAllocator<Stored>> values;
  std::vector<std::pair<std::size_t, std::exception_ptr>> errors;  // by ascending index
};

template <class R>
using OutcomeChunk = std::vector<Outcome<R>>;

// Result buffers handed back by the consumer for the next chunks: a map
// allocates its window's buffers once instead of once per chunk (large fresh
// allocations cost a page fault per 4 KiB).
template <class R>
class ValueRecycler {
 public:
  using Buffer = decltype(ChunkValues<R>::values);
  explicit ValueRecycler(std::size_t keep) : keep_(keep) {}
  Buffer take() {
    std::lock_guard lock(mutex_);
    if (free_.empty()) {
      return {};
    }
    Buffer b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  void give(Buffer&& b) {
    if (b.capacity() == 0) {
      return;
    }
    b.clear();
    std::lock_guard lock(mutex_);
    if (free_.size() < keep_) {
      free_.push_back(std::move(b));
    }
  }

 private:
  std::mutex mutex_;
  std::vector<Buffer> free_;
  std::size_t keep_;
};

// Drives one map: keeps the window of chunk futures full and hands out
// results in order (or as completed). Subclasses read the input and submit.
template <class R>
class MapEngine {
 public:
  using Values = ChunkValues<R>;
  using ChunkFuture = std::variant<Future<Values>, Future<OutcomeChunk<R>>>;

  MapEngine(const MapOptions& options, std::size_t workers)
      : ordered_(options.ordered),
        deadline_(deadline_after(options.timeout)),
        buffer_(options.buffer_size != 0 ? options.buffer_size : 4 * std::max<std::size_t>(workers, 1)),
        chunk_(options.chunk_size),
        auto_chunk_(options.chunk_size == 0),
        workers_(std::max<std::size_t>(workers, 1)),
        completions_(std::make_shared<Completions>()) {}
  MapEngine(const MapEngine&) = delete;
  MapEngine& operator=(const MapEngine&) = delete;
  virtual ~MapEngine() { cancel(); }

  // Reads and submits everything now (map_all).
  void make_eager() {
    buffer_ = std::numeric_limits<std::size_t>::max();
    start();
    fill();
  }

  using Stored = typename Values::Stored;

  // Loads the next non-empty chunk; false at the end. Throws TimeoutError
  // and the input range's error.
  bool next_chunk() { return advance_chunk(); }

  // The current chunk: [data(), data() + size()), and its first failed item
  // at or after `from` (nullptr when none).
  Stored* data() noexcept { return results_.values.data(); }
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

  static R& value_of(Stored& stored) noexcept {
    if constexpr (std::is_same_v<Stored, R>) {
      return stored;
    } else {
      return *stored;
    }
  }

  // Cancels every chunk in flight (running ones see the cooperative flag).
  void cancel() noexcept {
    for (auto& slot : window_) {
      std::visit([](auto& f) { f.cancel(); }, slot.future);
    }
    window_.clear();
    finished_ = true;
    input_done_ = true;
    size_ = 0;
  }

 protected:
  // Reads up to `n` items and submits them as one chunk; the future and the
  // item count, or nullopt when the input is exhausted.
  virtual std::optional<std::pair<ChunkFuture, std::size_t>> submit_next(std::size_t n) = 0;
  virtual std::optional<std::size_t> input_size() const { return std::nullopt; }

 private:
  struct Slot {
    ChunkFuture future;
    std::size_t count = 0;
    std::uint64_t key = 0;
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
      Slot slot{std::move(next->first), next->second, next_key_++};
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
    auto core_of = [](const ChunkFuture& f) {
      return std::visit([](auto& fut) { return fut.core_ptr(); }, f);
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
      if (pick == nullptr || !inline_pool_->run_here(*pick)) {
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
    if (ordered_ && inline_pool_ != nullptr && !deadline_) {  // a timed wait must be able to time out
      help_window(it->future);
    }
    if (ordered_) {
      // A chunk is due within ~200 µs: poll for a while before sleeping,
      // since waking a sleeping thread costs ~25 µs on a VM, more than a
      // small chunk's work.
      const auto spin_until = now_ns() + kWaitSpinNs;
      for (int i = 0; !std::visit([](auto& f) { return f.done(); }, it->future); ++i) {
        if ((i & 15) == 15 && now_ns() >= spin_until) {
          break;
        }
        std::this_thread::yield();
      }
      if (!std::visit([&](auto& f) { return f.wait(remaining()); }, it->future)) {
        time_out();
      }
    } else {
      if (current_wait_helper() != nullptr) {
        // Inside a pool task: wait through the chunks' futures, so the worker
        // runs queued work (these chunks included) instead of blocking.
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
      recycler_->give(std::move(results_.values));
    }
    results_.errors.clear();
    std::visit([&](auto& f) { extract_from(f, slot.count); }, slot.future);
    size_ = std::holds_alternative<Future<Values>>(slot.future) ? results_.values.size() : slot.count;
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
    results_.values.clear();
    results_.values.resize(count);
    for (std::size_t i = 0; i < count; ++i) {
      results_.errors.emplace_back(i, error);
    }
  }

  void extract_from(Future<Values>& future, std::size_t count) {
    if (future.state() != FutureState::done) {
      fail_all(future, count);
      return;
    }
    results_ = std::move(static_cast<FutureData<Values>*>(future.core_ptr())->value());
  }

  void extract_from(Future<OutcomeChunk<R>>& future, std::size_t count) {
    if (future.state() != FutureState::done) {
      fail_all(future, count);
      return;
    }
    auto& outcomes = static_cast<FutureData<OutcomeChunk<R>>*>(future.core_ptr())->value();
    results_.values.clear();
    results_.values.resize(outcomes.size());
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
      if (outcomes[i].ok()) {
        results_.values[i] = std::move(outcomes[i]).value();
      } else {
        results_.errors.emplace_back(i, outcomes[i].error());
      }
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

 public:
  std::shared_ptr<ValueRecycler<R>> recycler_;  // set by callable maps
  ThreadPool* inline_pool_ = nullptr;           // callable maps: runs queued chunks while waiting
};

// Reads a range on the caller's thread. Copying mode: `convert` turns each
// item into a chunk element and `submit` sends the vector. In-place mode
// (a sized random-access range the map owns, callable maps): `submit` gets a
// shared view and an index range, and workers read the items themselves;
// chunks share ownership of the view, so dropping the map never waits.
template <class R, class View, class Elem, class Convert, class Submit, bool InPlace>
class RangeMapEngine final : public MapEngine<R> {
 public:
  using typename MapEngine<R>::ChunkFuture;

  RangeMapEngine(View view, Convert convert, Submit submit, const MapOptions& options, std::size_t workers)
      : MapEngine<R>(options, workers),
        view_(std::make_shared<View>(std::move(view))),
        convert_(std::move(convert)),
        submit_(std::move(submit)) {}

 protected:
  std::optional<std::pair<ChunkFuture, std::size_t>> submit_next(std::size_t n) override {
    if constexpr (InPlace) {
      const auto total = static_cast<std::size_t>(std::ranges::size(*view_));
      if (offset_ >= total) {
        return std::nullopt;
      }
      const auto count = std::min(n, total - offset_);
      auto future = submit_(std::shared_ptr<const View>(view_), offset_, count);
      offset_ += count;
      return std::pair{ChunkFuture(std::move(future)), count};
    } else {
      if (!begun_) {
        it_ = std::ranges::begin(*view_);
        begun_ = true;
      }
      if (it_ == std::ranges::end(*view_)) {
        return std::nullopt;
      }
      std::vector<Elem> items;
      items.reserve(n);
      for (; items.size() < n && it_ != std::ranges::end(*view_); ++it_) {
        items.push_back(convert_(*it_));
      }
      const auto count = items.size();
      return std::pair{ChunkFuture(submit_(std::move(items))), count};
    }
  }
  std::optional<std::size_t> input_size() const override {
    if constexpr (std::ranges::sized_range<View>) {
      return static_cast<std::size_t>(std::ranges::size(*view_));
    } else {
      return std::nullopt;
    }
  }

 private:
  std::shared_ptr<View> view_;
  Convert convert_;
  Submit submit_;
  bool begun_ = false;
  std::size_t offset_ = 0;
  std::ranges::iterator_t<View> it_{};
};

template <class T>
struct is_tuple_like : std::false_type {};
template <class... T>
struct is_tuple_like<std::tuple<T...>> : std::true_type {};
template <class A, class B>
struct is_tuple_like<std::pair<A, B>> : std::true_type {};
template <class T, std::size_t N>
struct is_tuple_like<std::array<T, N>> : std::true_type {};

// A starmap item as plugin-call arguments: Args as is, a tuple element-wise.
template <class Item>
Args to_args(Item&& item) {
  using D = std::remove_cvref_t<Item>;
  if constexpr (std::is_same_v<D, Args>) {
    return std::forward<Item>(item);
  } else if constexpr (is_tuple_like<D>::value) {
    return std::apply([](auto&&... v) { return Args{Value(std::forward<decltype(v)>(v))...}; },
                      std::forward<Item>(item));
  } else {
    static_assert(std::is_same_v<D, Value>,
                  "starmap items are troupe::Args, tuples, pairs or arrays (or Value arrays)");
    return item.template get<Args>();
  }
}

// Applies `fn` to items [0, count) given by `input(k)`, block by block, so a
// simple `fn` vectorises; an item's exception is recorded and the rest go on.
template <class R, bool Star, class F, class Input>
ChunkValues<R> run_chunk(F& fn, std::size_t count, Input&& input, TaskContext& ctx, ValueRecycler<R>& recycler) {
  ChunkValues<R> out;
  out.values = recycler.take();
  out.values.resize(count);
  constexpr std::size_t kBlock = 256;
  std::size_t k = 0;
  auto call = [&](std::size_t i) -> R {
    if constexpr (Star) {
      return std::apply(fn, input(i));
    } else {
      return std::invoke(fn, input(i));
    }
  };
  while (k < count) {
    try {
      while (k < count) {
        if (ctx.cancelled()) {
          for (; k < count; ++k) {
            out.errors.emplace_back(k, std::make_exception_ptr(CancelledError("map item cancelled")));
          }
          break;
        }
        const std::size_t block_end = std::min(count, k + kBlock);
        for (; k < block_end; ++k) {
          out.values[k] = call(k);
        }
      }
    } catch (...) {
      out.errors.emplace_back(k, std::current_exception());
      ++k;
    }
  }
  return out;
}

}  // namespace detail

// The lazy result of a map. An input range; its iterator dereferences to the
// item's value (rethrowing its error). outcomes() views the same results as
// Outcome<R> values instead.
template <class R>
class MapRange {
 public:
  class iterator {
   public:
    using value_type = R;
    using difference_type = std::ptrdiff_t;
    using iterator_concept = std::input_iterator_tag;
    using iterator_category = std::input_iterator_tag;
    using reference = R&;

    iterator() = default;
    // Positioned on the engine's current chunk (which must not be empty).
    explicit iterator(detail::MapEngine<R>* engine) : engine_(engine) { load(); }

    // The item's value; throws the item's error (iteration may go on).
    R& operator*() const {
      if (cur_ == err_) [[unlikely]] {
        engine_->throw_error(cur_);
      }
      return Engine::value_of(*cur_);
    }
    R* operator->() const { return &**this; }
    // The item as an Outcome, value (moved out) or error, without throwing.
    Outcome<R> outcome() const {
      if (cur_ == err_) {
        return Outcome<R>(engine_->error_of(cur_));
      }
      return Outcome<R>(std::move(Engine::value_of(*cur_)));
    }

    iterator& operator++() {
      if (cur_ == err_) [[unlikely]] {
        err_ = engine_->error_at_or_after(cur_ + 1);
      }
      if (++cur_ == end_) [[unlikely]] {
        bool more = false;
        try {
          more = engine_->next_chunk();
        } catch (...) {
          engine_ = nullptr;  // a timeout or the input's error ends the iteration
          throw;
        }
        if (more) {
          load();
        } else {
          engine_ = nullptr;
        }
      }
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return it.engine_ == nullptr; }

   private:
    using Engine = detail::MapEngine<R>;
    using Stored = typename Engine::Stored;

    void load() {
      cur_ = engine_->data();
      end_ = cur_ + engine_->size();
      err_ = engine_->error_at_or_after(cur_);
    }

    Engine* engine_ = nullptr;
    Stored* cur_ = nullptr;
    Stored* end_ = nullptr;
    Stored* err_ = nullptr;
  };

  // Yields Outcome<R> (by value) for each item.
  class OutcomeView {
   public:
    class iterator {
     public:
      using value_type = Outcome<R>;
      using difference_type = std::ptrdiff_t;
      using iterator_concept = std::input_iterator_tag;
      using iterator_category = std::input_iterator_tag;
      using reference = Outcome<R>;

      iterator() = default;
      explicit iterator(typename MapRange::iterator it) : it_(it) {}
      Outcome<R> operator*() const { return it_.outcome(); }
      iterator& operator++() {
        ++it_;
        return *this;
      }
      void operator++(int) { ++*this; }
      friend bool operator==(const iterator& it, std::default_sentinel_t s) noexcept { return it.it_ == s; }

     private:
      typename MapRange::iterator it_;
    };

    explicit OutcomeView(MapRange* range) : range_(range) {}
    explicit OutcomeView(MapRange&& range)
        : owned_(std::make_unique<MapRange>(std::move(range))), range_(owned_.get()) {}
    iterator begin() { return iterator(range_->begin()); }
    std::default_sentinel_t end() const noexcept { return {}; }

   private:
    std::unique_ptr<MapRange> owned_;  // when made from a temporary range
    MapRange* range_;
  };

  explicit MapRange(std::unique_ptr<detail::MapEngine<R>> engine) : engine_(std::move(engine)) {}

  // The first result (waiting for it). Throws TimeoutError, and what the
  // input range throws. An input range: call it once.
  iterator begin() {
    if (begun_) {
      throw UsageError("a map range is an input range: begin() may be called once");
    }
    begun_ = true;
    return engine_->next_chunk() ? iterator(engine_.get()) : iterator();
  }
  std::default_sentinel_t end() const noexcept { return {}; }

  OutcomeView outcomes() & { return OutcomeView(this); }
  OutcomeView outcomes() && { return OutcomeView(std::move(*this)); }

  // Every remaining value, in iteration order; throws the first item error.
  std::vector<R> to_vector() {
    std::vector<R> out;
    for (auto& v : *this) {
      out.push_back(std::move(v));
    }
    return out;
  }

  // Cancels what has not started; the range then ends.
  void cancel() noexcept { engine_->cancel(); }

 private:
  std::unique_ptr<detail::MapEngine<R>> engine_;
  bool begun_ = false;
};

namespace detail {

template <class R, class Range, class Elem, bool InPlace, class Convert, class Submit>
MapRange<R> make_map(Range&& range, Convert convert, Submit submit, const MapOptions& options, std::size_t workers,
                     bool eager, std::shared_ptr<ValueRecycler<R>> recycler = nullptr,
                     ThreadPool* inline_pool = nullptr) {
  using View = std::views::all_t<Range>;
  auto engine = std::make_unique<RangeMapEngine<R, View, Elem, Convert, Submit, InPlace>>(
      std::views::all(std::forward<Range>(range)), std::move(convert), std::move(submit), options, workers);
  engine->recycler_ = std::move(recycler);
  engine->inline_pool_ = inline_pool;
  if (eager) {
    engine->make_eager();
  }
  return MapRange<R>(std::move(engine));
}

template <bool Star, class Range>
MapRange<Value> executor_map(Executor& executor, std::string task, Range&& range, const MapOptions& options,
                             bool eager) {
  auto submit = [&executor, task](std::vector<Args>&& items) {
    return executor.submit_chunk(task, std::move(items));
  };
  auto convert = [](auto&& item) {
    if constexpr (Star) {
      return to_args(std::forward<decltype(item)>(item));
    } else {
      return Args{Value(std::forward<decltype(item)>(item))};
    }
  };
  return make_map<Value, Range, Args, false>(std::forward<Range>(range), convert, submit, options,
                                             executor.max_workers(), eager);
}

template <bool Star, class Fn, class Elem>
struct map_result {
  using type = std::invoke_result_t<Fn&, Elem&>;
};
template <class Fn, class Elem>
struct map_result<true, Fn, Elem> {
  using type = decltype(std::apply(std::declval<Fn&>(), std::declval<Elem&>()));
};

template <bool Star, class F, class Range>
auto pool_map(ThreadPool& pool, F&& fn, Range&& range, const MapOptions& options, bool eager) {
  using Elem = std::remove_cvref_t<std::ranges::range_reference_t<Range>>;
  using Fn = std::decay_t<F>;
  using R = typename map_result<Star, Fn, Elem>::type;
  using View = std::views::all_t<Range>;
  static_assert(!std::is_void_v<R>, "map needs a function that returns a value; use submit() for void work");
  static_assert(!std::is_reference_v<R>, "map needs a function that returns a value, not a reference");
  auto shared_fn = std::make_shared<Fn>(std::forward<F>(fn));
  auto recycler = std::make_shared<ValueRecycler<R>>(options.buffer_size != 0 ? options.buffer_size + 2
                                                                              : 4 * pool.max_workers() + 2);
  auto convert = [](auto&& item) -> Elem {
    return std::forward<decltype(item)>(item);
  };
  if constexpr (!std::is_lvalue_reference_v<Range> && std::ranges::random_access_range<const View> &&
                std::ranges::sized_range<const View>) {
    // The map owns the view (an rvalue range): workers read the items in place.
    auto submit = [&pool, shared_fn, recycler](std::shared_ptr<const View> view, std::size_t offset,
                                               std::size_t count) {
      return pool.submit([shared_fn, recycler, view, offset, count](TaskContext& ctx) {
        auto first = std::ranges::begin(*view) + static_cast<std::ranges::range_difference_t<const View>>(offset);
        return run_chunk<R, Star>(
            *shared_fn, count,
            [&](std::size_t k) -> decltype(auto) {
              return first[static_cast<std::ranges::range_difference_t<const View>>(k)];
            },
            ctx, *recycler);
      });
    };
    return make_map<R, Range, Elem, true>(std::forward<Range>(range), convert, submit, options, pool.max_workers(),
                                          eager, recycler, &pool);
  } else {
    auto submit = [&pool, shared_fn, recycler](std::vector<Elem>&& items) {
      return pool.submit([shared_fn, recycler, items = std::move(items)](TaskContext& ctx) mutable {
        return run_chunk<R, Star>(
            *shared_fn, items.size(), [&](std::size_t k) -> Elem& { return items[k]; }, ctx, *recycler);
      });
    };
    return make_map<R, Range, Elem, false>(std::forward<Range>(range), convert, submit, options, pool.max_workers(),
                                           eager, recycler, &pool);
  }
}

template <class F, class Range>
concept MapCallable = std::ranges::input_range<Range> && std::invocable < std::decay_t<F>
&, std::remove_cvref_t<std::ranges::range_reference_t<Range>>& > ;

template <class F, class Elem>
concept ApplicableTo = requires(std::decay_t<F>& f, Elem& t) {
  std::apply(f, t);
};

template <class F, class Range>
concept StarmapCallable = std::ranges::input_range<Range> &&
    is_tuple_like<std::remove_cvref_t<std::ranges::range_reference_t<Range>>>::value &&
    ApplicableTo<F, std::remove_cvref_t<std::ranges::range_reference_t<Range>>>;

}  // namespace detail

// ---- plugin tasks, any executor (one chunk = one submit_chunk) ----------------

// task(item) for each item (the item is the single positional argument).
template <std::ranges::input_range Range>
MapRange<Value> map(Executor& executor, std::string task, Range&& items, const MapOptions& options = {}) {
  return detail::executor_map<false>(executor, std::move(task), std::forward<Range>(items), options, false);
}
// task(args...) for each item: troupe::Args, or a tuple/pair/array of values.
template <std::ranges::input_range Range>
MapRange<Value> starmap(Executor& executor, std::string task, Range&& items, const MapOptions& options = {}) {
  return detail::executor_map<true>(executor, std::move(task), std::forward<Range>(items), options, false);
}
// Eager: reads and submits every item now.
template <std::ranges::input_range Range>
MapRange<Value> map_all(Executor& executor, std::string task, Range&& items, const MapOptions& options = {}) {
  return detail::executor_map<false>(executor, std::move(task), std::forward<Range>(items), options, true);
}
template <std::ranges::input_range Range>
MapRange<Value> starmap_all(Executor& executor, std::string task, Range&& items, const MapOptions& options = {}) {
  return detail::executor_map<true>(executor, std::move(task), std::forward<Range>(items), options, true);
}

// ---- C++ callables on a ThreadPool -------------------------------------------

template <class F, class Range>
requires detail::MapCallable<F, Range>
auto map(ThreadPool& pool, F&& fn, Range&& items, const MapOptions& options = {}) {
  return detail::pool_map<false>(pool, std::forward<F>(fn), std::forward<Range>(items), options, false);
}
template <class F, class Range>
requires detail::StarmapCallable<F, Range>
auto starmap(ThreadPool& pool, F&& fn, Range&& items, const MapOptions& options = {}) {
  return detail::pool_map<true>(pool, std::forward<F>(fn), std::forward<Range>(items), options, false);
}
template <class F, class Range>
requires detail::MapCallable<F, Range>
auto map_all(ThreadPool& pool, F&& fn, Range&& items, const MapOptions& options = {}) {
  return detail::pool_map<false>(pool, std::forward<F>(fn), std::forward<Range>(items), options, true);
}
template <class F, class Range>
requires detail::StarmapCallable<F, Range>
auto starmap_all(ThreadPool& pool, F&& fn, Range&& items, const MapOptions& options = {}) {
  return detail::pool_map<true>(pool, std::forward<F>(fn), std::forward<Range>(items), options, true);
}

// Manual chunking (asyncpal's split_map_task): one zero-argument task per
// chunk of `chunk_size` items, each returning its chunk's results in order
// (an item's exception propagates from its task). Submit them yourself.
template <class F, std::ranges::input_range Range>
auto split_map_task(F fn, Range&& items, std::size_t chunk_size) {
  using Elem = std::remove_cvref_t<std::ranges::range_reference_t<Range>>;
  using R = std::invoke_result_t<F&, Elem&>;
  if (chunk_size == 0) {
    throw ArgumentError("split_map_task: chunk_size must be at least 1");
  }
  auto shared_fn = std::make_shared<F>(std::move(fn));
  std::vector<std::function<std::vector<R>()>> tasks;
  std::vector<Elem> chunk;
  auto flush = [&] {
    tasks.emplace_back([shared_fn, chunk = std::move(chunk)]() mutable {
      std::vector<R> out;
      out.reserve(chunk.size());
      for (auto& item : chunk) {
        out.push_back(std::invoke(*shared_fn, item));
      }
      return out;
    });
    chunk = {};
  };
  for (auto&& item : items) {
    chunk.push_back(std::forward<decltype(item)>(item));
    if (chunk.size() == chunk_size) {
      flush();
    }
  }
  if (!chunk.empty()) {
    flush();
  }
  return tasks;
}

}  // namespace troupe
