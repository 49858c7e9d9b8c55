// wait(futures, timeout, return_when) and as_completed.
#include "troupe/wait.hpp"

#include "troupe/promise.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using troupe::Future;
using troupe::make_future_pair;
using troupe::Promise;
using troupe::ReturnWhen;

struct Pairs {
  std::vector<Future<int>> futures;
  std::vector<Promise<int>> promises;
  explicit Pairs(int n) {
    for (int i = 0; i < n; ++i) {
      auto [f, p] = make_future_pair<int>(static_cast<std::uint64_t>(i));
      futures.push_back(f);
      promises.push_back(std::move(p));
    }
  }
};

TEST(Wait, AllCompletedWaitsForEveryFuture) {
  Pairs p(3);
  std::thread producer([&] {
    for (int i = 0; i < 3; ++i) {
      p.promises[static_cast<std::size_t>(i)].set_value(i);
    }
  });
  auto result = troupe::wait(p.futures);
  producer.join();
  EXPECT_EQ(result.done.size(), 3u);
  EXPECT_TRUE(result.not_done.empty());
}

TEST(Wait, FirstCompletedReturnsAtTheFirst) {
  Pairs p(3);
  p.promises[1].set_value(1);
  auto result = troupe::wait(p.futures, std::nullopt, ReturnWhen::first_completed);
  ASSERT_EQ(result.done.size(), 1u);
  EXPECT_EQ(result.done[0].id(), 1u);
  EXPECT_EQ(result.not_done.size(), 2u);
}

TEST(Wait, FirstExceptionReturnsAtTheFirstFailureButNotAtACancellation) {
  Pairs p(3);
  p.futures[0].cancel();
  p.promises[1].set_value(1);
  auto partial = troupe::wait(p.futures, 1ms, ReturnWhen::first_exception);
  EXPECT_EQ(partial.not_done.size(), 1u);  // a cancellation is not an exception: it timed out
  p.promises[2].set_exception(std::make_exception_ptr(std::runtime_error("x")));
  auto result = troupe::wait(p.futures, std::nullopt, ReturnWhen::first_exception);
  EXPECT_EQ(result.done.size(), 3u);
}

TEST(Wait, TimeoutReturnsAPartialSplit) {
  Pairs p(2);
  p.promises[0].set_value(0);
  auto result = troupe::wait(p.futures, 5ms);
  EXPECT_EQ(result.done.size(), 1u);
  EXPECT_EQ(result.not_done.size(), 1u);
}

TEST(Wait, DuplicatesCountOnce) {
  Pairs p(1);
  p.promises[0].set_value(0);
  std::vector<Future<int>> twice{p.futures[0], p.futures[0]};
  auto result = troupe::wait(twice);
  EXPECT_EQ(result.done.size(), 1u);
}

TEST(AsCompleted, FinishedFuturesComeFirstThenInCompletionOrder) {
  Pairs p(3);
  p.promises[2].set_value(2);
  std::vector<std::uint64_t> order;
  auto range = troupe::as_completed(p.futures);
  auto it = range.begin();
  order.push_back(it->id());
  p.promises[0].set_value(0);
  ++it;
  order.push_back(it->id());
  p.promises[1].set_value(1);
  ++it;
  order.push_back(it->id());
  ++it;
  EXPECT_EQ(it, range.end());
  EXPECT_EQ(order, (std::vector<std::uint64_t>{2, 0, 1}));
}

TEST(AsCompleted, TimeoutThrowsNamingTheUnfinished) {
  Pairs p(2);
  p.promises[0].set_value(0);
  auto range = troupe::as_completed(p.futures, 5ms);
  auto it = range.begin();
  EXPECT_EQ(it->get(), 0);
  try {
    ++it;
    FAIL() << "no timeout";
  } catch (const troupe::TimeoutError& e) {
    EXPECT_EQ(std::string(e.what()), "1 (of 2) futures unfinished");
  }
}

TEST(AsCompleted, KeepOrderYieldsInInputOrder) {
  Pairs p(3);
  std::thread producer([&] {
    for (int i = 2; i >= 0; --i) {
      p.promises[static_cast<std::size_t>(i)].set_value(i);
    }
  });
  std::vector<int> order;
  for (const auto& f : troupe::as_completed(p.futures, std::nullopt, true)) {
    order.push_back(f.get());
  }
  producer.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
}

TEST(AsCompleted, DuplicatesAreYieldedOnce) {
  Pairs p(1);
  p.promises[0].set_value(0);
  std::vector<Future<int>> twice{p.futures[0], p.futures[0]};
  int n = 0;
  for (const auto& f : troupe::as_completed(twice)) {
    static_cast<void>(f);
    ++n;
  }
  EXPECT_EQ(n, 1);
}

}  // namespace
