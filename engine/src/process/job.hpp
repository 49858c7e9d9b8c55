// What the process pool's parts share: a job (one call or map chunk with its
// encoded frame and promise), the counters submitters and the reactor both
// touch, the workers' task table, and small error helpers.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/nest.hpp"
#include "troupe/future.hpp"
#include "troupe/outcome.hpp"
#include "troupe/promise.hpp"
#include "troupe/sdk/descriptor.hpp"

namespace troupe::detail::process {

using ChunkResult = std::vector<Outcome<Value>>;

// One submission: a call or a map chunk, its encoded frame and its promise.
struct Job {
  std::uint64_t id = 0;
  std::string task;
  std::vector<std::uint8_t> frame;
  bool chunk = false;
  std::size_t items = 0;
  bool started = false;
  Promise<Value> call;
  Promise<ChunkResult> chunk_promise;
  ChunkResult outcomes;
  std::size_t reported = 0;                         // chunk items whose outcome arrived
  std::optional<std::chrono::nanoseconds> timeout;  // per task (per item of a chunk); none: the pool's task_timeout
  bool revoke_sent = false;
  // Reported chunk items by outcome; they reach the pool's counters when the chunk ends.
  std::size_t ok_items = 0;
  std::size_t failed_items = 0;
  std::size_t cancelled_items = 0;

  // What the pool's item counters count: a call is one item, a chunk its items.
  std::size_t units() const { return chunk ? items : 1; }

  bool cancel_requested() const {
    return (chunk ? chunk_promise.cancel_flag() : call.cancel_flag())->load(std::memory_order_relaxed);
  }
  void set_promise(Promise<Value>&& p) { call = std::move(p); }
  void set_promise(Promise<ChunkResult>&& p) { chunk_promise = std::move(p); }
  bool try_start(std::size_t worker) { return chunk ? chunk_promise.try_start(worker) : call.try_start(worker); }
  bool fail(std::exception_ptr error) {
    return chunk ? chunk_promise.set_exception(std::move(error)) : call.set_exception(std::move(error));
  }
  bool cancel(std::exception_ptr cause) {
    return chunk ? chunk_promise.set_cancelled(std::move(cause)) : call.set_cancelled(std::move(cause));
  }
  void request_cancel() {
    if (chunk) {
      chunk_promise.request_cancel();
    } else {
      call.request_cancel();
    }
  }
  // A map chunk whose worker died: reported items keep their outcomes, the rest get `error`.
  bool finish_chunk_with(const std::function<std::exception_ptr(std::size_t)>& error_for) {
    outcomes.resize(items);
    for (std::size_t i = reported; i < items; ++i) {
      outcomes[i] = Outcome<Value>(error_for(i));
    }
    return chunk_promise.set_value(std::move(outcomes));
  }
};

using JobPtr = std::unique_ptr<Job>;

// The workers' tasks by qualified name, from their ready message, and their
// initializers and finalizers (a hook may share a task's name). `serial`
// is unique in the process (tables of pools long gone included), so a cache
// keyed by it never mistakes one pool's table for another's.
struct TaskTable {
  std::unordered_map<std::string, Signature> tasks;
  std::vector<Signature> hooks;
  std::uint64_t serial = 0;
};

// What submitters, cancel hooks and the reactor share; outlives the pool
// while a future's cancel hook may still run.
struct Shared {
  std::atomic<std::int64_t> queued{0};       // accepted, not yet sent to a worker
  std::atomic<std::int64_t> outstanding{0};  // accepted, not yet ended
  std::atomic<std::uint64_t> cancelled{0};
  std::atomic<int> waiters{0};
  std::mutex mutex;
  std::condition_variable changed;

  void notify() {
    if (waiters.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard lock(mutex);
      changed.notify_all();
    }
  }
  void ended(std::int64_t n = 1) {
    if (outstanding.fetch_sub(n, std::memory_order_seq_cst) == n) {
      notify();
    }
  }
  // A queued job of `units` items cancelled by its owner.
  void cancelled_pending(std::size_t units) {
    queued.fetch_sub(1, std::memory_order_seq_cst);
    cancelled.fetch_add(units, std::memory_order_relaxed);
    ended();
    notify();
  }
};

inline std::string what_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

inline std::string seconds_text(std::chrono::nanoseconds d) {
  char text[64];
  std::snprintf(text, sizeof text, "%.3g s", std::chrono::duration<double>(d).count());
  return text;
}

}  // namespace troupe::detail::process
