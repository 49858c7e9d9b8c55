// troupe/promise.hpp
//
// troupe::Promise<T>: the producer's side of a Future<T>, for anyone who
// implements an Executor (or hands out futures of their own).
//
//   auto [future, promise] = troupe::make_future_pair<int>();
//   promise.on_cancel([&] { drop it from my queue; });  // optional, before handing out `future`
//   if (promise.try_start(worker_id)) {                 // pending -> running; false if cancelled
//     TaskContext ctx(name, worker, promise.cancel_flag());
//     promise.set_value(42);                            // or set_exception(ep)
//   }
//
// Guarantees: the future completes exactly once; a later set_* returns false
// and changes nothing. Waiters and done callbacks see the result fully
// written. A Promise destroyed before completing fails its future with
// troupe::Error ("abandoned"), so no future waits for ever on a lost producer.
// Thread safety: one Promise is used by one thread at a time (move it between
// them); its future may be used from any thread meanwhile.
// Hazards: the on_cancel hook runs on the thread that called Future::cancel(),
// after the state became cancelled and before waiters wake or done callbacks
// run (so a callback may wait for the executor to see the task ended); it
// must be cheap, must not throw, and must stay valid as long as the future
// can still be pending.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <utility>

#include "troupe/errors.hpp"
#include "troupe/future.hpp"

namespace troupe {

template <class T>
class Promise;

// A new pending future (its id() is `id`) and the handle that completes it.
template <class T>
std::pair<Future<T>, Promise<T>> make_future_pair(std::uint64_t id = 0);

template <class T>
class Promise {
 public:
  // No state: valid() is false. Use make_future_pair().
  Promise() = default;
  Promise(Promise&&) noexcept = default;
  Promise& operator=(Promise&& other) noexcept {
    if (this != &other) {
      abandon();
      core_ = std::move(other.core_);
    }
    return *this;
  }
  ~Promise() { abandon(); }

  bool valid() const noexcept { return static_cast<bool>(core_); }
  // Another handle on the future (shares the state).
  Future<T> future() const noexcept { return detail::future_from_core(core_); }

  // pending -> running on worker `worker_id`; false if it was cancelled first.
  bool try_start(std::size_t worker_id) noexcept { return core_->try_start(worker_id); }

  // The value (constructed from args; a constructor that throws fails the future).
  template <class... A>
  bool set_value(A&&... args) noexcept {
    return core_->set_value(std::forward<A>(args)...);
  }
  bool set_exception(std::exception_ptr error) noexcept { return core_->set_exception(std::move(error)); }
  // get() then throws `cause` (a BrokenPoolError for a broken pool), or
  // CancelledError when cause is null.
  bool set_cancelled(std::exception_ptr cause = nullptr) noexcept { return core_->set_cancelled(std::move(cause)); }

  // The cooperative cancellation flag, for TaskContext.
  const std::atomic<bool>* cancel_flag() const noexcept { return core_->cancel_flag(); }
  void request_cancel() noexcept { core_->request_cancel(); }
  FutureState state() const noexcept { return core_->state(); }
  std::uint64_t id() const noexcept { return core_->id(); }

  // Called after a user's cancel() turned the still-pending future cancelled.
  // Register before the future is handed out.
  void on_cancel(std::function<void()> hook) { core_->set_cancel_hook(std::move(hook)); }

 private:
  template <class U>
  friend std::pair<Future<U>, Promise<U>> make_future_pair(std::uint64_t id);

  explicit Promise(detail::CorePtr<detail::FutureData<T>> core) noexcept : core_(std::move(core)) {}

  void abandon() noexcept {
    if (core_ && !core_->done()) {
      core_->set_exception(std::make_exception_ptr(Error("the producer of future " + std::to_string(core_->id()) +
                                                         " was destroyed before completing it (abandoned)")));
    }
    core_ = detail::CorePtr<detail::FutureData<T>>();
  }

  detail::CorePtr<detail::FutureData<T>> core_;
};

template <class T>
std::pair<Future<T>, Promise<T>> make_future_pair(std::uint64_t id) {
  auto core = detail::CorePtr<detail::FutureData<T>>::adopt(new detail::FutureData<T>(id, 1));
  Future<T> future = detail::future_from_core(core);
  return {std::move(future), Promise<T>(std::move(core))};
}

// A future that is already complete.
template <class T, class... A>
Future<T> make_ready_future(A&&... args) {
  auto [future, promise] = make_future_pair<T>();
  promise.set_value(std::forward<A>(args)...);
  return future;
}
template <class T>
Future<T> make_failed_future(std::exception_ptr error) {
  auto [future, promise] = make_future_pair<T>();
  promise.set_exception(std::move(error));
  return future;
}

}  // namespace troupe
