// troupe/future.hpp
//
// troupe::Future<T>: the eventual result of work submitted to a pool.
//
// Guarantees: a future completes exactly once: done (value), failed (the
// task's exception) or cancelled. cancel() succeeds only while pending; on a
// running task it sets the cooperative flag the task sees through
// TaskContext::cancelled() and returns false. Done callbacks run once each,
// in the order added: at once on the caller's thread when the future is
// already done, else on the thread that completes it; one that throws is
// reported on stderr and never reaches the pool's worker.
// Timeouts (troupe/timeout.hpp): std::nullopt (the default) waits for ever;
// zero polls; any std::chrono::duration converts, saturating, never
// overflowing (get(std::chrono::hours::max()) waits). get(timeout) throws troupe::TimeoutError
// when it runs out, troupe::CancelledError (or its subclass BrokenPoolError,
// with the cause nested) on a cancelled future, and the task's own exception
// on a failed one.
// Thread safety: every member may be called from any thread; copies share
// one state (like std::shared_future).
// Producing futures: troupe/promise.hpp.
// Hazards: get() returns a reference into the shared state; it stays valid
// while any copy of the future lives. Waiting inside one of a pool's own
// tasks never runs unrelated work on the waiter's stack (see ThreadPool).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "troupe/detail/future_core.hpp"
#include "troupe/errors.hpp"
#include "troupe/timeout.hpp"

namespace troupe {

template <class T>
class Future;

namespace detail {
struct FutureAccess;
template <class T>
Future<T> future_from_core(CorePtr<FutureData<T>> core) noexcept;

[[noreturn]] void throw_no_state();
[[noreturn]] void throw_timeout(std::uint64_t id);
[[noreturn]] void throw_cancelled(const std::exception_ptr& cause, std::uint64_t id);
}  // namespace detail

template <class T>
class Future {
 public:
  using value_type = T;
  using Callback = std::function<void(const Future<T>&)>;

  // A future with no state: valid() is false and every other member throws UsageError.
  Future() = default;

  bool valid() const noexcept { return static_cast<bool>(core_); }

  FutureState state() const { return core().state(); }
  // done, failed or cancelled.
  bool done() const { return core().done(); }
  bool cancelled() const { return state() == FutureState::cancelled; }

  // True when the future is cancelled after the call (also when it already
  // was); false when it runs (the cooperative flag is then set) or ended.
  bool cancel() const { return core().cancel(); }
  // The cooperative flag: set by cancel() on a running task or by a pool's
  // shutdown with cancel_pending.
  bool cancel_requested() const { return core().cancel_requested(); }

  // Waits until done; true if done within the timeout.
  bool wait(Timeout timeout = std::nullopt) const { return core().wait_until(detail::deadline_after(timeout)); }

  // The value (void for Future<void>); throws the task's exception,
  // TimeoutError or CancelledError.
  decltype(auto) get(Timeout timeout = std::nullopt) const {
    const auto& c = core();
    if (!c.wait_until(detail::deadline_after(timeout))) {
      detail::throw_timeout(c.id());
    }
    switch (c.state()) {
      case FutureState::failed:
        std::rethrow_exception(c.stored_error());
      case FutureState::cancelled:
        detail::throw_cancelled(c.stored_error(), c.id());
      default:
        break;
    }
    if constexpr (std::is_void_v<T>) {
      return;
    } else {
      return static_cast<const T&>(c.value());
    }
  }

  // Waits like get(); null on success, the task's exception on failure;
  // throws CancelledError (or BrokenPoolError) on a cancelled future.
  std::exception_ptr exception(Timeout timeout = std::nullopt) const {
    const auto& c = core();
    if (!c.wait_until(detail::deadline_after(timeout))) {
      detail::throw_timeout(c.id());
    }
    switch (c.state()) {
      case FutureState::failed:
        return c.stored_error();
      case FutureState::cancelled:
        detail::throw_cancelled(c.stored_error(), c.id());
      default:
        return nullptr;
    }
  }

  // fn(future) once done; see the header comment for the thread it runs on.
  void add_done_callback(Callback fn) const {
    auto& c = core();
    c.add_done_callback([fn = std::move(fn)](detail::FutureCore& done) {
      fn(detail::future_from_core(
          detail::CorePtr<detail::FutureData<T>>::share(static_cast<detail::FutureData<T>*>(&done))));
    });
  }

  // Submit to start (or to now while pending, or to the cancellation).
  std::chrono::nanoseconds pending_time() const { return core().pending_time(); }
  // Start to end (or to now while running); zero if it never started.
  std::chrono::nanoseconds running_time() const { return core().running_time(); }
  // The worker that ran (or runs) it; nullopt if it never started.
  std::optional<std::size_t> worker_id() const { return core().worker_id(); }
  // Per pool, 1, 2, ... in submission order (0 for futures made outside a pool).
  std::uint64_t id() const { return core().id(); }

  friend bool operator==(const Future& a, const Future& b) noexcept { return a.core_.get() == b.core_.get(); }

 private:
  friend Future detail::future_from_core<T>(detail::CorePtr<detail::FutureData<T>>) noexcept;
  friend struct detail::FutureAccess;

  detail::FutureData<T>& core() const {
    if (!core_) {
      detail::throw_no_state();
    }
    return *core_;
  }

  detail::CorePtr<detail::FutureData<T>> core_;
};

namespace detail {

template <class T>
Future<T> future_from_core(CorePtr<FutureData<T>> core) noexcept {
  Future<T> f;
  f.core_ = std::move(core);
  return f;
}

// The library's way to a future's shared state (identity, the map's result
// hand-off, running queued work inline); not part of Future's API.
struct FutureAccess {
  template <class T>
  static FutureData<T>* core(const Future<T>& future) noexcept {
    return future.core_.get();
  }
};

}  // namespace detail
}  // namespace troupe
