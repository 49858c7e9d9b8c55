// troupe::Timeout: any duration converts without overflowing, and every wait
// that takes one (get, wait, exception, wait(), as_completed) honours it.
#include "troupe/timeout.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <thread>
#include <vector>

#include "troupe/future.hpp"
#include "troupe/promise.hpp"
#include "troupe/wait.hpp"

namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;
using troupe::make_future_pair;
using troupe::Timeout;

TEST(Timeout, DurationsBeyondNanosecondsSaturateInsteadOfOverflowing) {
  EXPECT_EQ(*Timeout(std::chrono::hours::max()), nanoseconds::max());
  EXPECT_EQ(*Timeout(std::chrono::seconds::max()), nanoseconds::max());
  EXPECT_EQ(*Timeout(std::chrono::duration<double>(1e300)), nanoseconds::max());
  EXPECT_EQ(*Timeout(std::chrono::duration<double>(std::numeric_limits<double>::infinity())), nanoseconds::max());
  EXPECT_EQ(*Timeout(std::chrono::hours::min()), nanoseconds::min());
  EXPECT_EQ(*Timeout(std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN())), nanoseconds::zero());
}

TEST(Timeout, OrdinaryDurationsConvertExactly) {
  EXPECT_EQ(*Timeout(250ms), 250ms);
  EXPECT_EQ(*Timeout(std::chrono::hours(2)), 2h);
  EXPECT_EQ(*Timeout(std::chrono::duration<double>(0.5)), 500ms);
  EXPECT_EQ(*Timeout(-3s), -3s);
  EXPECT_FALSE(Timeout(std::nullopt).has_value());
  EXPECT_EQ(Timeout(std::optional<std::chrono::seconds>(2s)), Timeout(2000ms));
  EXPECT_EQ(Timeout(), std::nullopt);
}

// Completes the promise with 7 a moment after the test starts waiting (the
// wait fails at once if the timeout overflowed, long before this).
template <class P>
std::jthread complete_soon(P& promise) {
  return std::jthread([&promise] {
    std::this_thread::sleep_for(30ms);
    promise.set_value(7);
  });
}

TEST(Timeout, GetWaitAndExceptionWithTheLongestDurationsWait) {
  {
    auto [future, promise] = make_future_pair<int>();
    auto producer = complete_soon(promise);
    EXPECT_EQ(future.get(std::chrono::hours::max()), 7);
  }
  {
    auto [future, promise] = make_future_pair<int>();
    auto producer = complete_soon(promise);
    EXPECT_TRUE(future.wait(std::chrono::duration<double>(1e300)));
  }
  {
    auto [future, promise] = make_future_pair<int>();
    auto producer = complete_soon(promise);
    EXPECT_EQ(future.exception(std::chrono::minutes::max()), nullptr);
  }
}

TEST(Timeout, WaitAndAsCompletedWithTheLongestDurationsWait) {
  {
    auto [future, promise] = make_future_pair<int>();
    auto producer = complete_soon(promise);
    auto split = troupe::wait(std::vector{future}, std::chrono::hours::max());
    EXPECT_EQ(split.done.size(), 1u);
  }
  for (const bool keep_order : {false, true}) {
    auto [future, promise] = make_future_pair<int>();
    auto producer = complete_soon(promise);
    int seen = 0;
    for (const auto& f : troupe::as_completed(std::vector{future}, std::chrono::seconds::max(), keep_order)) {
      seen += f.get();
    }
    EXPECT_EQ(seen, 7);
  }
}

}  // namespace
