// troupe::InterruptScope (engine/src/runner/interrupt_scope.cpp): signals
// counted and handed to a callback off the handler, previous handlers back
// afterwards, one scope at a time.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "support/sync.hpp"
#include "troupe/errors.hpp"
#include "troupe/interrupt.hpp"

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using troupe::InterruptScope;
using troupe::test::eventually;

// The callback's view: every count it was handed, in order.
struct Seen {
  std::mutex mutex;
  std::vector<int> counts;
  void add(int count) {
    std::lock_guard lock(mutex);
    counts.push_back(count);
  }
  std::size_t size() {
    std::lock_guard lock(mutex);
    return counts.size();
  }
};

volatile std::sig_atomic_t g_custom_ran = 0;
extern "C" void custom_handler(int /*signo*/) {
  g_custom_ran = 1;
}

// Installs `custom_handler` (with its own flags) for `signo`, and puts back
// whatever was there at the end of the test.
class CustomHandler {
 public:
  explicit CustomHandler(int signo) : signo_(signo) {
    struct sigaction action {};
    action.sa_handler = custom_handler;
    action.sa_flags = SA_NODEFER;
    sigemptyset(&action.sa_mask);
    sigaddset(&action.sa_mask, SIGUSR2);
    EXPECT_EQ(::sigaction(signo, &action, &original_), 0);
  }
  ~CustomHandler() { ::sigaction(signo_, &original_, nullptr); }
  CustomHandler(const CustomHandler&) = delete;
  CustomHandler& operator=(const CustomHandler&) = delete;

 private:
  int signo_;
  struct sigaction original_ {};
};

TEST(InterruptScope, TwoSigintsReachTheCallbackAsOneThenTwoAndTheProcessLives) {
  Seen seen;
  InterruptScope scope([&](int count) { seen.add(count); });
  ASSERT_EQ(std::raise(SIGINT), 0);
  ASSERT_TRUE(eventually([&] { return seen.size() == 1; }));
  ASSERT_EQ(std::raise(SIGINT), 0);
  ASSERT_TRUE(eventually([&] { return seen.size() == 2; }));
  EXPECT_THAT(seen.counts, ElementsAre(1, 2));
  EXPECT_EQ(scope.count(), 2);
}

TEST(InterruptScope, SigtermIsCountedLikeSigint) {
  Seen seen;
  InterruptScope scope([&](int count) { seen.add(count); });
  ASSERT_EQ(std::raise(SIGTERM), 0);
  ASSERT_EQ(std::raise(SIGINT), 0);
  ASSERT_TRUE(eventually([&] { return seen.size() == 2; }));
  EXPECT_THAT(seen.counts, ElementsAre(1, 2));
}

TEST(InterruptScope, EverySignalBeforeTheEndIsHandedOverBeforeTheDestructorReturns) {
  Seen seen;
  {
    InterruptScope scope([&](int count) { seen.add(count); });
    for (int i = 0; i < 5; ++i) {
      ASSERT_EQ(std::raise(SIGINT), 0);
    }
  }
  EXPECT_THAT(seen.counts, ElementsAre(1, 2, 3, 4, 5));
}

TEST(InterruptScope, PreviousHandlersAndFlagsAreBackAfterTheScope) {
  CustomHandler sigint(SIGINT);
  CustomHandler sigterm(SIGTERM);
  struct sigaction before {};
  ASSERT_EQ(::sigaction(SIGINT, nullptr, &before), 0);
  {
    InterruptScope scope([](int) {});
    struct sigaction during {};
    ASSERT_EQ(::sigaction(SIGINT, nullptr, &during), 0);
    EXPECT_NE(during.sa_handler, custom_handler);
  }
  struct sigaction after {};
  ASSERT_EQ(::sigaction(SIGINT, nullptr, &after), 0);
  EXPECT_EQ(after.sa_handler, custom_handler);
  EXPECT_EQ(after.sa_flags & SA_NODEFER, before.sa_flags & SA_NODEFER);
  EXPECT_EQ(sigismember(&after.sa_mask, SIGUSR2), 1);

  g_custom_ran = 0;
  ASSERT_EQ(std::raise(SIGINT), 0);
  EXPECT_EQ(g_custom_ran, 1);
  g_custom_ran = 0;
  ASSERT_EQ(std::raise(SIGTERM), 0);
  EXPECT_EQ(g_custom_ran, 1);
}

TEST(InterruptScope, ASecondLiveScopeIsRefusedAndOneAfterTheFirstEndsIsFine) {
  {
    InterruptScope first([](int) {});
    try {
      InterruptScope second([](int) {});
      FAIL() << "a second live scope was accepted";
    } catch (const troupe::UsageError& e) {
      EXPECT_THAT(e.what(), HasSubstr("another scope is live"));
    }
  }
  Seen seen;
  InterruptScope again([&](int count) { seen.add(count); });
  ASSERT_EQ(std::raise(SIGINT), 0);
  EXPECT_TRUE(eventually([&] { return seen.size() == 1; }));
}

TEST(InterruptScope, ThrowingCallbackDoesNotEndTheScope) {
  std::atomic<int> calls{0};
  InterruptScope scope([&](int) {
    ++calls;
    throw std::runtime_error("host broke");
  });
  ASSERT_EQ(std::raise(SIGINT), 0);
  ASSERT_EQ(std::raise(SIGINT), 0);
  EXPECT_TRUE(eventually([&] { return calls == 2; }));
}

TEST(InterruptScope, EmptyCallbackIsRefused) {
  EXPECT_THROW(InterruptScope(nullptr), troupe::ArgumentError);
  InterruptScope fine([](int) {});  // the refused one left nothing behind
}

}  // namespace
