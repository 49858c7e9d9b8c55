// troupe/detail/map_builders.hpp
//
// The map family's input side, on top of MapEngine (detail/map_engine.hpp):
// RangeMapEngine reads a range on the caller's thread and submits chunks;
// the builders make plugin-task maps (any Executor) and callable maps
// (ThreadPool) from it. Not part of the API.
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
#include "troupe/detail/map_engine.hpp"
#include "troupe/detail/progress_meter.hpp"
#include "troupe/errors.hpp"
#include "troupe/executor.hpp"
#include "troupe/future.hpp"
#include "troupe/outcome.hpp"
#include "troupe/thread_pool.hpp"

// `Options` below is troupe::MapOptions (troupe/map.hpp), a parameter so
// this header stands on its own.
namespace troupe::detail {

// Reads a range on the caller's thread. Copying mode: `convert` turns each
// item into a chunk element and `submit` sends the vector (with the chunk's
// offset in the input). In-place mode
// (a sized random-access range the map owns, callable maps): `submit` gets a
// shared view and an index range, and workers read the items themselves;
// chunks share ownership of the view, so dropping the map never waits.
template <class R, class View, class Elem, class Convert, class Submit, bool InPlace>
class RangeMapEngine final : public MapEngine<R> {
 public:
  using typename MapEngine<R>::ChunkFuture;

  template <class Options>
  RangeMapEngine(View view, Convert convert, Submit submit, const Options& options, std::size_t workers)
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
      if (pending_error_) {
        std::rethrow_exception(std::exchange(pending_error_, nullptr));
      }
      if (!begun_) {
        it_ = std::ranges::begin(*view_);
        begun_ = true;
      }
      if (it_ == std::ranges::end(*view_)) {
        return std::nullopt;
      }
      std::vector<Elem> items;
      items.reserve(n);
      try {
        for (; items.size() < n && it_ != std::ranges::end(*view_); ++it_) {
          items.push_back(convert_(*it_));
        }
      } catch (...) {
        // The items read before the input failed still go out as a chunk;
        // its error comes with the next read, after them.
        if (items.empty()) {
          throw;
        }
        pending_error_ = std::current_exception();
      }
      const auto count = items.size();
      auto future = submit_(std::move(items), offset_);
      offset_ += count;
      return std::pair{ChunkFuture(std::move(future)), count};
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
  std::exception_ptr pending_error_;  // thrown by the input after a chunk's first items
};

// map_into: one slot per input item.
inline void check_into_size(std::size_t input, std::size_t slots) {
  if (input != slots) {
    throw ArgumentError("map_into: the input has " + std::to_string(input) + " items but the output span has " +
                        std::to_string(slots) + " slots; they must be equal");
  }
}

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

template <class R, class Range, class Elem, bool InPlace, class Convert, class Submit, class Options>
std::unique_ptr<MapEngine<R>> make_map(Range&& range, Convert convert, Submit submit, const Options& options,
                                       Executor& executor, bool eager, bool run_inline,
                                       std::shared_ptr<ValueRecycler<R>> recycler = nullptr,
                                       std::shared_ptr<std::vector<R>> output = nullptr) {
  using View = std::views::all_t<Range>;
  auto engine = std::make_unique<RangeMapEngine<R, View, Elem, Convert, Submit, InPlace>>(
      std::views::all(std::forward<Range>(range)), std::move(convert), std::move(submit), options,
      executor.max_workers());
  engine->recycler_ = std::move(recycler);
  engine->executor_ = run_inline ? &executor : nullptr;
  engine->output_ = std::move(output);
  if (eager) {
    engine->make_eager();
  }
  return engine;
}

template <bool Star, class Range, class Options>
std::unique_ptr<MapEngine<Value>> executor_map(Executor& executor, std::string task, Range&& range,
                                               const Options& options, bool eager) {
  auto submit = [&executor, task](std::vector<Args>&& items, std::size_t /*offset*/) {
    return executor.submit_chunk(task, std::move(items));
  };
  auto convert = [](auto&& item) {
    if constexpr (Star) {
      return to_args(std::forward<decltype(item)>(item));
    } else {
      return Args{Value(std::forward<decltype(item)>(item))};
    }
  };
  // Not run inline: a plugin task may need its worker's initializer state,
  // which the iterating thread does not have.
  return make_map<Value, Range, Args, false>(std::forward<Range>(range), convert, submit, options, executor, eager,
                                             false);
}

// Submits a callable map's chunk as `items` items (ThreadPool's stats count items).
struct PoolMapAccess {
  template <class F>
  static auto submit(ThreadPool& pool, std::size_t items, F&& fn) {
    return pool.submit_items(items, std::forward<F>(fn));
  }
};

// A map_into engine waits for running chunks before it cancels or ends
// (they write into the caller's storage), from its first submit on.
template <class R>
std::unique_ptr<MapEngine<R>> finish_pool_map(std::unique_ptr<MapEngine<R>> engine, bool eager, bool into) {
  if (into) {
    engine->wait_on_cancel_ = true;
    if (eager) {
      engine->make_eager();
    }
  }
  return engine;
}

// `into` (map_into): the caller's storage for every result, one slot per
// input item; chunks assign their results there and carry only their errors.
template <bool Star, class F, class Range, class Options, class Dest = void>
auto pool_map(ThreadPool& pool, F&& fn, Range&& range, const Options& options, bool eager, Dest* into = nullptr)
    -> std::unique_ptr<MapEngine<
        typename map_result<Star, std::decay_t<F>, std::remove_cvref_t<std::ranges::range_reference_t<Range>>>::type>> {
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
  using Stored = typename ChunkValues<R>::Stored;
  // map_all over a sized input: one output vector, each chunk writing its
  // results in place (values() hands it over without copying).
  std::shared_ptr<std::vector<R>> output;
  if constexpr (std::is_void_v<Dest> && std::is_same_v<Stored, R> && std::ranges::sized_range<Range>) {
    if (eager) {
      output = std::make_shared<std::vector<R>>(static_cast<std::size_t>(std::ranges::size(range)));
    }
  }
  auto out_at = [into](const std::shared_ptr<std::vector<R>>& out, std::size_t offset) {
    if constexpr (!std::is_void_v<Dest>) {
      static_cast<void>(out);
      return into + offset;
    } else if constexpr (std::is_same_v<Stored, R>) {
      static_cast<void>(into);
      return out ? out->data() + offset : static_cast<Stored*>(nullptr);
    } else {
      static_cast<void>(into);
      static_cast<void>(out);
      static_cast<void>(offset);
      return static_cast<Stored*>(nullptr);
    }
  };
  if constexpr (!std::is_lvalue_reference_v<Range> && std::ranges::random_access_range<const View> &&
                std::ranges::sized_range<const View>) {
    // The map owns the view (an rvalue range): workers read the items in place.
    auto submit = [&pool, shared_fn, recycler, output, out_at](std::shared_ptr<const View> view, std::size_t offset,
                                                               std::size_t count) {
      return PoolMapAccess::submit(
          pool, count, [shared_fn, recycler, output, out_at, view, offset, count](TaskContext& ctx) {
            auto first = std::ranges::begin(*view) + static_cast<std::ranges::range_difference_t<const View>>(offset);
            return run_chunk<R, Star>(
                *shared_fn, count,
                [&](std::size_t k) -> decltype(auto) {
                  return first[static_cast<std::ranges::range_difference_t<const View>>(k)];
                },
                ctx, *recycler, out_at(output, offset));
          });
    };
    return finish_pool_map(make_map<R, Range, Elem, true>(std::forward<Range>(range), convert, submit, options, pool,
                                                          eager && into == nullptr, true, recycler, output),
                           eager, into != nullptr);
  } else {
    auto submit = [&pool, shared_fn, recycler, output, out_at](std::vector<Elem>&& items, std::size_t offset) {
      const auto count = items.size();
      return PoolMapAccess::submit(
          pool, count,
          [shared_fn, recycler, output, out_at, offset, items = std::move(items)](TaskContext& ctx) mutable {
            return run_chunk<R, Star>(
                *shared_fn, items.size(), [&](std::size_t k) -> Elem& { return items[k]; }, ctx, *recycler,
                out_at(output, offset));
          });
    };
    return finish_pool_map(make_map<R, Range, Elem, false>(std::forward<Range>(range), convert, submit, options, pool,
                                                           eager && into == nullptr, true, recycler, output),
                           eager, into != nullptr);
  }
}

template <class F, class Range>
concept MapCallable = std::ranges::input_range<Range> &&
    (std::is_invocable_v<std::decay_t<F>&, std::remove_cvref_t<std::ranges::range_reference_t<Range>>&> ||
     std::is_invocable_v<std::decay_t<F>&, TaskContext&, std::remove_cvref_t<std::ranges::range_reference_t<Range>>&>);

template <class F, class Elem>
concept ApplicableTo = star_traits_t<std::decay_t<F>, Elem>::invocable;

template <class F, class Range>
concept StarmapCallable = std::ranges::input_range<Range> &&
    is_tuple_like<std::remove_cvref_t<std::ranges::range_reference_t<Range>>>::value &&
    ApplicableTo<F, std::remove_cvref_t<std::ranges::range_reference_t<Range>>>;

}  // namespace troupe::detail
