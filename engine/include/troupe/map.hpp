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
// Collecting: map_all(...).values() returns every result as a std::vector in
// input order, or throws the first failed item's error (in input order) and
// cancels the rest; a callable map_all over a sized input writes each result
// straight into that vector. map_into(pool, fn, sized_input, span) writes
// each result into the caller's storage and returns (or throws) only once no
// chunk can write there any more.
// A callable may take a TaskContext& first (fn(ctx, item)): ctx.worker() is
// the worker running the chunk, ctx.cancelled() turns true when the map is
// dropped or times out.
// Thread safety: a map range is used by one thread at a time.
// Hazards: the input range is read on the iterating thread and must outlive
// the iteration (items are copied into chunks, so it need not outlive the
// work). A callable is copied once and shared by the chunks that run it.
#pragma once

#include <cstddef>
#include <functional>
#include <iterator>
#include <memory>
#include <ranges>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "troupe/detail/map_builders.hpp"
#include "troupe/detail/map_engine.hpp"
#include "troupe/errors.hpp"
#include "troupe/executor.hpp"
#include "troupe/future.hpp"
#include "troupe/outcome.hpp"
#include "troupe/progress.hpp"
#include "troupe/thread_pool.hpp"

namespace troupe {

struct MapOptions {
  std::size_t chunk_size = 0;   // items per task; 0: automatic
  std::size_t buffer_size = 0;  // chunks in flight; 0: 4 * max_workers
  bool ordered = true;          // input order; false: as chunks complete
  Timeout timeout{};            // deadline from the map call; nullopt: none
  Progress progress{};          // items counted as their chunks complete; none by default
};

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

  // Every result in input order (also for an unordered map); throws the
  // first failed item's error in input order and cancels the rest. Call it
  // instead of iterating (UsageError after begin()).
  std::vector<R> values() {
    if (begun_) {
      throw UsageError("map: values() collects the whole map; it cannot follow begin()");
    }
    begun_ = true;
    return engine_->collect();
  }

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
template <class R>
MapRange<R> as_range(std::unique_ptr<MapEngine<R>> engine) {
  return MapRange<R>(std::move(engine));
}
}  // namespace detail

// ---- plugin tasks, any executor (one chunk = one submit_chunk) ----------------

// task(item) for each item (the item is the single positional argument).
template <std::ranges::input_range Range>
MapRange<Value> map(Executor& executor, std::string task, Range&& items, const MapOptions& options = {}) {
  return MapRange<Value>(
      detail::executor_map<false>(executor, std::move(task), std::forward<Range>(items), options, false));
}
// task(args...) for each item: troupe::Args, or a tuple/pair/array of values.
template <std::ranges::input_range Range>
MapRange<Value> starmap(Executor& executor, std::string task, Range&& items, const MapOptions& options = {}) {
  return MapRange<Value>(
      detail::executor_map<true>(executor, std::move(task), std::forward<Range>(items), options, false));
}
// Eager: reads and submits every item now.
template <std::ranges::input_range Range>
MapRange<Value> map_all(Executor& executor, std::string task, Range&& items, const MapOptions& options = {}) {
  return MapRange<Value>(
      detail::executor_map<false>(executor, std::move(task), std::forward<Range>(items), options, true));
}
template <std::ranges::input_range Range>
MapRange<Value> starmap_all(Executor& executor, std::string task, Range&& items, const MapOptions& options = {}) {
  return MapRange<Value>(
      detail::executor_map<true>(executor, std::move(task), std::forward<Range>(items), options, true));
}

// ---- C++ callables on a ThreadPool -------------------------------------------

template <class F, class Range>
requires detail::MapCallable<F, Range>
auto map(ThreadPool& pool, F&& fn, Range&& items, const MapOptions& options = {}) {
  return detail::as_range(
      detail::pool_map<false>(pool, std::forward<F>(fn), std::forward<Range>(items), options, false));
}
template <class F, class Range>
requires detail::StarmapCallable<F, Range>
auto starmap(ThreadPool& pool, F&& fn, Range&& items, const MapOptions& options = {}) {
  return detail::as_range(
      detail::pool_map<true>(pool, std::forward<F>(fn), std::forward<Range>(items), options, false));
}
template <class F, class Range>
requires detail::MapCallable<F, Range>
auto map_all(ThreadPool& pool, F&& fn, Range&& items, const MapOptions& options = {}) {
  return detail::as_range(
      detail::pool_map<false>(pool, std::forward<F>(fn), std::forward<Range>(items), options, true));
}
template <class F, class Range>
requires detail::StarmapCallable<F, Range>
auto starmap_all(ThreadPool& pool, F&& fn, Range&& items, const MapOptions& options = {}) {
  return detail::as_range(detail::pool_map<true>(pool, std::forward<F>(fn), std::forward<Range>(items), options, true));
}

// ---- collecting into the caller's storage --------------------------------------

// fn(item) for each item of a sized input, assigned to out[i] for the i-th
// item by the chunks themselves (no buffer between them and `out`); the
// input is read in place (it outlives the call). Returns once every chunk
// has ended. Throws ArgumentError when out.size() differs from the input's
// size, else the first failed item's error in input order (cancelling what
// has not started), TimeoutError or the input's error; never while a chunk
// may still write into `out`: running chunks are waited for first, and the
// slots of failed or unfinished items are left as they were.
template <class F, std::ranges::sized_range Range, class T>
requires detail::MapCallable<F, Range>
void map_into(ThreadPool& pool, F&& fn, Range&& items, std::span<T> out, const MapOptions& options = {}) {
  using Elem = std::remove_cvref_t<std::ranges::range_reference_t<Range>>;
  using R = typename detail::map_result<false, std::decay_t<F>, Elem>::type;
  static_assert(std::is_assignable_v<T&, R>,
                "map_into: the callable's result must be assignable to the span's element");
  detail::check_into_size(std::ranges::size(items), out.size());
  detail::pool_map<false>(pool, std::forward<F>(fn), std::views::all(std::forward<Range>(items)), options, true,
                          out.data())
      ->drain([](const auto* /*values*/, std::size_t /*count*/) {});
}

// The same for a plugin task on any Executor: each chunk's values are moved
// into `out` on the calling thread as the chunk completes.
template <std::ranges::sized_range Range>
void map_into(Executor& executor, std::string task, Range&& items, std::span<Value> out,
              const MapOptions& options = {}) {
  detail::check_into_size(std::ranges::size(items), out.size());
  auto engine = detail::executor_map<false>(executor, std::move(task), std::forward<Range>(items), options, false);
  engine->wait_on_cancel_ = true;
  engine->make_eager();
  std::size_t offset = 0;
  engine->drain([&](Value* values, std::size_t count) {
    std::move(values, values + count, out.begin() + static_cast<std::ptrdiff_t>(offset));
    offset += count;
  });
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
