// troupe/detail/map_chunk.hpp
//
// One map chunk's results, and how a ThreadPool chunk of a C++ callable
// makes them: detail of troupe/map.hpp.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "troupe/detail/chunk_loop.hpp"
#include "troupe/detail/future_core.hpp"
#include "troupe/errors.hpp"
#include "troupe/sdk/task_context.hpp"

namespace troupe::detail {

// Chunk buffers come from tbbmalloc (engine/src/future/map_buffers.cpp): it
// keeps freed buffers for reuse, where glibc hands 128 KiB blocks back to the
// system and pays a page fault per 4 KiB again. Out of line, so no TBB
// header reaches the user's code.
void* map_buffer_allocate(std::size_t bytes, std::size_t alignment);
void map_buffer_deallocate(void* p, std::size_t alignment) noexcept;

// Default-initialises on resize(n) (no zeroing pass for trivial types): a
// chunk's slots are all assigned, or marked failed and never read.
template <class T>
struct DefaultInitAllocator {
  using value_type = T;
  DefaultInitAllocator() noexcept = default;
  template <class U>
  DefaultInitAllocator(const DefaultInitAllocator<U>& /*other*/) noexcept {}  // NOLINT(google-explicit-constructor)

  T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) {
      throw std::bad_array_new_length();
    }
    return static_cast<T*>(map_buffer_allocate(n * sizeof(T), alignof(T)));
  }
  void deallocate(T* p, std::size_t /*n*/) noexcept { map_buffer_deallocate(p, alignof(T)); }

  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... A>
  void construct(U* p, A&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<A>(args)...);
  }
  template <class U>
  friend bool operator==(const DefaultInitAllocator& /*a*/, const DefaultInitAllocator<U>& /*b*/) noexcept {
    return true;
  }
};

// A bool result in a slot of its own: std::vector<bool> packs bits and has no
// data() to hand out a bool& per item.
struct BoolSlot {
  bool value;
};

template <class R>
struct StoredFor {
  using type =
      std::conditional_t<std::is_default_constructible_v<R> && std::is_move_assignable_v<R>, R, std::optional<R>>;
};
template <>
struct StoredFor<bool> {
  using type = BoolSlot;
};

// One chunk's results, contiguous, with the (rare) failed items on the side.
// They live in `owned`, or in the map's output vector (map_all over a sized
// input writes each result in its place).
template <class R>
struct ChunkValues {
  using Stored = typename StoredFor<R>::type;
  using Buffer = std::vector<Stored, DefaultInitAllocator<Stored>>;

  Buffer owned;
  Stored* values = nullptr;  // [values, values + count)
  std::size_t count = 0;
  std::vector<std::pair<std::size_t, std::exception_ptr>> errors;  // by ascending index

  static R& value_of(Stored& stored) noexcept {
    if constexpr (std::is_same_v<Stored, BoolSlot>) {
      return stored.value;
    } else if constexpr (std::is_same_v<Stored, R>) {
      return stored;
    } else {
      return *stored;
    }
  }
  static void store(Stored& slot, R&& value) {
    if constexpr (std::is_same_v<Stored, BoolSlot>) {
      slot.value = value;
    } else if constexpr (std::is_same_v<Stored, R>) {
      slot = std::move(value);
    } else {
      slot.emplace(std::move(value));
    }
  }
};

// Result buffers handed back by the consumer for the next chunks: a map
// allocates its window's buffers once instead of once per chunk (large fresh
// allocations cost a page fault per 4 KiB).
template <class R>
class ValueRecycler {
 public:
  using Buffer = typename ChunkValues<R>::Buffer;
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

// ---- what a callable map calls -----------------------------------------------

// fn(item) or fn(ctx, item): a callable map passes the chunk's TaskContext
// first when the callable takes one.
template <class Fn, class... A>
using map_call_result_t =
    typename std::conditional_t<std::is_invocable_v<Fn&, TaskContext&, A...>,
                                std::invoke_result<Fn&, TaskContext&, A...>, std::invoke_result<Fn&, A...>>::type;

template <class Fn, class Tuple, class Seq>
struct star_traits;
template <class Fn, class Tuple, std::size_t... I>
struct star_traits<Fn, Tuple, std::index_sequence<I...>> {
  static constexpr bool invocable =
      std::is_invocable_v<Fn&, decltype(std::get<I>(std::declval<Tuple&>()))...> ||
      std::is_invocable_v<Fn&, TaskContext&, decltype(std::get<I>(std::declval<Tuple&>()))...>;
  using result = map_call_result_t<Fn, decltype(std::get<I>(std::declval<Tuple&>()))...>;
};
template <class Fn, class Tuple>
using star_traits_t = star_traits<Fn, Tuple, std::make_index_sequence<std::tuple_size_v<Tuple>>>;

template <bool Star, class Fn, class Elem>
struct map_result {
  using type = map_call_result_t<Fn, Elem&>;
};
template <class Fn, class Elem>
struct map_result<true, Fn, Elem> {
  using type = typename star_traits_t<Fn, Elem>::result;
};

template <class F, class... Items>
decltype(auto) call_item(F& fn, TaskContext& ctx, Items&&... items) {
  if constexpr (std::is_invocable_v<F&, TaskContext&, Items&&...>) {
    return std::invoke(fn, ctx, std::forward<Items>(items)...);
  } else {
    return std::invoke(fn, std::forward<Items>(items)...);
  }
}

// Items per block of the chunk loop: cancellation is checked per block, so a
// simple `fn` vectorises inside one. Checked per item, `x * 2` ran at half
// the speed (1.8e9 against 3.7e9 items/s on one core).
inline constexpr std::size_t kChunkBlock = 256;

// Applies `fn` to items [0, count) given by `input(k)`, writing into `out`
// (or a recycled buffer when null), through the one chunk loop
// (detail/chunk_loop.hpp) over blocks of kChunkBlock items: cancellation is
// checked before each block, an item's exception is recorded and the rest
// go on. The items' tally reaches the pool's stats() before the chunk's
// future completes. `out` is the chunk's slots in the map's own storage
// (Dest = Stored), or in a caller's span (map_into: any Dest the result is
// assigned to; the chunk then carries only its errors).
template <class R, bool Star, class F, class Input, class Dest>
ChunkValues<R> run_chunk(F& fn, std::size_t count, Input&& input, TaskContext& ctx, ValueRecycler<R>& recycler,
                         Dest* out) {
  using Stored = typename ChunkValues<R>::Stored;
  ChunkValues<R> result;
  if constexpr (std::is_same_v<Dest, Stored>) {
    if (out == nullptr) {
      result.owned = recycler.take();
      result.owned.resize(count);
      out = result.owned.data();
    }
    result.values = out;
  } else {
    static_cast<void>(recycler);
  }
  result.count = count;
  auto call = [&](std::size_t k) -> R {
    if constexpr (Star) {
      return std::apply([&](auto&... a) -> R { return call_item(fn, ctx, a...); }, input(k));
    } else {
      return call_item(fn, ctx, input(k));
    }
  };
  std::size_t failed = 0;
  std::size_t skipped = 0;
  std::exception_ptr cancelled;
  const std::size_t blocks = (count + kChunkBlock - 1) / kChunkBlock;
  run_chunk_items(
      blocks, [&] { return ctx.cancelled(); },
      [&](std::size_t block) {
        const std::size_t last = std::min(count, (block + 1) * kChunkBlock);
        const std::size_t failed_before = failed;
        for (std::size_t k = block * kChunkBlock; k < last;) {
          try {
            for (; k < last; ++k) {
              if constexpr (std::is_same_v<Dest, Stored>) {
                ChunkValues<R>::store(out[k], call(k));
              } else {
                out[k] = call(k);
              }
            }
          } catch (...) {
            result.errors.emplace_back(k, std::current_exception());
            ++failed;
            ++k;
          }
        }
        return failed == failed_before;
      },
      [&](std::size_t block) {
        if (!cancelled) {
          cancelled = std::make_exception_ptr(CancelledError("map item cancelled before it ran"));
        }
        const std::size_t last = std::min(count, (block + 1) * kChunkBlock);
        for (std::size_t k = block * kChunkBlock; k < last; ++k) {
          result.errors.emplace_back(k, cancelled);
          ++skipped;
        }
      });
  report_items(count - failed - skipped, failed, skipped);
  return result;
}

}  // namespace troupe::detail
