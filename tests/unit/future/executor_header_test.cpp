// executor.hpp compiles on its own and its plain types keep their defaults.
#include "troupe/executor.hpp"

#include <gtest/gtest.h>

#include "troupe/cpu_count.hpp"

namespace {

TEST(ExecutorHeader, ShutdownOptionsDefaultToGracefulDrain) {
  troupe::ShutdownOptions options;
  EXPECT_TRUE(options.wait);
  EXPECT_FALSE(options.cancel_pending);
}

TEST(ExecutorHeader, PoolStatsStartAtZero) {
  troupe::PoolStats stats;
  EXPECT_EQ(stats.retired.total(), 0u);
  EXPECT_TRUE(stats.crashes_by_cause.empty());
}

TEST(CpuCount, IsAtLeastOneAndAtMostTheAffinityMask) {
  const auto n = troupe::cpu_count();
  EXPECT_GE(n, 1u);
  EXPECT_LE(n, std::max(1u, std::thread::hardware_concurrency()));
}

TEST(Outcome, HoldsValueOrError) {
  troupe::Outcome<int> ok(3);
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.value(), 3);
  EXPECT_EQ(ok.error(), nullptr);
  troupe::Outcome<int> bad(std::make_exception_ptr(troupe::ArgumentError("x")));
  EXPECT_FALSE(bad.ok());
  EXPECT_THROW(bad.value(), troupe::ArgumentError);
  EXPECT_THROW(bad.rethrow(), troupe::ArgumentError);
}

TEST(Errors, BrokenPoolFamilyDerivesFromCancelledError) {
  EXPECT_THROW(throw troupe::InitializerError("x"), troupe::BrokenPoolError);
  EXPECT_THROW(throw troupe::FinalizerError("x"), troupe::CancelledError);
  EXPECT_THROW(throw troupe::DeadlockError("x"), troupe::Error);
}

TEST(Errors, DescribeExceptionFollowsTheNestedChain) {
  std::exception_ptr error;
  try {
    try {
      throw std::invalid_argument("root cause");
    } catch (...) {
      std::throw_with_nested(troupe::InitializerError("init failed"));
    }
  } catch (...) {
    error = std::current_exception();
  }
  const auto text = troupe::describe_exception(error);
  EXPECT_NE(text.find("init failed"), std::string::npos) << text;
  EXPECT_NE(text.find("root cause"), std::string::npos) << text;
}

}  // namespace
