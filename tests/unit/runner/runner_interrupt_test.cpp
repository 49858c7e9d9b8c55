// Stopping a Runner on both pool kinds: stop() at random moments and from
// several threads at once, the second interrupt, and SIGINT/SIGTERM while
// the run holds an interrupt scope. Whatever the moment, every key ends
// exactly once (an outcome or aborted) and a finished result is kept.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "troupe/runner.hpp"
#include "unit/runner/runner_kinds.hpp"

namespace {

using namespace std::chrono_literals;
using troupe::Call;
using troupe::Runner;
using troupe::RunnerOptions;
using troupe::Value;
using troupe::test::eventually;
using troupe::test::key_of;
using troupe::test::kPatience;
using troupe::test::Marker;

template <class Kind>
using RunnerInterrupt = troupe::test::RunnerKinds<Kind>;
TYPED_TEST_SUITE(RunnerInterrupt, troupe::test::Kinds, troupe::test::KindNames);

// n keys of short sleeps: enough queued work that a stop finds some of it.
std::vector<std::string> add_sleepers(Runner<std::string>& runner, int n, int ms) {
  std::vector<std::string> keys;
  for (int i = 0; i < n; ++i) {
    keys.push_back(key_of(i));
    runner.add(keys.back(), Call{"testing.sleep", {ms}, {}});
  }
  return keys;
}

TYPED_TEST(RunnerInterrupt, StopAtRandomMomentsReportsEveryKeyOnce) {
  auto pool = this->make();
  std::mt19937 random(std::random_device{}());
  for (int round = 0; round < 6; ++round) {
    Runner<std::string> runner(*pool);
    auto keys = add_sleepers(runner, 60, 1);
    const auto delay = std::chrono::microseconds(std::uniform_int_distribution<int>(0, 20'000)(random));
    std::jthread stopper([&] {
      std::this_thread::sleep_for(delay);
      runner.stop();
    });
    auto report = runner.run();
    stopper.join();
    troupe::test::expect_each_key_once(report, keys);
    for (const auto& [key, outcome] : report.outcomes) {
      EXPECT_TRUE(outcome.ok()) << key << ": " << troupe::describe_exception(outcome.error);
    }
  }
}

TYPED_TEST(RunnerInterrupt, StopKeepsFinishedResultsAndAbortsTheQueued) {
  auto pool = this->make(1);
  Runner<std::string> runner(*pool);
  Marker started;
  runner.add("first", Call{"testing.announce_then_sleep", {started.path(), 200}, {}});
  auto keys = add_sleepers(runner, 40, 1);
  keys.push_back("first");
  std::jthread stopper([&] {
    ASSERT_TRUE(eventually([&] { return started.exists(); }, kPatience));
    runner.stop();
  });
  auto report = runner.run();
  stopper.join();
  troupe::test::expect_each_key_once(report, keys);
  EXPECT_TRUE(report.interrupted);
  ASSERT_TRUE(report.outcomes.contains("first"));  // it ran when stopped: its result is kept
  EXPECT_EQ(report.outcomes.at("first").get(), Value(200));
  EXPECT_FALSE(report.aborted.empty());
}

TYPED_TEST(RunnerInterrupt, ConcurrentStopCallsAreOneStop) {
  auto pool = this->make();
  Runner<std::string> runner(*pool);
  Marker started;
  runner.add("first", Call{"testing.announce_then_sleep", {started.path(), 50}, {}});
  auto keys = add_sleepers(runner, 100, 2);
  keys.push_back("first");
  std::vector<std::jthread> stoppers;
  for (int i = 0; i < 4; ++i) {
    stoppers.emplace_back([&] {
      EXPECT_TRUE(eventually([&] { return started.exists(); }, kPatience));
      runner.stop();
    });
  }
  auto report = runner.run();
  stoppers.clear();
  troupe::test::expect_each_key_once(report, keys);
  EXPECT_TRUE(report.interrupted);
}

// outcome() answers for a key that finished (a failure too), never for one
// still running, and only while run() runs: the report has them after.
TYPED_TEST(RunnerInterrupt, AFailedKeysOutcomeIsReadableOnlyWhileItRuns) {
  auto pool = this->make(1);
  Runner<std::string> runner(*pool);
  Marker started;
  runner.add("bad", Call{"testing.fail", {"no", ""}, {}});
  runner.add("slow", Call{"testing.announce_then_cancellable_sleep", {started.path(), 60'000}, {}});
  EXPECT_FALSE(runner.outcome("bad").has_value());
  std::jthread reader([&] {
    EXPECT_TRUE(eventually([&] { return runner.outcome("bad").has_value(); }, kPatience));
    const auto bad = runner.outcome("bad");
    EXPECT_FALSE(bad->ok());
    EXPECT_EQ(bad->attempts, 1u);
    EXPECT_FALSE(runner.outcome("slow").has_value());
    EXPECT_FALSE(runner.outcome("never added").has_value());
    runner.stop_running();
  });
  auto report = runner.run();
  reader.join();
  EXPECT_FALSE(runner.outcome("bad").has_value());
  EXPECT_FALSE(report.outcomes.at("bad").ok());
  troupe::test::expect_each_key_once(report, {"bad", "slow"});
}

TYPED_TEST(RunnerInterrupt, PartialOutcomesAreReadableWhileItRuns) {
  auto pool = this->make(1);
  Runner<std::string> runner(*pool);
  Marker started;
  runner.add("fast", Call{"testing.echo", {7}, {}});
  runner.add("slow", Call{"testing.announce_then_cancellable_sleep", {started.path(), 60'000}, {}});
  std::jthread reader([&] {
    EXPECT_TRUE(eventually([&] { return runner.outcome("fast").has_value(); }, kPatience));
    EXPECT_EQ(runner.outcome("fast")->get(), Value(7));
    EXPECT_FALSE(runner.outcome("slow").has_value());
    EXPECT_EQ(runner.progress().ok, 1u);
    runner.stop_running();
  });
  auto report = runner.run();
  reader.join();
  EXPECT_EQ(report.outcomes.at("fast").get(), Value(7));
  EXPECT_TRUE(report.interrupted);
}

// Work that runs until the test lets it go: on a process pool a task that
// only a kill ends; on a thread pool a callable that ignores its cancel flag
// (so whether the run ends is in the test's hands, not a race).
template <class Kind>
struct Blocker {
  Marker started;
  std::atomic<bool> release{false};

  void add(Runner<std::string>& runner, const std::string& key) {
    if constexpr (Kind::kProcess) {
      runner.add(key, Call{"testing.announce_then_hang", {started.path()}, {}});
    } else {
      runner.add(key, [this] {
        std::ofstream(started.path()) << "started\n";
        while (!release.load()) {
          std::this_thread::sleep_for(1ms);
        }
        return 1;
      });
    }
  }
};

// The second interrupt: a process pool kills the worker (the item is
// aborted); a thread pool sets the cancel flag, and a result that then
// arrives ok is kept.
TYPED_TEST(RunnerInterrupt, TheSecondInterruptEndsRunningWork) {
  auto pool = this->make(1);
  Runner<std::string> runner(*pool);
  Blocker<TypeParam> blocker;
  blocker.add(runner, "long");
  auto keys = add_sleepers(runner, 10, 1);
  keys.push_back("long");
  std::jthread stopper([&] {
    EXPECT_TRUE(eventually([&] { return blocker.started.exists(); }, kPatience));
    runner.stop();
    runner.stop_running();
    std::this_thread::sleep_for(20ms);
    blocker.release = true;
  });
  auto report = runner.run();
  stopper.join();
  troupe::test::expect_each_key_once(report, keys);
  EXPECT_TRUE(report.interrupted);
  if constexpr (TypeParam::kProcess) {
    EXPECT_THAT(report.aborted, ::testing::Contains("long"));
  } else {
    ASSERT_TRUE(report.outcomes.contains("long"));
    EXPECT_EQ(report.outcomes.at("long").get(), Value(1));
  }
}

TYPED_TEST(RunnerInterrupt, SigintWithTheScopeStopsTheRunAndSigtermThenInterruptsRunningWork) {
  auto pool = this->make(1);
  RunnerOptions options;
  options.handle_interrupts = true;
  Runner<std::string> runner(*pool, options);
  Blocker<TypeParam> blocker;
  blocker.add(runner, "long");
  auto keys = add_sleepers(runner, 10, 1);
  keys.push_back("long");
  std::jthread signaller([&] {
    EXPECT_TRUE(eventually([&] { return blocker.started.exists(); }, kPatience));
    std::raise(SIGINT);
    // The first stop was handled once something was aborted (what the host
    // still queued).
    EXPECT_TRUE(eventually([&] { return runner.in_flight() < 11; }, kPatience));
    std::raise(SIGTERM);  // the run cannot have ended: "long" runs until killed or released
    std::this_thread::sleep_for(20ms);
    blocker.release = true;
  });
  auto report = runner.run();
  signaller.join();
  troupe::test::expect_each_key_once(report, keys);
  EXPECT_TRUE(report.interrupted);
  for (const auto& [key, outcome] : report.outcomes) {
    EXPECT_TRUE(outcome.ok()) << key << ": " << troupe::describe_exception(outcome.error);
  }
  if constexpr (TypeParam::kProcess) {
    EXPECT_THAT(report.aborted, ::testing::Contains("long"));  // its worker was killed
  } else {
    EXPECT_EQ(report.aborted.size(), 10u);  // every sleeper waited behind "long"
    EXPECT_EQ(report.outcomes.at("long").get(), Value(1));
  }
}

TYPED_TEST(RunnerInterrupt, StopBeforeRunAbortsEveryKey) {
  auto pool = this->make();
  Runner<std::string> runner(*pool);
  auto keys = add_sleepers(runner, 5, 1);
  runner.stop();
  auto report = runner.run();
  EXPECT_TRUE(report.interrupted);
  EXPECT_TRUE(report.outcomes.empty());
  EXPECT_EQ(report.aborted, keys);
}

}  // namespace
