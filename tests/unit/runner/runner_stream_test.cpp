// The Runner's streaming form on both pool kinds: the source is read only as
// room frees (the runner, not the source, bounds what is in flight), the
// sink gets each key once, and a stop ends an endless source.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <thread>

#include "troupe/runner.hpp"
#include "unit/runner/runner_kinds.hpp"

namespace {

using namespace std::chrono_literals;
using troupe::Call;
using troupe::RunItem;
using troupe::Runner;
using troupe::RunnerOptions;
using troupe::RunOutcome;
using troupe::Value;

template <class Kind>
using RunnerStream = troupe::test::RunnerKinds<Kind>;
TYPED_TEST_SUITE(RunnerStream, troupe::test::Kinds, troupe::test::KindNames);

// Counts what the source handed out against what came back, at every pull.
struct Ledger {
  std::uint64_t pulled = 0;
  std::uint64_t sunk = 0;
  std::uint64_t aborted = 0;
  std::uint64_t most_outstanding = 0;
  std::set<std::uint64_t> seen;

  void on_pull() {
    ++pulled;
    most_outstanding = std::max(most_outstanding, pulled - sunk - aborted);
  }
  void on_end(std::uint64_t key) { EXPECT_TRUE(seen.insert(key).second) << "key " << key << " ended twice"; }
};

TYPED_TEST(RunnerStream, AnEndlessSourceWithASlowSinkStaysWithinTheWindowUntilStopped) {
  auto pool = this->make();
  RunnerOptions options;
  options.window = 16;
  Runner<std::uint64_t> runner(*pool, options);
  Ledger ledger;
  std::uint64_t next = 0;
  std::size_t most_in_flight = 0;
  auto summary = runner.stream(
      [&]() -> std::optional<RunItem<std::uint64_t>> {
        ledger.on_pull();
        const std::uint64_t key = next++;
        return RunItem<std::uint64_t>{key, Call{"testing.echo", {key}, {}}};
      },
      [&](std::uint64_t&& key, RunOutcome&& outcome) {
        EXPECT_EQ(outcome.get(), Value(key));
        ledger.on_end(key);
        ++ledger.sunk;
        most_in_flight = std::max(most_in_flight, runner.in_flight());
        std::this_thread::sleep_for(200us);  // a slow sink
        if (ledger.sunk == 300) {
          runner.stop();
        }
      },
      [&](std::uint64_t&& key) {
        ledger.on_end(key);
        ++ledger.aborted;
      });
  EXPECT_TRUE(summary.interrupted);
  EXPECT_GE(ledger.sunk, 300u);
  EXPECT_EQ(ledger.sunk + ledger.aborted, ledger.pulled);  // every pulled key ended once
  EXPECT_EQ(summary.ok, ledger.sunk);
  EXPECT_EQ(summary.aborted, ledger.aborted);
  EXPECT_LE(ledger.most_outstanding, 16u);
  EXPECT_LE(most_in_flight, 16u);
  EXPECT_EQ(runner.in_flight(), 0u);
}

TYPED_TEST(RunnerStream, AFastSourceAndASlowPoolAreBoundedByTheRunner) {
  auto pool = this->make(1);
  RunnerOptions options;
  options.window = 4;
  Runner<std::uint64_t> runner(*pool, options);
  Ledger ledger;
  std::uint64_t next = 0;
  auto summary = runner.stream(
      [&]() -> std::optional<RunItem<std::uint64_t>> {
        if (next == 40) {
          return std::nullopt;
        }
        ledger.on_pull();
        const std::uint64_t key = next++;
        return RunItem<std::uint64_t>{key, Call{"testing.sleep", {2}, {}}};
      },
      [&](std::uint64_t&& key, RunOutcome&& outcome) {
        EXPECT_TRUE(outcome.ok()) << troupe::describe_exception(outcome.error);
        ledger.on_end(key);
        ++ledger.sunk;
      });
  EXPECT_FALSE(summary.interrupted);
  EXPECT_EQ(summary.ok, 40u);
  EXPECT_EQ(ledger.sunk, 40u);
  EXPECT_LE(ledger.most_outstanding, 4u);
  EXPECT_EQ(ledger.most_outstanding, 4u);  // and it does fill the window
}

TYPED_TEST(RunnerStream, ASourceThatThrowsIsRethrownOnceItsItemsEnded) {
  auto pool = this->make();
  Runner<int> runner(*pool);
  int next = 0;
  std::set<int> ended;
  EXPECT_THROW(runner.stream(
                   [&]() -> std::optional<RunItem<int>> {
                     if (next == 5) {
                       throw std::runtime_error("source broke");
                     }
                     const int key = next++;
                     return RunItem<int>{key, Call{"testing.echo", {key}, {}}};
                   },
                   [&](int&& key, RunOutcome&&) { EXPECT_TRUE(ended.insert(key).second); },
                   [&](int&& key) { EXPECT_TRUE(ended.insert(key).second); }),
               std::runtime_error);
  EXPECT_EQ(ended, (std::set<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(runner.in_flight(), 0u);
}

TYPED_TEST(RunnerStream, StreamAfterRunIsAUsageError) {
  auto pool = this->make();
  Runner<int> runner(*pool);
  runner.run();
  EXPECT_THROW(runner.stream([]() -> std::optional<RunItem<int>> { return std::nullopt; }, [](int&&, RunOutcome&&) {}),
               troupe::UsageError);
}

}  // namespace
