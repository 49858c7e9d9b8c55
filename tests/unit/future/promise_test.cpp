// troupe::Promise is enough to implement an Executor: a tiny one that runs
// each chunk on a thread of its own, with the map family over it.
#include "troupe/promise.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <ranges>
#include <string>
#include <thread>
#include <vector>

#include "troupe/executor.hpp"
#include "troupe/map.hpp"

namespace {

// Runs "double" (one integer argument, doubled) for each item, each call or
// chunk on its own thread; anything else fails with UnknownTaskError.
class ThreadPerCallExecutor final : public troupe::Executor {
 public:
  ~ThreadPerCallExecutor() override { shutdown(); }

  troupe::Future<troupe::Value> submit_call(troupe::Call call) override {
    auto [future, promise] = troupe::make_future_pair<troupe::Value>(++submitted_);
    start([promise = std::move(promise), call = std::move(call)]() mutable {
      if (promise.try_start(0)) {
        try {
          promise.set_value(run(call.task, call.args));
        } catch (...) {
          promise.set_exception(std::current_exception());
        }
      }
    });
    return future;
  }

  troupe::Future<std::vector<troupe::Outcome<troupe::Value>>> submit_chunk(std::string task,
                                                                           std::vector<troupe::Args> items) override {
    auto [future, promise] = troupe::make_future_pair<std::vector<troupe::Outcome<troupe::Value>>>(++submitted_);
    start([promise = std::move(promise), task = std::move(task), items = std::move(items)]() mutable {
      if (!promise.try_start(0)) {
        return;
      }
      std::vector<troupe::Outcome<troupe::Value>> out;
      for (auto& args : items) {
        try {
          out.emplace_back(run(task, args));
        } catch (...) {
          out.emplace_back(std::current_exception());
        }
      }
      promise.set_value(std::move(out));
    });
    return future;
  }

  void shutdown(const troupe::ShutdownOptions& /*options*/ = {}) override {
    std::lock_guard lock(mutex_);
    threads_.clear();  // jthreads join
  }
  using Executor::join;
  bool join(troupe::Timeout /*timeout*/ = std::nullopt) override {
    shutdown();
    return true;
  }
  // Its calls are instant and never look at a cancel flag: nothing to interrupt.
  void interrupt_running() override {}
  void check() const override {}
  void test() override {}
  void spawn_workers(std::size_t /*n*/) override {}
  std::size_t max_workers() const override { return 1; }
  troupe::PoolGauges gauges() const override { return {.live_workers = 1, .idle_workers = 1}; }
  std::vector<troupe::CancelledTask> cancelled_tasks() const override { return {}; }
  troupe::PoolStats stats() const override { return {}; }

 private:
  static troupe::Value run(const std::string& task, const troupe::Args& args) {
    if (task != "double") {
      throw troupe::UnknownTaskError("ThreadPerCallExecutor: no task '" + task + "'");
    }
    return troupe::Value(args.at(0).get<long>() * 2);
  }
  template <class F>
  void start(F&& fn) {
    std::lock_guard lock(mutex_);
    threads_.emplace_back(std::forward<F>(fn));
  }

  std::mutex mutex_;
  std::vector<std::jthread> threads_;
  std::uint64_t submitted_ = 0;
};

TEST(Promise, MakesFuturesThatCompleteOnce) {
  auto [future, promise] = troupe::make_future_pair<int>(5);
  EXPECT_EQ(future.id(), 5u);
  EXPECT_EQ(future.state(), troupe::FutureState::pending);
  EXPECT_TRUE(promise.try_start(3));
  EXPECT_TRUE(promise.set_value(9));
  EXPECT_FALSE(promise.set_value(10));
  EXPECT_EQ(future.get(), 9);
  EXPECT_EQ(future.worker_id(), 3u);
}

TEST(Promise, DroppedBeforeCompletingFailsItsFuture) {
  troupe::Future<int> future;
  {
    auto pair = troupe::make_future_pair<int>();
    future = pair.first;
  }
  EXPECT_THROW(future.get(), troupe::Error);
}

// What an executor's join() looks like: it waits until every task it handed
// out has left its books (a ProcessPool's on_cancel hook takes a cancelled
// task off them).
class Books {
 public:
  void add() {
    std::lock_guard lock(mutex_);
    ++outstanding_;
  }
  void remove() {
    std::lock_guard lock(mutex_);
    --outstanding_;
    idle_.notify_all();
  }
  bool join(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return idle_.wait_for(lock, timeout, [&] { return outstanding_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable idle_;
  int outstanding_ = 0;
};

TEST(Promise, CancelHookRunsBeforeDoneCallbacksOnTheCancellingThread) {
  Books books;
  auto [future, promise] = troupe::make_future_pair<int>();
  books.add();
  promise.on_cancel([&books] { books.remove(); });
  std::atomic<bool> joined_in_callback{false};
  future.add_done_callback(
      [&](const troupe::Future<int>& /*done*/) { joined_in_callback = books.join(std::chrono::milliseconds(500)); });
  EXPECT_TRUE(future.cancel());
  EXPECT_TRUE(joined_in_callback.load()) << "the done callback ran before the executor's cancel hook";
  EXPECT_EQ(future.state(), troupe::FutureState::cancelled);
}

TEST(Promise, IsEnoughToImplementAnExecutorTheMapRunsOver) {
  ThreadPerCallExecutor executor;
  auto values =
      troupe::map_all(executor, "double", std::views::iota(0, 50), troupe::MapOptions{.chunk_size = 4}).values();
  ASSERT_EQ(values.size(), 50u);
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(values[i].get<long>(), 2 * static_cast<long>(i));
  }
  std::vector<long> lazy;
  for (auto& v : troupe::map(executor, "double", std::vector<long>{1, 2, 3})) {
    lazy.push_back(v.get<long>());
  }
  EXPECT_EQ(lazy, (std::vector<long>{2, 4, 6}));
  EXPECT_EQ(executor.call("double", 21).get().get<long>(), 42);
  EXPECT_THROW(executor.call("triple", 1).get(), troupe::UnknownTaskError);
}

}  // namespace
