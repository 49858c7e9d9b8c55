// troupe::parallelize: a temporary pool of the kind asked, outcomes in
// input order.
#include "troupe/parallelize.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "support/paths.hpp"

namespace {

using ::testing::HasSubstr;
using troupe::ParallelizeOptions;
using troupe::PoolKind;
using troupe::Progress;
using troupe::Value;

TEST(Parallelize, ACallableGivesOutcomesInInputOrder) {
  std::vector<int> inputs;
  for (int i = 0; i < 500; ++i) {
    inputs.push_back(i);
  }
  auto report = troupe::parallelize(
      [](int x) {
        if (x == 7) {
          throw std::runtime_error("seven");
        }
        return x * x;
      },
      inputs, {.workers = 2, .progress = Progress::none()});
  ASSERT_EQ(report.outcomes.size(), 500u);
  EXPECT_FALSE(report.interrupted);
  EXPECT_TRUE(report.aborted.empty());
  for (int i = 0; i < 500; ++i) {
    if (i == 7) {
      EXPECT_THAT(troupe::describe_exception(report.outcomes[7].error), HasSubstr("seven"));
    } else {
      EXPECT_EQ(report.outcomes[static_cast<std::size_t>(i)].get(), Value(i * i));
    }
  }
}

TEST(Parallelize, ATaskRunsOnEitherKind) {
  for (PoolKind kind : {PoolKind::thread, PoolKind::process}) {
    ParallelizeOptions options;
    options.kind = kind;
    options.workers = 2;
    options.plugins = {troupe::test::plugin_path("testing")};
    options.progress = Progress::none();
    auto report = troupe::parallelize("testing.double", std::vector<int>{3, 1, 2}, options);
    ASSERT_EQ(report.outcomes.size(), 3u);
    EXPECT_EQ(report.outcomes[0].get(), Value(6));
    EXPECT_EQ(report.outcomes[1].get(), Value(2));
    EXPECT_EQ(report.outcomes[2].get(), Value(4));
  }
}

TEST(Parallelize, ACallableOnAProcessPoolIsAUsageErrorNamingTheKind) {
  try {
    troupe::parallelize([](int x) { return x; }, std::vector<int>{1}, {.kind = PoolKind::process});
    FAIL() << "accepted";
  } catch (const troupe::UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("thread pool"));
  }
}

}  // namespace
