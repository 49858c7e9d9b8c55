// The two pool kinds behind one interface, for typed tests that hold every
// Executor to the same contract (docs/semantics.md): a ThreadPool whose
// Registry loaded the testing plugin, and a ProcessPool of troupe-workers
// that load the same plugin.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/paths.hpp"
#include "support/registry.hpp"
#include "support/sync.hpp"
#include "troupe/executor.hpp"
#include "troupe/process_pool.hpp"
#include "troupe/thread_pool.hpp"

namespace troupe::test {

// The options both kinds take, with the defaults the tests want (one worker,
// so "the worker is busy" is one blocker away).
struct PoolSpec {
  std::size_t max_workers = 1;
  std::size_t min_workers = 0;
  std::optional<std::chrono::nanoseconds> idle_timeout = std::chrono::seconds(60);
  std::optional<std::size_t> max_tasks_per_worker = std::nullopt;
  std::optional<Call> initializer = std::nullopt;
  std::optional<Call> finalizer = std::nullopt;
  std::optional<std::size_t> queue_limit = std::nullopt;
  QueueFullPolicy queue_full_policy = QueueFullPolicy::block;
};

struct ThreadKind {
  static constexpr const char* kName = "ThreadPool";
  static constexpr bool kProcess = false;

  static ThreadPoolOptions options(const PoolSpec& spec) {
    ThreadPoolOptions o;
    o.max_workers = spec.max_workers;
    o.min_workers = spec.min_workers;
    o.idle_timeout = spec.idle_timeout;
    o.max_tasks_per_worker = spec.max_tasks_per_worker;
    if (spec.initializer) {
      o.initializer = *spec.initializer;
    }
    if (spec.finalizer) {
      o.finalizer = *spec.finalizer;
    }
    o.queue_limit = spec.queue_limit;
    o.queue_full_policy = spec.queue_full_policy;
    o.name = "contract";
    o.registry = &testing_registry();
    return o;
  }
  static std::unique_ptr<Executor> make(const PoolSpec& spec) { return std::make_unique<ThreadPool>(options(spec)); }
};

struct ProcessKind {
  static constexpr const char* kName = "ProcessPool";
  static constexpr bool kProcess = true;

  static ProcessPoolOptions options(const PoolSpec& spec) {
    ProcessPoolOptions o;
    o.max_workers = spec.max_workers;
    o.min_workers = spec.min_workers;
    o.idle_timeout = spec.idle_timeout;
    o.max_tasks_per_worker = spec.max_tasks_per_worker;
    o.initializer = spec.initializer;
    o.finalizer = spec.finalizer;
    o.queue_limit = spec.queue_limit;
    o.queue_full_policy = spec.queue_full_policy;
    o.name = "contract";
    o.worker_executable = binary_path("troupe-worker");
    return o;
  }
  static std::unique_ptr<Executor> make(const PoolSpec& spec) {
    return std::make_unique<ProcessPool>(std::vector<std::filesystem::path>{plugin_path("testing")}, options(spec));
  }
};

using Kinds = ::testing::Types<ThreadKind, ProcessKind>;

struct KindNames {
  template <class Kind>
  static std::string GetName(int) {
    return Kind::kName;
  }
};

// A generous bound for anything that should take milliseconds.
inline constexpr std::chrono::seconds kPatience{20};

// Instant tasks queued behind the blockers: a process pool sends up to 8
// frames to a worker that has not reported a result yet, so after this many
// per worker whatever is submitted next stays in the host's queue (pending)
// on either kind.
inline constexpr int kPipelineFill = 32;

// Every worker held by a task that runs until its future is cancelled
// (testing.cancellable_sleep polls its cooperative flag), with the pipeline
// filled behind it, so the next submission stays pending. Releases the
// blockers when it goes out of scope, so a failed assertion never leaves a
// pool waiting a minute in its destructor.
// A unique file path a task writes when it really starts (the testing
// plugin's announce_* tasks): a process pool's future counts as running once
// its frame is sent, and a frame sent but not started may still be revoked.
class Marker {
 public:
  Marker() {
    static std::atomic<int> serial{0};
    path_ = std::filesystem::temp_directory_path() /
            ("troupe-started-" + std::to_string(::getpid()) + "-" + std::to_string(serial++));
    std::filesystem::remove(path_);
  }
  Marker(const Marker&) = delete;
  Marker& operator=(const Marker&) = delete;
  Marker(Marker&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  ~Marker() {
    if (!path_.empty()) {
      std::error_code ignored;
      std::filesystem::remove(path_, ignored);
    }
  }
  std::string path() const { return path_.string(); }
  bool exists() const { return std::filesystem::exists(path_); }

 private:
  std::filesystem::path path_;
};

class Occupied {
 public:
  explicit Occupied(Executor& pool) {
    for (std::size_t i = 0; i < pool.max_workers(); ++i) {
      started_.emplace_back();
      blockers_.push_back(pool.call("testing.announce_then_cancellable_sleep", started_.back().path(), 60'000));
    }
    // Started for real: a process pool's future is `running` once sent.
    const bool busy = eventually(
        [&] {
          for (const auto& marker : started_) {
            if (!marker.exists()) {
              return false;
            }
          }
          return pool.busy_workers() == pool.max_workers();
        },
        kPatience);
    EXPECT_TRUE(busy) << "the blockers never started";
    for (std::size_t i = 0; i < pool.max_workers() * kPipelineFill; ++i) {
      fill_.push_back(pool.call("testing.echo", static_cast<std::int64_t>(i)));
    }
  }
  Occupied(const Occupied&) = delete;
  Occupied& operator=(const Occupied&) = delete;
  ~Occupied() { release(); }

  // Lets the blockers return (with false: they were cancelled).
  void release() {
    for (auto& b : blockers_) {
      b.cancel();
    }
  }
  const std::vector<Future<Value>>& blockers() const { return blockers_; }
  const std::vector<Future<Value>>& fill() const { return fill_; }

 private:
  std::vector<Marker> started_;
  std::vector<Future<Value>> blockers_;
  std::vector<Future<Value>> fill_;
};

}  // namespace troupe::test
