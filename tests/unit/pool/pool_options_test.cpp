// troupe::validate() over both option structs: every rule, the same answer
// for the same option on both kinds, every problem reported at once.
#include "troupe/pool_options.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "troupe/cpu_count.hpp"
#include "troupe/thread_pool.hpp"

namespace {

using namespace std::chrono_literals;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using troupe::OptionProblem;
using troupe::ProcessPoolOptions;
using troupe::ThreadPoolOptions;

std::vector<std::string> options_of(const std::vector<OptionProblem>& problems) {
  std::vector<std::string> out;
  for (const auto& p : problems) {
    out.push_back(p.option);
  }
  return out;
}

template <class Options>
std::string thrown_by(const Options& options) {
  try {
    troupe::throw_if_invalid(options);
  } catch (const troupe::UsageError& e) {
    return e.what();
  }
  return "(no UsageError)";
}

// The shared fields, one suite over both kinds.
template <class Options>
class SharedPoolOption : public ::testing::Test {};
using OptionKinds = ::testing::Types<ThreadPoolOptions, ProcessPoolOptions>;
TYPED_TEST_SUITE(SharedPoolOption, OptionKinds);

TYPED_TEST(SharedPoolOption, DefaultsAreValid) {
  EXPECT_TRUE(troupe::validate(TypeParam{}).empty());
}

TYPED_TEST(SharedPoolOption, QueueLimitZeroIsRefused) {
  TypeParam o;
  o.queue_limit = 0;
  EXPECT_THAT(troupe::validate(o),
              ElementsAre(OptionProblem{"queue_limit", "0", "at least 1, or unset for an unbounded queue"}));
  o.queue_limit = 1;
  EXPECT_TRUE(troupe::validate(o).empty());
}

TYPED_TEST(SharedPoolOption, MaxTasksPerWorkerZeroIsRefused) {
  TypeParam o;
  o.max_tasks_per_worker = 0;
  EXPECT_THAT(troupe::validate(o),
              ElementsAre(OptionProblem{"max_tasks_per_worker", "0", "at least 1, or unset for no limit"}));
  o.max_tasks_per_worker = 1;
  EXPECT_TRUE(troupe::validate(o).empty());
}

TYPED_TEST(SharedPoolOption, MinWorkersAboveMaxWorkersIsRefused) {
  TypeParam o;
  o.max_workers = 2;
  o.min_workers = 3;
  EXPECT_THAT(troupe::validate(o), ElementsAre(OptionProblem{"min_workers", "3", "at most max_workers (2)"}));
  o.min_workers = 2;
  EXPECT_TRUE(troupe::validate(o).empty());
}

TYPED_TEST(SharedPoolOption, MinWorkersIsComparedWithTheCpuCountWhenMaxWorkersIsZero) {
  TypeParam o;
  o.min_workers = troupe::cpu_count() + 1;
  const auto problems = troupe::validate(o);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].option, "min_workers");
  EXPECT_EQ(problems[0].allowed,
            "at most max_workers (0, which is cpu_count() = " + std::to_string(troupe::cpu_count()) + " here)");
}

TYPED_TEST(SharedPoolOption, NegativeIdleTimeoutIsRefusedZeroIsNot) {
  TypeParam o;
  o.idle_timeout = -250ms;
  EXPECT_THAT(options_of(troupe::validate(o)), ElementsAre("idle_timeout"));
  EXPECT_EQ(troupe::validate(o)[0].value, "-250ms");
  o.idle_timeout = 0ns;  // retire as soon as idle
  EXPECT_TRUE(troupe::validate(o).empty());
  o.idle_timeout = std::nullopt;
  EXPECT_TRUE(troupe::validate(o).empty());
}

TYPED_TEST(SharedPoolOption, EmptyNameIsRefused) {
  TypeParam o;
  o.name = "";
  EXPECT_THAT(options_of(troupe::validate(o)), ElementsAre("name"));
}

TEST(PoolOptions, SameSharedOptionGetsTheSameAnswerOnBothKinds) {
  ThreadPoolOptions t{.max_workers = 1, .min_workers = 4, .idle_timeout = -1s, .max_tasks_per_worker = 0};
  t.queue_limit = 0;
  ProcessPoolOptions p{.max_workers = 1, .min_workers = 4, .idle_timeout = -1s, .max_tasks_per_worker = 0};
  p.queue_limit = 0;
  EXPECT_EQ(troupe::validate(t), troupe::validate(p));
  EXPECT_EQ(troupe::validate(t).size(), 4u);
}

TEST(PoolOptions, DesignatedInitializersKeepWorking) {
  ThreadPoolOptions t{.max_workers = 4, .name = "io"};
  ProcessPoolOptions p{.max_workers = 4, .task_timeout = 30s, .name = "cpu"};
  EXPECT_EQ(t.max_workers, 4u);
  EXPECT_EQ(t.name, "io");
  EXPECT_EQ(t.idle_timeout, std::chrono::nanoseconds(60s));
  EXPECT_EQ(p.task_timeout, std::chrono::nanoseconds(30s));
  EXPECT_EQ(p.max_frame, std::size_t{64} << 20);
  EXPECT_EQ(ThreadPoolOptions{}.name, "pool");
  EXPECT_EQ(ProcessPoolOptions{}.name, "process-pool");
}

TEST(ThreadPoolOptionsValidate, PluginHookWithoutRegistryIsRefused) {
  ThreadPoolOptions o{.initializer = troupe::Call{"testing.setup", {}, {}},
                      .finalizer = troupe::Call{"testing.teardown", {}, {}}};
  EXPECT_THAT(troupe::validate(o),
              ElementsAre(OptionProblem{"initializer", "plugin call 'testing.setup'",
                                        "a C++ callable, or a plugin call together with .registry to resolve it"},
                          AllOf(::testing::Field(&OptionProblem::option, "finalizer"),
                                ::testing::Field(&OptionProblem::value, "plugin call 'testing.teardown'"))));
  ThreadPoolOptions callable{.initializer = [](troupe::Worker&) {
  }};
  EXPECT_TRUE(troupe::validate(callable).empty());
}

TEST(ThreadPoolOptionsValidate, NegativeSpinIsRefusedZeroIsNot) {
  EXPECT_THAT(options_of(troupe::validate(ThreadPoolOptions{.spin_before_sleep = -1us})),
              ElementsAre("spin_before_sleep"));
  EXPECT_TRUE(troupe::validate(ThreadPoolOptions{.spin_before_sleep = 0ns}).empty());
}

TEST(ThreadPoolOptionsValidate, CallerRunsIsAllowed) {
  EXPECT_TRUE(
      troupe::validate(ThreadPoolOptions{.queue_limit = 1, .queue_full_policy = troupe::QueueFullPolicy::caller_runs})
          .empty());
}

TEST(ProcessPoolOptionsValidate, CallerRunsIsRefusedNamingTheKind) {
  ProcessPoolOptions o{.queue_full_policy = troupe::QueueFullPolicy::caller_runs};
  const auto problems = troupe::validate(o);
  ASSERT_THAT(options_of(problems), ElementsAre("queue_full_policy"));
  EXPECT_EQ(problems[0].value, "caller_runs");
  EXPECT_THAT(problems[0].allowed,
              AllOf(HasSubstr("block or fail on a ProcessPool"), HasSubstr("caller_runs exists only on thread pools")));
  EXPECT_THAT(thrown_by(o), HasSubstr("ProcessPool 'process-pool': 1 invalid option: queue_full_policy = caller_runs"));
}

TEST(ProcessPoolOptionsValidate, DurationsThatMakeNoSenseAreRefused) {
  ProcessPoolOptions o{.task_timeout = 0ns, .startup_timeout = -1s, .shutdown_grace = -5ms};
  const auto problems = troupe::validate(o);
  EXPECT_THAT(options_of(problems), ElementsAre("task_timeout", "startup_timeout", "shutdown_grace"));
  EXPECT_EQ(problems[0].value, "0ns");
  EXPECT_EQ(problems[1].value, "-1s");
  EXPECT_EQ(problems[2].value, "-5ms");
  EXPECT_TRUE(troupe::validate(ProcessPoolOptions{.task_timeout = 1ns, .shutdown_grace = 0ns}).empty());
  EXPECT_THAT(options_of(troupe::validate(ProcessPoolOptions{.startup_timeout = 0ns})), ElementsAre("startup_timeout"));
}

TEST(ProcessPoolOptionsValidate, MaxFrameMustFitBetween1KiBAndTheLengthField) {
  EXPECT_THAT(troupe::validate(ProcessPoolOptions{.max_frame = 1023}),
              ElementsAre(OptionProblem{"max_frame", "1023", "between 1024 and 4294967295 bytes"}));
  EXPECT_TRUE(troupe::validate(ProcessPoolOptions{.max_frame = 1024}).empty());
  EXPECT_THAT(options_of(troupe::validate(ProcessPoolOptions{.max_frame = std::size_t{1} << 32})),
              ElementsAre("max_frame"));
}

TEST(ProcessPoolOptionsValidate, CrashStormWindowMustBePositiveWhileItCounts) {
  EXPECT_THAT(troupe::validate(ProcessPoolOptions{.crash_storm = {.max = 3, .within = 0ns}}),
              ElementsAre(OptionProblem{"crash_storm.within", "0ns",
                                        "positive while crash_storm.max > 0 (max = 0 turns crash storms off)"}));
  EXPECT_THAT(options_of(troupe::validate(ProcessPoolOptions{.crash_storm = {.max = 3, .within = -1s}})),
              ElementsAre("crash_storm.within"));
  EXPECT_TRUE(troupe::validate(ProcessPoolOptions{.crash_storm = {.max = 0, .within = 0ns}}).empty());
}

TEST(ProcessPoolOptionsValidate, RecycleJitterNeedsATaskLimit) {
  EXPECT_THAT(options_of(troupe::validate(ProcessPoolOptions{.recycle_jitter = 2})), ElementsAre("recycle_jitter"));
  EXPECT_TRUE(troupe::validate(ProcessPoolOptions{.max_tasks_per_worker = 10, .recycle_jitter = 2}).empty());
}

TEST(ProcessPoolOptionsValidate, ZeroMemoryLimitIsRefused) {
  EXPECT_THAT(troupe::validate(ProcessPoolOptions{.max_memory_per_worker = 0}),
              ElementsAre(OptionProblem{"max_memory_per_worker", "0", "at least 1 byte, or unset for no limit"}));
}

TEST(ProcessPoolOptionsValidate, EnvironmentNamesMustBeUsable) {
  ProcessPoolOptions o{.env = {{"", "x"}, {"A=B", "y"}, {"OK", "z"}}};
  const auto problems = troupe::validate(o);
  EXPECT_THAT(options_of(problems), ElementsAre("env", "env"));
  EXPECT_EQ(problems[0].value, "\"\"");
  EXPECT_EQ(problems[1].value, "\"A=B\"");
}

TEST(PoolOptions, EveryProblemIsReportedAtOnce) {
  ProcessPoolOptions o{.max_workers = 1,
                       .min_workers = 2,
                       .max_tasks_per_worker = 0,
                       .queue_limit = 0,
                       .queue_full_policy = troupe::QueueFullPolicy::caller_runs,
                       .max_frame = 10,
                       .crash_storm = {.max = 1, .within = 0ns},
                       .name = "cpu"};
  EXPECT_THAT(options_of(troupe::validate(o)), ElementsAre("min_workers", "max_tasks_per_worker", "queue_limit",
                                                           "queue_full_policy", "max_frame", "crash_storm.within"));
  EXPECT_THAT(thrown_by(o),
              AllOf(HasSubstr("ProcessPool 'cpu': 6 invalid options: "), HasSubstr("min_workers = 2: must be at most"),
                    HasSubstr("; max_tasks_per_worker = 0: must be at least 1"), HasSubstr("; queue_limit = 0"),
                    HasSubstr("; max_frame = 10: must be between 1024"), HasSubstr("; crash_storm.within = 0ns")));
}

TEST(PoolOptions, ValidOptionsDoNotThrow) {
  EXPECT_NO_THROW(troupe::throw_if_invalid(ThreadPoolOptions{}));
  EXPECT_NO_THROW(troupe::throw_if_invalid(ProcessPoolOptions{}));
}

TEST(ThreadPool, ConstructorRefusesEveryInvalidOptionAtOnce) {
  try {
    troupe::ThreadPool pool({.max_workers = 1, .min_workers = 2, .queue_limit = 0, .name = "io"});
    FAIL() << "no UsageError";
  } catch (const troupe::UsageError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("ThreadPool 'io': 2 invalid options: min_workers = 2"),
                                HasSubstr("; queue_limit = 0: must be at least 1")));
  }
}

TEST(ThreadPool, ConstructorRefusesAPluginHookWithoutRegistry) {
  EXPECT_THROW(troupe::ThreadPool({.initializer = troupe::Call{"testing.setup", {}, {}}}), troupe::UsageError);
}

}  // namespace
