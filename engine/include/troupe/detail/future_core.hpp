// troupe/detail/future_core.hpp
//
// The shared state behind troupe::Future<T> (producers use troupe::Promise,
// troupe/promise.hpp; pools derive their tasks from FutureData<T>), and how a
// task running on a pool's thread reports what it ended with to that pool's
// stats() before its future completes.
//
// Guarantees: completion (value, exception, cancelled) happens exactly once;
// a later set_* returns false and changes nothing. Waiters and done
// callbacks see a completed state fully written (release/acquire).
// Thread safety: every member may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "troupe/errors.hpp"
#include "troupe/timeout.hpp"

namespace troupe {

class Worker;

// The life of a future: pending -> running -> done | failed; pending -> cancelled
// (and, for a broken pool, running -> cancelled).
enum class FutureState : std::uint8_t { pending, running, done, failed, cancelled };

const char* to_string(FutureState state) noexcept;

namespace detail {

using Clock = std::chrono::steady_clock;

inline std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// Deadline in steady-clock nanoseconds; nullopt waits for ever.
using Deadline = std::optional<std::int64_t>;

// A timeout from now; a saturated one (troupe/timeout.hpp) stays at the far end.
inline Deadline deadline_after(const Timeout& timeout) noexcept {
  if (!timeout) {
    return std::nullopt;
  }
  const auto ns = timeout->count();
  const auto now = now_ns();
  return ns > INT64_MAX - now ? std::optional<std::int64_t>(INT64_MAX) : now + std::max<std::int64_t>(ns, 0);
}

// Linux futex on a 32-bit word: sleeps while *word == expected, up to the
// deadline (nullopt: no limit). Spurious returns are possible.
void futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, Deadline deadline) noexcept;
void futex_wake_all(const std::atomic<std::uint32_t>& word) noexcept;
void futex_wake_one(const std::atomic<std::uint32_t>& word) noexcept;

// Reports an exception thrown by a done callback (stderr, once per callback);
// never throws.
void report_callback_error(std::exception_ptr error) noexcept;

class FutureCore;

// A pool's counters for what its tasks end with: one per item (a map chunk of
// N items counts N), so stats() speaks of the items a user submitted.
class TaskCounter {
 public:
  virtual void count(std::size_t ok, std::size_t failed, std::size_t cancelled) noexcept = 0;

 protected:
  ~TaskCounter() = default;
};

// The task a pool thread is running now, set by the pool around run(). The
// first completion of that task on this thread counts it (a chunk reports its
// per-item tally with report_items() first), so a caller that sees the future
// complete also sees it counted. Pools save and restore it around nested runs.
struct RunningTask {
  const FutureCore* task = nullptr;
  TaskCounter* counter = nullptr;
};
RunningTask& running_task() noexcept;

// Called by a chunk task just before it completes: its items' tally.
inline void report_items(std::size_t ok, std::size_t failed, std::size_t cancelled) noexcept {
  RunningTask& running = running_task();
  if (running.task != nullptr) {
    running.task = nullptr;
    running.counter->count(ok, failed, cancelled);
  }
}

// Installed by a pool on its worker threads: a wait from inside a task goes
// through it. help_until() returns when `core` is done or the deadline
// passed (whether it is done); it may run `core` itself when it is the
// pool's own task not yet started, and otherwise blocks as a blocked()
// scope. blocked(true/false) brackets any other blocking wait of a task
// (wait(), as_completed), so the pool can stand in for the blocked worker.
class WaitHelper {
 public:
  virtual bool help_until(const FutureCore& core, Deadline deadline) = 0;
  virtual void blocked(bool now) noexcept = 0;

 protected:
  ~WaitHelper() = default;
};

WaitHelper*& current_wait_helper() noexcept;

// Marks a blocking wait on a pool's worker thread (no-op elsewhere).
class BlockedScope {
 public:
  BlockedScope() noexcept : helper_(current_wait_helper()) {
    if (helper_ != nullptr) {
      helper_->blocked(true);
    }
  }
  ~BlockedScope() {
    if (helper_ != nullptr) {
      helper_->blocked(false);
    }
  }
  BlockedScope(const BlockedScope&) = delete;
  BlockedScope& operator=(const BlockedScope&) = delete;

 private:
  WaitHelper* helper_;
};

// Tiny spinlock for the rarely contended callback list.
class SpinLock {
 public:
  void lock() noexcept {
    while (flag_.exchange(true, std::memory_order_acquire)) {
      while (flag_.load(std::memory_order_relaxed)) {
        std::this_thread::yield();
      }
    }
  }
  void unlock() noexcept { flag_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> flag_{false};
};

// Type-erased shared state. Intrusively reference counted: one allocation
// holds the state, the result and (for pool tasks) the work itself.
class FutureCore {
 public:
  static constexpr std::uint32_t kPending = 0;
  static constexpr std::uint32_t kRunning = 1;
  static constexpr std::uint32_t kDone = 2;
  static constexpr std::uint32_t kFailed = 3;
  static constexpr std::uint32_t kCancelled = 4;
  static constexpr std::uint32_t kCompleting = 5;  // claimed by a completer, result being written
  static constexpr std::uint32_t kStateMask = 7;
  static constexpr std::uint32_t kWaitersBit = 8;
  static constexpr std::uint32_t kCallbacksBit = 16;
  static constexpr std::uint32_t kStartedBit = 32;  // it ran (or runs) on a worker
  static constexpr std::size_t kNoWorker = static_cast<std::size_t>(-1);

  using Callback = std::function<void(FutureCore&)>;

  explicit FutureCore(std::uint64_t id = 0, std::uint32_t initial_refs = 1) noexcept
      : refs_(initial_refs), id_(id), submit_ns_(now_ns()) {}
  FutureCore(const FutureCore&) = delete;
  FutureCore& operator=(const FutureCore&) = delete;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      destroy();
    }
  }

  std::uint64_t id() const noexcept { return id_; }
  // Only before the future is published to other threads.
  void set_id(std::uint64_t id) noexcept { id_ = id; }
  // How many items it stands for in a pool's stats (a map chunk: its items).
  std::uint32_t item_count() const noexcept { return items_; }
  void set_item_count(std::uint32_t items) noexcept { items_ = items; }
  // The pool whose queue holds it (null outside pools): a waiting worker of
  // that pool may run it itself. Only before the future is published.
  const void* owner() const noexcept { return owner_; }
  void set_owner(const void* owner) noexcept { owner_ = owner; }

  FutureState state() const noexcept {
    const auto s = word_.load(std::memory_order_acquire) & kStateMask;
    return s == kCompleting ? completing_from() : static_cast<FutureState>(s);
  }
  bool done() const noexcept { return is_terminal(word_.load(std::memory_order_acquire)); }

  // pending -> running on `worker_id`; false when it was cancelled (or completed) first.
  bool try_start(std::size_t worker_id) noexcept {
    worker_id_.store(worker_id, std::memory_order_relaxed);
    start_ns_.store(now_ns(), std::memory_order_relaxed);
    auto w = word_.load(std::memory_order_relaxed);
    while ((w & kStateMask) == kPending) {
      if (word_.compare_exchange_weak(w, (w & ~kStateMask) | kRunning | kStartedBit, std::memory_order_acq_rel,
                                      std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }

  // Future::cancel(): a pending future becomes cancelled (true); a running one
  // gets its cooperative flag set (false); a cancelled one stays so (true).
  bool cancel() {
    auto w = word_.load(std::memory_order_acquire);
    for (;;) {
      const auto s = w & kStateMask;
      if (s == kCancelled) {
        return true;
      }
      if (s == kRunning) {
        cancel_requested_.store(true, std::memory_order_relaxed);
        return false;
      }
      if (s != kPending) {
        return false;
      }
      if (word_.compare_exchange_weak(w, (w & ~kStateMask) | kCompleting, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        break;
      }
    }
    completing_from_running_.store(false, std::memory_order_relaxed);
    cancel_requested_.store(true, std::memory_order_relaxed);
    // The producer's hook runs before anyone is woken or called back: a
    // callback on this thread that waits for the pool to see the task ended
    // (pool.join()) would otherwise wait for a hook that runs after it.
    const auto old = set_terminal(kCancelled);
    if (Extras* extras = extras_.load(std::memory_order_acquire); extras != nullptr && extras->cancel_hook) {
      extras->cancel_hook();
    }
    notify(old);
    return true;
  }

  // Sets the cooperative flag only (shutdown with cancel_pending on running tasks).
  void request_cancel() noexcept { cancel_requested_.store(true, std::memory_order_relaxed); }
  bool cancel_requested() const noexcept { return cancel_requested_.load(std::memory_order_relaxed); }
  const std::atomic<bool>* cancel_flag() const noexcept { return &cancel_requested_; }

  bool set_exception(std::exception_ptr error) noexcept {
    if (!claim()) {
      return false;
    }
    error_ = std::move(error);
    publish(kFailed);
    return true;
  }

  // Cancelled by the producer (broken pool: cause = BrokenPoolError; shutdown: null).
  bool set_cancelled(std::exception_ptr cause = nullptr) noexcept {
    if (!claim()) {
      return false;
    }
    error_ = std::move(cause);
    cancel_requested_.store(true, std::memory_order_relaxed);
    publish(kCancelled);
    return true;
  }

  // Blocks until done or the deadline; true when done. Inside a pool's
  // worker, waits through its WaitHelper (never runs unrelated work).
  bool wait_until(Deadline deadline) const {
    if (done()) {
      return true;
    }
    if (WaitHelper* helper = current_wait_helper()) {
      return helper->help_until(*this, deadline);
    }
    return block_until(deadline);
  }

  // Blocks without helping: spins briefly, then sleeps on the futex. (A
  // longer yield-spin here halved batch throughput on 2 cores: the waiter
  // took CPU from the workers it waits for.)
  bool block_until(Deadline deadline) const noexcept {
    for (int i = 0; i < 64; ++i) {
      if (done()) {
        return true;
      }
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
    for (;;) {
      auto w = word_.load(std::memory_order_acquire);
      if (is_terminal(w)) {
        return true;
      }
      if (deadline && now_ns() >= *deadline) {
        return false;
      }
      if ((w & kWaitersBit) == 0) {
        if (!word_.compare_exchange_weak(w, w | kWaitersBit, std::memory_order_acq_rel, std::memory_order_acquire)) {
          continue;
        }
        w |= kWaitersBit;
      }
      futex_wait(word_, w, deadline);
    }
  }

  // Runs `fn` once the future is done: at once on this thread when it already
  // is, else on the thread that completes it. Exceptions are reported, not thrown.
  void add_done_callback(Callback fn) {
    if (!done()) {
      Extras& extras = ensure_extras();
      extras.lock.lock();
      extras.callbacks.push_back(std::move(fn));
      auto w = word_.load(std::memory_order_acquire);
      for (;;) {
        if (is_terminal(w)) {
          fn = std::move(extras.callbacks.back());
          extras.callbacks.pop_back();
          break;
        }
        if (word_.compare_exchange_weak(w, w | kCallbacksBit, std::memory_order_acq_rel, std::memory_order_acquire)) {
          extras.lock.unlock();
          return;
        }
      }
      extras.lock.unlock();
    }
    invoke_callback(fn);
  }

  // Timing and identity (docs/semantics.md): pending = submit to start (or to the
  // end for a cancelled future, or to now); running = start to end (or to now).
  std::chrono::nanoseconds pending_time() const noexcept {
    const auto w = word_.load(std::memory_order_acquire) & kStateMask;
    std::int64_t until = 0;
    if (w == kPending || w == kCompleting) {
      until = now_ns();
    } else if (w == kCancelled && !started()) {
      until = end_ns_.load(std::memory_order_relaxed);
    } else {
      until = start_ns_.load(std::memory_order_relaxed);
    }
    return std::chrono::nanoseconds(std::max<std::int64_t>(0, until - submit_ns_));
  }
  std::chrono::nanoseconds running_time() const noexcept {
    const auto w = word_.load(std::memory_order_acquire) & kStateMask;
    if (w == kPending || !started()) {
      return std::chrono::nanoseconds(0);
    }
    const auto until = is_terminal(w) ? end_ns_.load(std::memory_order_relaxed) : now_ns();
    return std::chrono::nanoseconds(std::max<std::int64_t>(0, until - start_ns_.load(std::memory_order_relaxed)));
  }
  // True once it has run (or runs) somewhere: a queue entry that finds it
  // started was run by the thread that waited for it (Executor::try_run_inline).
  bool was_started() const noexcept {
    return started();
  }
  std::optional<std::size_t> worker_id() const noexcept {
    if (!started()) {
      return std::nullopt;
    }
    const auto id = worker_id_.load(std::memory_order_relaxed);
    return id == kNoWorker ? std::nullopt : std::optional<std::size_t>(id);
  }

  const std::exception_ptr& stored_error() const noexcept {
    return error_;
  }

  // Registered by a producer before the future is published.
  void set_cancel_hook(std::function<void()> hook) {
    ensure_extras().cancel_hook = std::move(hook);
  }

  // Pool tasks override these: run the work on `worker`, and name it for
  // cancelled_tasks().
  virtual void run(Worker& worker) noexcept {
    static_cast<void>(worker);
  }
  virtual std::string describe() const {
    return "<task>";
  }

 protected:
  virtual ~FutureCore() {
    delete extras_.load(std::memory_order_acquire);
  }
  virtual void destroy() noexcept {
    delete this;
  }

  static bool is_terminal(std::uint32_t w) noexcept {
    const auto s = w & kStateMask;
    return s == kDone || s == kFailed || s == kCancelled;
  }

  // Claims the right to complete: pending/running -> completing.
  bool claim() noexcept {
    auto w = word_.load(std::memory_order_acquire);
    for (;;) {
      const auto s = w & kStateMask;
      if (s != kPending && s != kRunning) {
        return false;
      }
      if (word_.compare_exchange_weak(w, (w & ~kStateMask) | kCompleting, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        completing_from_running_.store(s == kRunning, std::memory_order_relaxed);
        return true;
      }
    }
  }

  void store_error(std::exception_ptr error) noexcept {
    error_ = std::move(error);
  }

  // completing -> terminal: wakes waiters, runs callbacks.
  void publish(std::uint32_t terminal) noexcept {
    notify(set_terminal(terminal));
  }

  // completing -> terminal; returns the word before, for notify().
  std::uint32_t set_terminal(std::uint32_t terminal) noexcept {
    end_ns_.store(now_ns(), std::memory_order_relaxed);
    if (RunningTask& running = running_task(); running.task == this) {
      running.task = nullptr;
      const std::size_t n = items_;
      running.counter->count(terminal == kDone ? n : 0, terminal == kFailed ? n : 0, terminal == kCancelled ? n : 0);
    }
    auto old = word_.load(std::memory_order_relaxed);
    while (!word_.compare_exchange_weak(old, terminal | (old & kStartedBit), std::memory_order_acq_rel,
                                        std::memory_order_relaxed)) {
    }
    return old;
  }

  // Wakes the waiters and runs the callbacks registered before set_terminal().
  void notify(std::uint32_t old) noexcept {
    if (old & kWaitersBit) {
      futex_wake_all(word_);
    }
    if (old & kCallbacksBit) {
      Extras& extras = *extras_.load(std::memory_order_acquire);
      extras.lock.lock();
      auto callbacks = std::move(extras.callbacks);
      extras.callbacks.clear();
      extras.lock.unlock();
      for (auto& fn : callbacks) {
        invoke_callback(fn);
      }
    }
  }

  // Keeps the state alive while a callback holds a Future made from it.
  void invoke_callback(Callback& fn) noexcept {
    try {
      fn(*this);
    } catch (...) {
      report_callback_error(std::current_exception());
    }
  }

 private:
  bool started() const noexcept {
    return (word_.load(std::memory_order_acquire) & kStartedBit) != 0;
  }
  // What few futures need, allocated on first use: keeps the state small
  // (a task's one allocation stays in malloc's fast bins).
  struct Extras {
    SpinLock lock;
    std::vector<Callback> callbacks;
    std::function<void()> cancel_hook;
  };
  Extras& ensure_extras() {
    Extras* extras = extras_.load(std::memory_order_acquire);
    if (extras != nullptr) {
      return *extras;
    }
    auto* fresh = new Extras();
    if (extras_.compare_exchange_strong(extras, fresh, std::memory_order_acq_rel, std::memory_order_acquire)) {
      return *fresh;
    }
    delete fresh;
    return *extras;
  }

  FutureState completing_from() const noexcept {
    return completing_from_running_.load(std::memory_order_relaxed) ? FutureState::running : FutureState::pending;
  }

  std::atomic<std::uint32_t> refs_;
  mutable std::atomic<std::uint32_t> word_{kPending};  // waiters set a bit on it
  std::atomic<bool> cancel_requested_{false};
  std::atomic<bool> completing_from_running_{false};
  std::uint32_t items_ = 1;  // in the padding before id_: the state does not grow
  std::uint64_t id_;
  std::int64_t submit_ns_;
  std::atomic<std::int64_t> start_ns_{0};
  std::atomic<std::int64_t> end_ns_{0};
  std::atomic<std::size_t> worker_id_{kNoWorker};
  std::exception_ptr error_;
  std::atomic<Extras*> extras_{nullptr};
  const void* owner_ = nullptr;
};

// Shared state with room for the result.
template <class T>
class FutureData : public FutureCore {
 public:
  using FutureCore::FutureCore;

  // A constructor that throws fails the future with that exception.
  template <class... A>
  bool set_value(A&&... args) noexcept {
    if (!claim()) {
      return false;
    }
    try {
      ::new (static_cast<void*>(&storage_)) T(std::forward<A>(args)...);
    } catch (...) {
      store_error(std::current_exception());
      publish(kFailed);
      return true;
    }
    has_value_ = true;
    publish(kDone);
    return true;
  }

  // Valid once state() == done.
  const T& value() const noexcept { return *std::launder(reinterpret_cast<const T*>(&storage_)); }
  T& value() noexcept { return *std::launder(reinterpret_cast<T*>(&storage_)); }

 protected:
  ~FutureData() override {
    if (has_value_) {
      value().~T();
    }
  }

 private:
  alignas(T) unsigned char storage_[sizeof(T)];
  bool has_value_ = false;
};

template <>
class FutureData<void> : public FutureCore {
 public:
  using FutureCore::FutureCore;

  bool set_value() noexcept {
    if (!claim()) {
      return false;
    }
    publish(kDone);
    return true;
  }
  void value() const noexcept {}
};

// An owning pointer to a FutureCore (or a derived state).
template <class C>
class CorePtr {
 public:
  CorePtr() = default;
  // Takes over one reference the caller already holds.
  static CorePtr adopt(C* core) noexcept {
    CorePtr p;
    p.core_ = core;
    return p;
  }
  // Adds a reference.
  static CorePtr share(C* core) noexcept {
    if (core != nullptr) {
      core->add_ref();
    }
    return adopt(core);
  }
  CorePtr(const CorePtr& other) noexcept : core_(other.core_) {
    if (core_ != nullptr) {
      core_->add_ref();
    }
  }
  CorePtr(CorePtr&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
  CorePtr& operator=(CorePtr other) noexcept {
    std::swap(core_, other.core_);
    return *this;
  }
  ~CorePtr() {
    if (core_ != nullptr) {
      core_->release();
    }
  }
  C* get() const noexcept { return core_; }
  C* operator->() const noexcept { return core_; }
  C& operator*() const noexcept { return *core_; }
  explicit operator bool() const noexcept { return core_ != nullptr; }
  C* detach() noexcept { return std::exchange(core_, nullptr); }

 private:
  C* core_ = nullptr;
};

}  // namespace detail
}  // namespace troupe
