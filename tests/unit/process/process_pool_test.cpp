// ProcessPool behaviour, driven by the misbehaving tasks of plugins/testing.
#include "troupe/process_pool.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "process/frame_codec.hpp"
#include "support/paths.hpp"
#include "troupe/errors.hpp"

namespace troupe {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::vector<std::filesystem::path> testing_plugin() {
  return {test::plugin_path("testing")};
}

ProcessPoolOptions small(std::size_t workers = 2) {
  ProcessPoolOptions options;
  options.max_workers = workers;
  options.worker_executable = test::binary_path("troupe-worker");
  return options;
}

// Polls `condition` until it holds; the limit is a generous upper bound, never a timing assertion.
template <class F>
bool eventually(F condition, std::chrono::seconds limit = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) {
      return true;
    }
    std::this_thread::sleep_for(2ms);
  }
  return condition();
}

std::string report_of(const std::exception_ptr& error) {
  return format_error_report(error);
}

// Runs `f`, expects it to throw an E, and returns a copy of it with its
// nested cause (a plain copy of E would slice std::nested_exception off).
template <class E>
struct Caught : E {
  Caught(const E& e, std::exception_ptr nested) : E(e), cause(std::move(nested)) {}
  std::exception_ptr cause;
};

template <class E, class F>
Caught<E> expect_throws(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return Caught<E>(e, nested_cause(e));
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw " << typeid(e).name() << ": " << e.what();
    throw;
  }
  ADD_FAILURE() << "did not throw";
  throw std::logic_error("did not throw");
}

TEST(ProcessPool, CallReturnsTheTaskValue) {
  ProcessPool pool(testing_plugin(), small());
  EXPECT_EQ(pool.call("testing.double", 21).get(), 42);
  EXPECT_EQ(pool.call("testing.echo", Value{{"a", {1, 2, "x"}}}).get(), (Value{{"a", {1, 2, "x"}}}));
}

TEST(ProcessPool, WorkersStartLazily) {
  ProcessPool pool(testing_plugin(), small(2));
  EXPECT_EQ(pool.workers(), 0u);
  EXPECT_EQ(pool.call("testing.double", 1).get(), 2);
  EXPECT_GE(pool.workers(), 1u);
  EXPECT_LE(pool.workers(), 2u);
}

TEST(ProcessPool, ManyCallsAllComplete) {
  ProcessPool pool(testing_plugin(), small(2));
  std::vector<Future<Value>> futures;
  for (int i = 0; i < 5000; ++i) {
    futures.push_back(pool.call("testing.double", i));
  }
  for (int i = 0; i < 5000; ++i) {
    ASSERT_EQ(futures[static_cast<std::size_t>(i)].get(), 2 * i);
  }
  EXPECT_TRUE(pool.join(30s));
  const auto stats = pool.stats();
  EXPECT_EQ(stats.submitted, 5000u);
  EXPECT_EQ(stats.completed, 5000u);
}

TEST(ProcessPool, KeywordArgumentsReachTheTask) {
  ProcessPool pool(testing_plugin(), small(1));
  EXPECT_EQ(pool.call("testing.double", kw("x", 5)).get(), 10);
}

TEST(ProcessPool, RemoteExceptionKeepsTypeMessageCausesAndTrace) {
  ProcessPool pool(testing_plugin(), small(1));
  auto future = pool.call("testing.fail", "outer trouble", "inner cause");
  const auto error = expect_throws<RemoteError>([&] { future.get(); });
  EXPECT_THAT(error.remote_type(), HasSubstr("TestingError"));
  EXPECT_EQ(error.remote_message(), "outer trouble");
  EXPECT_THAT(error.what(), HasSubstr("outer trouble"));
  EXPECT_THAT(error.what(), HasSubstr("std::invalid_argument: inner cause"));
  EXPECT_FALSE(error.stack_trace().empty());
  const auto cause = error.cause;
  ASSERT_TRUE(cause);
  try {
    std::rethrow_exception(cause);
  } catch (const RemoteError& inner) {
    EXPECT_EQ(inner.remote_type(), "std::invalid_argument");
    EXPECT_EQ(inner.remote_message(), "inner cause");
  }
  const std::string report = report_of(future.exception());
  EXPECT_THAT(report, HasSubstr("caused by: std::invalid_argument: inner cause"));
  EXPECT_THAT(report, HasSubstr("remote stack trace:"));
}

// The remote record stays reachable as the nested cause.
RemoteError remote_cause(const std::exception_ptr& cause) {
  try {
    std::rethrow_exception(cause);
  } catch (const RemoteError& e) {
    return e;
  } catch (...) {
  }
  ADD_FAILURE() << "the nested cause is not a RemoteError";
  return RemoteError("", "", "");
}

TEST(ProcessPool, WrongArgumentsAreAnArgumentErrorWithTheRemoteCause) {
  ProcessPool pool(testing_plugin(), small(1));
  const auto error = expect_throws<ArgumentError>([&] { pool.call("testing.double", "not a number").get(); });
  EXPECT_THAT(error.what(), HasSubstr("testing.double"));
  ASSERT_TRUE(error.cause);
  EXPECT_EQ(remote_cause(error.cause).remote_type(), "troupe::ArgumentError");
}

TEST(ProcessPool, ValueOutOfTheParametersRangeIsAnArgumentError) {
  ProcessPool pool(testing_plugin(), small(1));
  const auto error = expect_throws<ArgumentError>(
      [&] { pool.call("testing.exit", std::int64_t{1} << 40).get(); });  // exit takes an int
  EXPECT_THAT(error.what(), HasSubstr("out of range"));
  const auto unsigned_error = expect_throws<ArgumentError>(
      [&] { pool.call("testing.double", std::numeric_limits<std::uint64_t>::max()).get(); });
  EXPECT_THAT(unsigned_error.what(), HasSubstr("testing.double"));
  EXPECT_EQ(pool.call("testing.double", 2).get(), 4);
}

TEST(ProcessPool, UnknownTaskIsAnUnknownTaskErrorWithTheRemoteCause) {
  ProcessPool pool(testing_plugin(), small(1));
  const auto error = expect_throws<UnknownTaskError>([&] { pool.call("testing.nope").get(); });
  EXPECT_THAT(error.what(), HasSubstr("testing.nope"));
  ASSERT_TRUE(error.cause);
  EXPECT_EQ(remote_cause(error.cause).remote_type(), "troupe::UnknownTaskError");
  EXPECT_EQ(pool.call("testing.double", 2).get(), 4);
}

TEST(ProcessPool, UnknownTaskIsRefusedBeforeSendingOnceWorkersReportedTheirTasks) {
  ProcessPool pool(testing_plugin(), small(1));
  EXPECT_EQ(pool.call("testing.double", 1).get(), 2);  // a worker is ready: the pool has its task table
  auto refused = pool.call("testing.doubel");
  EXPECT_EQ(refused.state(), FutureState::failed);  // failed in the caller, nothing sent
  const auto error = expect_throws<UnknownTaskError>([&] { refused.get(); });
  EXPECT_THAT(error.what(), HasSubstr("testing.doubel"));
  EXPECT_THAT(error.what(), HasSubstr("testing.double"));  // did you mean
  auto chunk = pool.submit_chunk("testing.nope", {Args{1}});
  EXPECT_EQ(chunk.state(), FutureState::failed);
  EXPECT_THROW(chunk.get(), UnknownTaskError);
  EXPECT_EQ(pool.stats().submitted, 1u);
}

TEST(ProcessPool, SignaturesListTasksAndHooksButOnlyTasksAreCallable) {
  ProcessPool pool(testing_plugin(), small(1));
  EXPECT_TRUE(pool.signatures().empty());  // no worker ready yet
  EXPECT_EQ(pool.call("testing.double", 1).get(), 2);
  std::map<std::string, Signature> by_kind_and_name;
  for (const auto& signature : pool.signatures()) {
    by_kind_and_name[signature.kind + " " + signature.qualified_name] = signature;
  }
  ASSERT_TRUE(by_kind_and_name.contains("initializer testing.slow_init"));
  EXPECT_EQ(by_kind_and_name["initializer testing.slow_init"].to_string(), "testing.slow_init(ms: int)");
  EXPECT_TRUE(by_kind_and_name.contains("finalizer testing.write_file"));
  EXPECT_TRUE(by_kind_and_name.contains("task testing.double"));
  const auto names = pool.task_names();
  EXPECT_EQ(std::count(names.begin(), names.end(), "testing.slow_init"), 0);
  // A hook's name is not a task: refused before sending, as any unknown name.
  auto refused = pool.call("testing.slow_init", 1);
  EXPECT_EQ(refused.state(), FutureState::failed);
  EXPECT_THROW(refused.get(), UnknownTaskError);
}

TEST(ProcessPool, KnownTaskNamesDoNotCarryOverToAnotherPool) {
  {
    ProcessPool first(testing_plugin(), small(1));
    EXPECT_EQ(first.call("testing.double", 1).get(), 2);
    EXPECT_EQ(first.call("testing.double", 2).get(), 4);  // known to this thread now
  }
  ProcessPool second({test::plugin_path("text")}, small(1));
  second.spawn_workers(1);
  ASSERT_TRUE(eventually([&] { return second.free_workers() == 1; }));  // its table has arrived
  auto refused = second.call("testing.double", 3);
  EXPECT_EQ(refused.state(), FutureState::failed);
  EXPECT_THROW(refused.get(), UnknownTaskError);
}

TEST(ProcessPool, PerCallTimeoutOverridesTaskTimeout) {
  auto options = small(1);
  options.task_timeout = 100ms;
  ProcessPool pool(testing_plugin(), options);
  EXPECT_EQ(pool.submit_call(Call{"testing.sleep", {300}, {}}, 30s).get(), 300);  // longer than task_timeout
  const auto error = expect_throws<TaskTimeoutError>([&] {
    pool.submit_call(Call{"testing.sleep", {60'000}, {}}, 200ms).get();
  });
  EXPECT_EQ(error.timeout(), 200ms);
  const auto outcomes = pool.submit_chunk("testing.sleep", {Args{1}, Args{300}, Args{1}}, 30s).get();
  EXPECT_EQ(outcomes[1].value(), 300);
}

TEST(ProcessPool, PerCallTimeoutWithoutATaskTimeout) {
  ProcessPool pool(testing_plugin(), small(1));
  EXPECT_THROW(pool.submit_call(Call{"testing.sleep", {60'000}, {}}, 200ms).get(), TaskTimeoutError);
  // Items before the one that timed out may die unreported with the worker (WorkerCrashedError).
  const auto outcomes = pool.submit_chunk("testing.sleep", {Args{1}, Args{60'000}}, 200ms).get();
  EXPECT_THROW(outcomes[1].value(), TaskTimeoutError);
  EXPECT_EQ(pool.call("testing.double", 3).get(), 6);
}

TEST(ProcessPool, CancellingASentButUnstartedFutureRevokesIt) {
  const auto started = std::filesystem::temp_directory_path() / ("troupe-revoke1-" + std::to_string(::getpid()));
  std::filesystem::remove(started);
  ProcessPool pool(testing_plugin(), small(1));
  auto running = pool.call("testing.announce_then_sleep", started.string(), 500);
  auto sent = pool.call("testing.double", 5);  // pipelined behind the sleep on the one worker
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(started); }));
  ASSERT_TRUE(eventually([&] { return sent.state() == FutureState::running; }));  // sent, not started
  EXPECT_FALSE(sent.cancel());  // sent: cancel() cannot take it back itself
  EXPECT_THROW(sent.get(10s), CancelledError);
  EXPECT_EQ(running.get(), 500);  // the running task was not touched
  const auto listed = pool.cancelled_tasks();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, sent.id());
  EXPECT_EQ(pool.stats().cancelled, 1u);
  EXPECT_EQ(pool.call("testing.double", 6).get(), 12);
  std::filesystem::remove(started);
}

TEST(ProcessPool, DoneCallbackOfACancelledPendingTaskMayJoinThePool) {
  const auto started = std::filesystem::temp_directory_path() / ("troupe-joincb-" + std::to_string(::getpid()));
  std::filesystem::remove(started);
  ProcessPool pool(testing_plugin(), small(1));
  auto running = pool.call("testing.announce_then_sleep", started.string(), 200);
  std::vector<Future<Value>> behind;  // more than the worker's pipeline takes, so the last stays queued
  for (int i = 0; i < 32; ++i) {
    behind.push_back(pool.call("testing.double", i));
  }
  auto pending = pool.call("testing.double", 100);
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(started); }));
  ASSERT_EQ(pending.state(), FutureState::pending);
  // The cancel hook (which takes the task off the pool's books) runs before
  // the callbacks, so a callback may wait for the pool without waiting for itself.
  std::atomic<int> joined{-1};
  pending.add_done_callback([&](const Future<Value>&) { joined = pool.join(10s) ? 1 : 0; });
  const auto before = std::chrono::steady_clock::now();
  EXPECT_TRUE(pending.cancel());
  EXPECT_EQ(joined.load(), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
  EXPECT_EQ(running.get(), 200);
  std::filesystem::remove(started);
}

TEST(ProcessPool, ShutdownWithCancelPendingRevokesSentFrames) {
  const auto started = std::filesystem::temp_directory_path() / ("troupe-revoke-" + std::to_string(::getpid()));
  std::filesystem::remove(started);
  ProcessPool pool(testing_plugin(), small(1));
  auto running = pool.call("testing.announce_then_sleep", started.string(), 300);
  auto sent = pool.call("testing.sleep", 1);                                  // pipelined behind it on the one worker
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(started); }));  // the first one runs
  ASSERT_TRUE(eventually([&] { return sent.state() == FutureState::running; }));
  pool.shutdown({.wait = true, .cancel_pending = true});
  EXPECT_EQ(running.get(), 300);
  EXPECT_EQ(sent.state(), FutureState::cancelled);
  std::filesystem::remove(started);
}

TEST(ProcessPool, StatsCountChunkItems) {
  ProcessPool pool(testing_plugin(), small(1));
  std::vector<Args> items;
  for (int i = 0; i < 10; ++i) {
    items.push_back(i % 3 == 0 ? Args{"x"} : Args{i});  // items 0, 3, 6, 9 fail
  }
  auto chunk = pool.submit_chunk("testing.double", items);
  auto call = pool.call("testing.double", 1);
  // The counters are updated before the futures complete: no wait needed after get().
  chunk.get();
  call.get();
  const auto stats = pool.stats();
  EXPECT_EQ(stats.submitted, 11u);
  EXPECT_EQ(stats.completed, 7u);
  EXPECT_EQ(stats.failed, 4u);
  EXPECT_EQ(stats.cancelled, 0u);
}

TEST(ProcessPool, StatsCountCancelledChunkItems) {
  ProcessPool pool(testing_plugin(), small(1));
  auto running = pool.call("testing.sleep", 200);
  ASSERT_TRUE(eventually([&] { return running.state() == FutureState::running; }));
  std::vector<Future<Value>> fill;
  for (int i = 0; i < 64; ++i) {
    fill.push_back(pool.call("testing.sleep", 1));  // fills the worker's pipeline
  }
  auto queued = pool.submit_chunk("testing.double", std::vector<Args>(25, Args{1}));
  if (queued.cancel()) {
    EXPECT_EQ(pool.stats().cancelled, 25u);
  }
  EXPECT_TRUE(pool.join(30s));
  EXPECT_EQ(pool.stats().submitted, 1u + 64u + 25u);
}

// Tasks the crashed worker had run but whose results were still in its send
// batch fail as lost (never run twice); every other task runs.
TEST(ProcessPool, AbortedWorkerFailsOnlyItsTaskAndLostResults) {
  ProcessPool pool(testing_plugin(), small(2));
  std::vector<Future<Value>> before;
  for (int i = 0; i < 50; ++i) {
    before.push_back(pool.call("testing.double", i));
  }
  auto crashing = pool.call("testing.abort");
  std::vector<Future<Value>> after;
  for (int i = 0; i < 50; ++i) {
    after.push_back(pool.call("testing.double", i));
  }
  const auto error = expect_throws<WorkerCrashedError>([&] { crashing.get(); });
  EXPECT_EQ(error.signal(), SIGABRT);
  EXPECT_EQ(error.task(), "testing.abort");
  EXPECT_EQ(error.key(), crashing.id());
  EXPECT_GT(error.pid(), 0);
  EXPECT_LT(error.worker_id(), 2u);
  EXPECT_THAT(error.what(), HasSubstr("SIGABRT"));
  EXPECT_THAT(error.what(), HasSubstr("testing.abort"));
  EXPECT_FALSE(error.result_lost());
  for (auto* futures : {&before, &after}) {
    for (int i = 0; i < 50; ++i) {
      auto& future = (*futures)[static_cast<std::size_t>(i)];
      try {
        EXPECT_EQ(future.get(), 2 * i);
      } catch (const WorkerCrashedError& lost) {
        EXPECT_TRUE(lost.result_lost()) << lost.what();
        EXPECT_EQ(lost.pid(), error.pid());
        EXPECT_THAT(lost.what(), HasSubstr("the result was lost in the crash"));
      }
    }
  }
  EXPECT_EQ(pool.stats().crashes_by_cause.at("SIGABRT"), 1u);
}

TEST(ProcessPool, SegfaultingWorkerReportsSigsegv) {
  ProcessPool pool(testing_plugin(), small(1));
  const auto error = expect_throws<WorkerCrashedError>([&] { pool.call("testing.segfault").get(); });
  EXPECT_EQ(error.signal(), SIGSEGV);
  EXPECT_THAT(error.what(), HasSubstr("SIGSEGV"));
  EXPECT_EQ(pool.call("testing.double", 4).get(), 8);
}

// A plugin that scribbles on its worker's channel: here an init_failed frame
// whose error record announces an array of 2^32 - 1 items in 4 bytes. The
// host must refuse it without trying to allocate it, kill that worker as a
// protocol breaker, fail only the task it ran, and go on.
TEST(ProcessPool, CorruptFrameFromAPluginKillsOnlyThatWorker) {
  ProcessPool pool(testing_plugin(), small(1));
  EXPECT_EQ(pool.call("testing.double", 1).get(), 2);
  const std::string frame =
      "06000000"     // length: type byte + 5-byte body
      "0b"           // Message::init_failed
      "ddffffffff";  // array32 of 4294967295 items, and nothing after
  auto scribbler = pool.call("testing.write_to_channel", frame, 0, 60'000);
  const auto error = expect_throws<WorkerCrashedError>([&] { scribbler.get(20s); });
  EXPECT_EQ(error.task(), "testing.write_to_channel");
  EXPECT_THAT(error.what(), HasSubstr("broke the frame protocol"));
  EXPECT_THAT(error.what(), HasSubstr("announces an array of 4294967295 items"));
  EXPECT_EQ(pool.call("testing.double", 4).get(), 8);
  EXPECT_EQ(pool.stats().crashes_by_cause.at("protocol error"), 1u);
}

// A chunk part that claims more items than the chunk has left: the host
// must refuse it rather than write past the chunk's outcomes (a count can
// no longer wrap `first + count`: the protocol caps it at 2^32 - 1). Item 0 takes 150 ms, so the worker closes its part
// after it (parts close once 100 ms old) and sends it; item 1 waits 500 ms more, then forges the next part.
TEST(ProcessPool, ChunkPartPastTheChunksItemsIsAProtocolError) {
  ProcessPool pool(testing_plugin(), small(1));
  auto probe = pool.call("testing.double", 1);
  EXPECT_EQ(probe.get(), 2);
  const std::uint64_t chunk_id = probe.id() + 1;  // ids are handed out in submission order
  std::vector<std::uint8_t> forged;
  const auto at = detail::process::begin_frame(forged, detail::process::Message::chunk_part);
  detail::process::MsgpackWriter writer(forged);
  writer.uinteger(chunk_id);
  writer.uinteger(1);                                          // first: item 0 is reported
  writer.uinteger(std::numeric_limits<std::uint32_t>::max());  // count: far more than the one item left
  for (int item = 0; item < 3; ++item) {                       // more outcomes than the chunk has
    writer.uinteger(static_cast<std::uint64_t>(detail::process::ItemStatus::ok));
    writer.value(Value(item));
  }
  writer.boolean(true);  // last
  writer.uinteger(0);    // rss
  detail::process::end_frame(forged, at);
  std::string hex;
  for (std::uint8_t byte : forged) {
    constexpr const char* kDigits = "0123456789abcdef";
    hex += kDigits[byte >> 4];
    hex += kDigits[byte & 15];
  }
  auto chunk = pool.submit_chunk("testing.write_to_channel", {Args{"", 150, 0}, Args{hex, 500, 60'000}});
  ASSERT_EQ(chunk.id(), chunk_id);
  const auto outcomes = chunk.get(20s);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].value(), 0);
  ASSERT_FALSE(outcomes[1].ok());
  EXPECT_THAT(report_of(outcomes[1].error()), HasSubstr("broke the frame protocol (a chunk part out of order)"));
  EXPECT_EQ(pool.call("testing.double", 4).get(), 8);
}

TEST(ProcessPool, ExitingWorkerReportsItsStatus) {
  ProcessPool pool(testing_plugin(), small(1));
  const auto error = expect_throws<WorkerCrashedError>([&] { pool.call("testing.exit", 7).get(); });
  EXPECT_EQ(error.signal(), 0);
  ASSERT_TRUE(error.exit_status());
  EXPECT_EQ(*error.exit_status(), 7);
  EXPECT_THAT(error.what(), HasSubstr("exited with status 7"));
  EXPECT_EQ(pool.call("testing.double", 4).get(), 8);
}

TEST(ProcessPool, StdExitInATaskReportsItsExitStatus) {
  ProcessPool pool(testing_plugin(), small(1));
  const auto error = expect_throws<WorkerCrashedError>([&] { pool.call("testing.std_exit", 7).get(); });
  EXPECT_EQ(error.signal(), 0);
  ASSERT_TRUE(error.exit_status());
  EXPECT_EQ(*error.exit_status(), 7);
  EXPECT_THAT(error.what(), HasSubstr("exited with status 7 while running testing.std_exit"));
  EXPECT_EQ(pool.call("testing.double", 4).get(), 8);
}

// A file the task writes when it has started, removed at the end of the test.
struct StartSignal {
  std::filesystem::path path = std::filesystem::temp_directory_path() /
                               ("troupe-started-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  StartSignal() { std::filesystem::remove(path); }
  ~StartSignal() { std::filesystem::remove(path); }
  bool seen() const { return std::filesystem::exists(path); }
  std::int64_t pid() const {
    std::ifstream in(path);
    std::int64_t value = 0;
    in >> value;
    return value;
  }
  static inline int counter = 0;
};

std::size_t lines_in(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::size_t lines = 0;
  for (std::string line; std::getline(in, line);) {
    ++lines;
  }
  return lines;
}

TEST(ProcessPool, TaskWhoseResultNeverArrivesRunsOnceAndFails) {
  StartSignal runs;  // a line per run
  ProcessPool pool(testing_plugin(), small(1));
  auto future = pool.call("testing.append_line_then_close_channel", runs.path.string());
  ASSERT_TRUE(future.wait(20s));
  const auto error = expect_throws<WorkerCrashedError>([&] { future.get(); });
  EXPECT_EQ(error.task(), "testing.append_line_then_close_channel");
  ASSERT_TRUE(error.exit_status());
  EXPECT_TRUE(error.result_lost());
  EXPECT_THAT(error.what(), HasSubstr("after it ran testing.append_line_then_close_channel"));
  EXPECT_THAT(error.what(), HasSubstr("the result was lost in the crash"));
  EXPECT_EQ(pool.call("testing.double", 4).get(), 8);
  EXPECT_EQ(lines_in(runs.path), 1u);
  EXPECT_EQ(pool.stats().retired.crash, 1u);
}

TEST(ProcessPool, ResultsLostInACrashAreNeverRunAgain) {
  StartSignal runs;  // a line per run
  ProcessPool pool(testing_plugin(), small(1));
  EXPECT_EQ(pool.call("testing.double", 1).get(), 2);  // started: the tasks below pipeline behind each other
  std::vector<Future<Value>> appends;
  for (int i = 0; i < 200; ++i) {
    appends.push_back(pool.call("testing.append_line", runs.path.string()));
  }
  auto crashing = pool.call("testing.abort");
  EXPECT_THROW(crashing.get(), WorkerCrashedError);
  for (auto& future : appends) {
    try {
      future.get();
    } catch (const WorkerCrashedError& lost) {
      EXPECT_TRUE(lost.result_lost()) << lost.what();
    }
  }
  EXPECT_EQ(lines_in(runs.path), appends.size());  // each ran exactly once, lost or not
  EXPECT_EQ(pool.call("testing.double", 4).get(), 8);
}

TEST(ProcessPool, SigkilledWorkerFailsOnlyItsTaskAndReportsLastRss) {
  ProcessPool pool(testing_plugin(), small(1));
  StartSignal started;
  auto hanging = pool.call("testing.announce_then_hang", started.path.string());
  auto queued = pool.call("testing.double", 3);
  ASSERT_TRUE(eventually([&] { return started.seen(); }));
  const auto pid = started.pid();
  ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGKILL), 0);
  const auto error = expect_throws<WorkerCrashedError>([&] { hanging.get(); });
  EXPECT_EQ(error.signal(), SIGKILL);
  EXPECT_EQ(error.pid(), pid);
  ASSERT_TRUE(error.last_rss());
  EXPECT_GT(*error.last_rss(), 0u);
  EXPECT_THAT(error.what(), HasSubstr("last reported RSS"));
  EXPECT_THAT(error.what(), HasSubstr("OOM"));
  // Sent behind the hung task but never started: it ran on the replacement.
  EXPECT_EQ(queued.get(), 6);
  EXPECT_NE(pool.call("testing.pid").get().get<std::int64_t>(), pid);
}

TEST(ProcessPool, HungTaskTimesOutAndItsWorkerIsReplaced) {
  auto options = small(1);
  options.task_timeout = 300ms;
  ProcessPool pool(testing_plugin(), options);
  const auto pid = pool.call("testing.pid").get().get<std::int64_t>();
  const auto error = expect_throws<TaskTimeoutError>([&] { pool.call("testing.hang").get(); });
  EXPECT_EQ(error.task(), "testing.hang");
  EXPECT_EQ(error.pid(), pid);
  EXPECT_THAT(error.what(), HasSubstr("ran past its time limit of 300 ms; worker 0"));
  EXPECT_NE(pool.call("testing.pid").get().get<std::int64_t>(), pid);
  EXPECT_EQ(pool.stats().crashes_by_cause.at("task_timeout"), 1u);
}

TEST(ProcessPool, LeakingWorkerRetiresAfterTheTaskThatCrossedTheLimit) {
  auto options = small(1);
  options.max_memory_per_worker = std::uint64_t{64} << 20;
  ProcessPool pool(testing_plugin(), options);
  const auto pid = pool.call("testing.pid").get().get<std::int64_t>();
  const auto rss = pool.call("testing.retain", 96).get().get<std::int64_t>();
  EXPECT_GT(rss, std::int64_t{64} << 20);  // the task itself still returns
  EXPECT_NE(pool.call("testing.pid").get().get<std::int64_t>(), pid);
  EXPECT_TRUE(eventually([&] { return pool.stats().retired.memory == 1; }));
}

TEST(ProcessPool, MaxTasksPerWorkerRecyclesWorkers) {
  auto options = small(1);
  options.max_tasks_per_worker = 3;
  options.initializer = Call{"testing.start_counter", {}, {}};
  ProcessPool pool(testing_plugin(), options);
  std::vector<Future<Value>> counters;
  std::vector<Future<Value>> pids;
  for (int i = 0; i < 9; ++i) {
    counters.push_back(pool.call("testing.counter"));
    pids.push_back(pool.call("testing.pid"));
  }
  std::set<std::int64_t> distinct;
  for (std::size_t i = 0; i < counters.size(); ++i) {
    EXPECT_GE(counters[i].get().get<std::int64_t>(), 1);
    EXPECT_LE(counters[i].get().get<std::int64_t>(), 2);  // counter + pid: two tasks of three per worker
    distinct.insert(pids[i].get().get<std::int64_t>());
  }
  EXPECT_GE(distinct.size(), 6u);
  EXPECT_TRUE(eventually([&] { return pool.stats().retired.max_tasks >= 5; }));
}

TEST(ProcessPool, RecycleJitterKeepsLimitsWithinRange) {
  auto options = small(1);
  options.max_tasks_per_worker = 2;
  options.recycle_jitter = 2;
  ProcessPool pool(testing_plugin(), options);
  std::vector<std::int64_t> pids;
  for (int i = 0; i < 40; ++i) {
    pids.push_back(pool.call("testing.pid").get().get<std::int64_t>());
  }
  // Runs of one pid are 2..4 long (the last may be cut short).
  std::size_t run = 1;
  for (std::size_t i = 1; i < pids.size(); ++i) {
    if (pids[i] == pids[i - 1]) {
      ++run;
    } else {
      EXPECT_GE(run, 2u);
      EXPECT_LE(run, 4u);
      run = 1;
    }
  }
  EXPECT_LE(run, 4u);
}

TEST(ProcessPool, InitializerFailureBreaksThePoolWithTheRemoteCause) {
  auto options = small(2);
  options.initializer = Call{"testing.fail_init", {"no database"}, {}};
  ProcessPool pool(testing_plugin(), options);
  auto future = pool.call("testing.double", 1);
  const auto error = expect_throws<InitializerError>([&] { future.get(); });
  EXPECT_THAT(error.what(), HasSubstr("testing.fail_init"));
  EXPECT_THAT(error.what(), HasSubstr("no database"));
  EXPECT_EQ(future.state(), FutureState::cancelled);
  const auto cause = error.cause;
  ASSERT_TRUE(cause);
  EXPECT_THROW(std::rethrow_exception(cause), RemoteError);
  EXPECT_THROW(pool.call("testing.double", 1), BrokenPoolError);
  EXPECT_THROW(pool.check(), InitializerError);
  // A fresh pool replaces a broken one.
  ProcessPool fresh(testing_plugin(), small(1));
  EXPECT_EQ(fresh.call("testing.double", 2).get(), 4);
}

TEST(ProcessPool, UnloadablePluginBreaksThePool) {
  ProcessPool pool({"/nonexistent/libnothing.so"}, small(1));
  const auto error = expect_throws<InitializerError>([&] { pool.call("nothing.task").get(); });
  EXPECT_THAT(error.what(), HasSubstr("libnothing.so"));
}

TEST(ProcessPool, TestPropagatesInitializerErrors) {
  auto options = small(1);
  options.initializer = Call{"testing.fail_init", {"bad config"}, {}};
  ProcessPool pool(testing_plugin(), options);
  EXPECT_THROW(pool.test(), InitializerError);
  ProcessPool good(testing_plugin(), small(1));
  EXPECT_NO_THROW(good.test());
}

TEST(ProcessPool, CrashingInitializerBreaksThePoolAfterMaxStartupFailures) {
  auto options = small(1);
  options.initializer = Call{"testing.crash_init", {}, {}};
  ProcessPool pool(testing_plugin(), options);
  auto future = pool.call("testing.double", 1);
  const auto error = expect_throws<BrokenPoolError>([&] { future.get(); });
  EXPECT_THAT(error.what(), HasSubstr("its workers fail to start (5 start-up failures in a row"));
  EXPECT_THAT(error.what(), HasSubstr("while starting"));
  const auto cause = error.cause;
  ASSERT_TRUE(cause);
  EXPECT_THROW(std::rethrow_exception(cause), WorkerCrashedError);
  EXPECT_EQ(pool.stats().crashes_by_cause.at("SIGABRT"), 5u);
  EXPECT_EQ(pool.cancelled_tasks().size(), 1u);
}

TEST(ProcessPool, WorkerThatNeverReportsReadyIsKilledAfterStartupTimeout) {
  auto options = small(1);
  options.initializer = Call{"testing.slow_init", {60'000}, {}};
  options.startup_timeout = 200ms;
  options.crash_storm = {.max = 2, .within = std::chrono::seconds(60)};
  ProcessPool pool(testing_plugin(), options);
  auto future = pool.call("testing.double", 1);
  const auto error = expect_throws<BrokenPoolError>([&] { future.get(); });
  EXPECT_THAT(error.what(), HasSubstr("did not report ready within the startup_timeout"));
  EXPECT_EQ(pool.stats().crashes_by_cause.at("startup_timeout"), 2u);
}

// Ends a pool whose workers may never become ready, so that a regression
// (respawning for ever) fails the test instead of hanging it.
void stop_now(ProcessPool& pool) {
  pool.shutdown({.wait = true, .cancel_pending = true, .kill_workers = true, .grace = 0ns});
}

TEST(ProcessPool, StartupTimeoutsInARowBreakThePoolWhateverWithinSays) {
  auto options = small(1);
  options.initializer = Call{"testing.slow_init", {60'000}, {}};
  options.startup_timeout = 150ms;
  options.crash_storm = {.max = 3, .within = 100ms};  // never two timeouts inside one window
  ProcessPool pool(testing_plugin(), options);
  auto future = pool.call("testing.double", 1);
  const bool ended = future.wait(20s);
  stop_now(pool);
  ASSERT_TRUE(ended) << "the pool kept respawning workers that never became ready";
  const auto error = expect_throws<BrokenPoolError>([&] { future.get(); });
  EXPECT_THAT(error.what(), HasSubstr("its workers fail to start (3 start-up failures in a row"));
  EXPECT_THAT(error.what(), HasSubstr("did not report ready within the startup_timeout"));
  EXPECT_EQ(pool.stats().crashes_by_cause.at("startup_timeout"), 3u);
}

TEST(ProcessPool, WorkersDyingBeforeReadyBreakThePoolWhateverWithinSays) {
  auto options = small(1);
  options.initializer = Call{"testing.crash_init", {}, {}};
  options.crash_storm = {.max = 3, .within = 1us};  // no two deaths inside one window
  ProcessPool pool(testing_plugin(), options);
  auto future = pool.call("testing.double", 1);
  const bool ended = future.wait(20s);
  stop_now(pool);
  ASSERT_TRUE(ended) << "the pool kept respawning workers that died before ready";
  const auto error = expect_throws<BrokenPoolError>([&] { future.get(); });
  EXPECT_THAT(error.what(), HasSubstr("its workers fail to start (3 start-up failures in a row"));
  EXPECT_THAT(error.what(), HasSubstr("SIGABRT"));
  ASSERT_TRUE(error.cause);
  EXPECT_THROW(std::rethrow_exception(error.cause), WorkerCrashedError);
  EXPECT_EQ(pool.stats().crashes_by_cause.at("SIGABRT"), 3u);
}

TEST(ProcessPool, WorkerBecomingReadyResetsTheStartupFailureCount) {
  StartSignal starts;  // the initializer counts the pool's worker starts there
  auto options = small(1);
  options.initializer = Call{"testing.abort_every_other_start", {starts.path.string()}, {}};
  options.max_tasks_per_worker = 1;                 // a new worker (and start) for every task
  options.crash_storm = {.max = 2, .within = 1us};  // only start-up failures in a row can break it
  ProcessPool pool(testing_plugin(), options);
  for (int i = 0; i < 3; ++i) {
    auto future = pool.call("testing.double", i);
    const bool ended = future.wait(20s);
    if (!ended) {
      stop_now(pool);
    }
    ASSERT_TRUE(ended);
    EXPECT_EQ(future.get(), 2 * i);
  }
  EXPECT_EQ(pool.stats().crashes_by_cause.at("SIGABRT"), 3u);
}

TEST(ProcessPool, CrashOnEveryTaskEndsInACrashStorm) {
  ProcessPool pool(testing_plugin(), small(2));
  std::vector<Future<Value>> futures;
  for (int i = 0; i < 20; ++i) {
    futures.push_back(pool.call("testing.abort"));
  }
  std::size_t crashed = 0;
  std::size_t cancelled = 0;
  for (auto& f : futures) {
    try {
      f.get();
    } catch (const BrokenPoolError&) {
      ++cancelled;
    } catch (const WorkerCrashedError&) {
      ++crashed;
    }
  }
  EXPECT_EQ(crashed, 5u);
  EXPECT_EQ(cancelled, 15u);
  EXPECT_THROW(pool.check(), BrokenPoolError);
}

TEST(ProcessPool, OnWorkerCrashBreakBreaksThePool) {
  auto options = small(1);
  options.on_worker_crash = OnWorkerCrash::break_pool;
  ProcessPool pool(testing_plugin(), options);
  auto crashing = pool.call("testing.abort");
  auto pending = pool.call("testing.double", 1);
  EXPECT_THROW(crashing.get(), WorkerCrashedError);
  const auto error = expect_throws<BrokenPoolError>([&] { pending.get(); });
  EXPECT_THAT(error.what(), HasSubstr("on_worker_crash"));
  EXPECT_THROW(pool.call("testing.double", 1), BrokenPoolError);
}

TEST(ProcessPool, OversizedArgumentFailsOnlyItsFutureBeforeSending) {
  auto options = small(1);
  options.max_frame = 4096;
  ProcessPool pool(testing_plugin(), options);
  auto future = pool.call("testing.echo", std::string(10000, 'a'));
  EXPECT_TRUE(future.done());
  const auto error = expect_throws<ArgumentError>([&] { future.get(); });
  EXPECT_THAT(error.what(), HasSubstr("max_frame"));
  EXPECT_EQ(pool.workers(), 0u);  // nothing was sent, so nothing started
  EXPECT_EQ(pool.call("testing.double", 2).get(), 4);
}

// A null inside `levels` nested one-element arrays.
Value nested(int levels) {
  Value value;
  for (int i = 0; i < levels; ++i) {
    value = Value::array({std::move(value)});
  }
  return value;
}

// An argument is level 1: 511 arrays put its innermost value at level 512,
// the deepest the codec carries either way.
TEST(ProcessPool, ArgumentNestedDeeperThanTheCodecCarriesFailsOnlyItsFutureBeforeSending) {
  ProcessPool pool(testing_plugin(), small(1));
  auto too_deep = pool.call("testing.echo", nested(512));
  EXPECT_TRUE(too_deep.done());
  const auto error = expect_throws<ArgumentError>([&] { too_deep.get(); });
  EXPECT_THAT(error.what(), HasSubstr("the arguments of testing.echo cannot be encoded"));
  EXPECT_THAT(error.what(), HasSubstr("deeper than the 512 levels"));
  auto much_too_deep = pool.submit_chunk("testing.echo", {Args{1}, Args{nested(600)}});
  EXPECT_THROW(much_too_deep.get(), ArgumentError);
  EXPECT_EQ(pool.workers(), 0u);  // nothing was sent, so nothing started
  EXPECT_EQ(pool.call("testing.echo", nested(511)).get(), nested(511));
}

TEST(ProcessPool, ResultNestedDeeperThanTheCodecCarriesFailsItsFutureAndTheWorkerGoesOn) {
  ProcessPool pool(testing_plugin(), small(1));
  const auto pid = pool.call("testing.pid").get();
  const auto error = expect_throws<RemoteError>([&] { pool.call("testing.nest", 600).get(20s); });
  EXPECT_THAT(error.what(), HasSubstr("the result of testing.nest cannot be sent to the host"));
  EXPECT_THAT(error.what(), HasSubstr("deeper than the 512 levels"));
  const auto outcomes = pool.submit_chunk("testing.nest", {Args{2}, Args{600}, Args{512}}).get(20s);
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_EQ(outcomes[0].value(), nested(2));
  ASSERT_FALSE(outcomes[1].ok());
  EXPECT_THAT(report_of(outcomes[1].error()), HasSubstr("the result of testing.nest cannot be sent to the host"));
  EXPECT_EQ(outcomes[2].value(), nested(512));  // a result is level 0
  EXPECT_EQ(pool.call("testing.pid").get(), pid);
}

TEST(ProcessPool, OversizedResultFailsItsFutureAndTheWorkerGoesOn) {
  auto options = small(1);
  options.max_frame = 4096;
  ProcessPool pool(testing_plugin(), options);
  const auto pid = pool.call("testing.pid").get();
  const auto error = expect_throws<ResultTooLargeError>([&] { pool.call("testing.big_result", 10000).get(); });
  EXPECT_THAT(error.what(), HasSubstr("testing.big_result"));
  EXPECT_EQ(pool.call("testing.pid").get(), pid);
  EXPECT_EQ(pool.call("testing.big_result", 100).get(), std::string(100, 'x'));
}

TEST(ProcessPool, ErrorLargerThanMaxFrameArrivesCutInsteadOfKillingTheWorker) {
  auto options = small(1);
  options.max_frame = 4096;
  ProcessPool pool(testing_plugin(), options);
  const auto pid = pool.call("testing.pid").get();
  auto failing = pool.call("testing.fail_chain", 2, 10000);
  const auto error = expect_throws<RemoteError>([&] { failing.get(20s); });
  EXPECT_THAT(error.remote_message(), StartsWith("level 0 xxx"));
  EXPECT_THAT(error.remote_message(), HasSubstr("xxx [... cut: "));
  EXPECT_THAT(error.remote_message(), HasSubstr(" of 10000 bytes]"));
  ASSERT_TRUE(error.cause);
  EXPECT_THAT(remote_cause(error.cause).remote_message(), StartsWith("level 1 xxx"));
  EXPECT_THAT(report_of(failing.exception()), HasSubstr("caused by: TestingError: level 1 xxx"));
  const auto chain = expect_throws<RemoteError>([&] { pool.call("testing.fail_chain", 32, 2000).get(20s); });
  EXPECT_THAT(chain.what(), HasSubstr("more causes cut)"));
  EXPECT_EQ(pool.call("testing.pid").get(), pid);
  EXPECT_EQ(pool.stats().retired.crash, 0u);
}

TEST(ProcessPool, EnvReachesWorkers) {
  auto options = small(1);
  options.env = {{"TROUPE_PROCESS_TEST_VALUE", "forty-two"}};
  ProcessPool pool(testing_plugin(), options);
  EXPECT_EQ(pool.call("testing.env", "TROUPE_PROCESS_TEST_VALUE").get(), "forty-two");
}

TEST(ProcessPool, FinalizersRunOnGracefulShutdown) {
  const auto path = std::filesystem::temp_directory_path() / ("troupe-fini-" + std::to_string(::getpid()));
  std::filesystem::remove(path);
  {
    auto options = small(2);
    options.finalizer = Call{"testing.write_file", {path.string()}, {}};
    ProcessPool pool(testing_plugin(), options);
    pool.spawn_workers(2);
    std::vector<Future<Value>> futures;
    for (int i = 0; i < 100; ++i) {
      futures.push_back(pool.call("testing.double", i));
    }
    pool.shutdown();
    for (int i = 0; i < 100; ++i) {
      EXPECT_EQ(futures[static_cast<std::size_t>(i)].get(), 2 * i);  // queued work ran before the workers left
    }
    EXPECT_EQ(pool.workers(), 0u);
  }
  std::ifstream in(path);
  std::multiset<std::string> ids;
  for (std::string line; std::getline(in, line);) {
    ids.insert(line);
  }
  EXPECT_EQ(ids, (std::multiset<std::string>{"0", "1"}));
  std::filesystem::remove(path);
}

// Lines in the file a finalizer appends to (one per worker that ran it).
std::size_t finalizer_lines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::size_t lines = 0;
  for (std::string line; std::getline(in, line);) {
    ++lines;
  }
  return lines;
}

TEST(ProcessPool, IdleRetiredWorkerRunsItsFinalizerWithinGrace) {
  const auto path = std::filesystem::temp_directory_path() / ("troupe-idle-fini-" + std::to_string(::getpid()));
  std::filesystem::remove(path);
  auto options = small(1);
  options.idle_timeout = 50ms;
  options.finalizer = Call{"testing.slow_write_file", {path.string(), 300}, {}};
  ProcessPool pool(testing_plugin(), options);
  EXPECT_EQ(pool.call("testing.double", 1).get(), 2);
  ASSERT_TRUE(eventually([&] { return pool.workers() == 0; }));
  EXPECT_EQ(pool.stats().retired.idle_timeout, 1u);
  EXPECT_EQ(pool.stats().retired.crash, 0u);
  EXPECT_EQ(finalizer_lines(path), 1u);
  std::filesystem::remove(path);
}

TEST(ProcessPool, RecycledWorkerRunsItsFinalizerWithinGrace) {
  const auto path = std::filesystem::temp_directory_path() / ("troupe-recycle-fini-" + std::to_string(::getpid()));
  std::filesystem::remove(path);
  auto options = small(1);
  options.max_tasks_per_worker = 1;
  options.finalizer = Call{"testing.slow_write_file", {path.string(), 300}, {}};
  ProcessPool pool(testing_plugin(), options);
  EXPECT_EQ(pool.call("testing.double", 1).get(), 2);
  EXPECT_EQ(pool.call("testing.double", 2).get(), 4);
  ASSERT_TRUE(eventually([&] { return pool.stats().retired.max_tasks == 2; }));
  ASSERT_TRUE(eventually([&] { return pool.workers() == 0; }));
  EXPECT_EQ(finalizer_lines(path), 2u);
  std::filesystem::remove(path);
}

TEST(ProcessPool, SubmitAfterShutdownIsAUsageError) {
  ProcessPool pool(testing_plugin(), small(1));
  pool.shutdown();
  EXPECT_THROW(pool.call("testing.double", 1), UsageError);
  EXPECT_THROW(pool.check(), UsageError);
}

TEST(ProcessPool, FinalizerFailureBreaksThePool) {
  auto options = small(1);
  options.finalizer = Call{"testing.fail_fini", {"cannot flush"}, {}};
  ProcessPool pool(testing_plugin(), options);
  EXPECT_EQ(pool.call("testing.double", 1).get(), 2);
  pool.shutdown();
  const auto error = expect_throws<FinalizerError>([&] { pool.check(); });
  EXPECT_THAT(error.what(), HasSubstr("cannot flush"));
}

std::chrono::microseconds thread_cpu_time() {
  rusage usage{};
  ::getrusage(RUSAGE_THREAD, &usage);
  return std::chrono::seconds(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         std::chrono::microseconds(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

// The longest duration saturates to the longest deadline; waiting for it
// sleeps, never spins (a wait_for near that deadline returned at once).
TEST(ProcessPool, JoinWithTheLongestDurationSleepsUntilTheWorkEnds) {
  ProcessPool pool(testing_plugin(), small(1));
  auto slow = pool.call("testing.sleep", 500);
  ASSERT_EQ(slow.get(), 500);  // the worker is up: the join below waits for the task alone
  auto again = pool.call("testing.sleep", 500);
  const auto cpu_before = thread_cpu_time();
  EXPECT_TRUE(pool.join(std::chrono::hours::max()));
  EXPECT_TRUE(again.done());
  EXPECT_LT(thread_cpu_time() - cpu_before, std::chrono::milliseconds(150));
}

TEST(ProcessPool, ShutdownKillWorkersStopsAHungTask) {
  const auto started = std::filesystem::temp_directory_path() / ("troupe-killhung-" + std::to_string(::getpid()));
  std::filesystem::remove(started);
  ProcessPool pool(testing_plugin(), small(1));
  auto hanging = pool.call("testing.announce_then_sleep", started.string(), 600'000);
  auto queued = pool.call("testing.double", 1);
  // Started, not only sent: a sent frame not yet started would be revoked (cancelled).
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(started); }));
  std::filesystem::remove(started);
  pool.shutdown({.wait = true, .kill_workers = true, .grace = 50ms});
  const auto error = expect_throws<WorkerCrashedError>([&] { hanging.get(); });
  EXPECT_EQ(error.signal(), SIGTERM);
  EXPECT_TRUE(queued.done());
  EXPECT_EQ(pool.workers(), 0u);
}

TEST(ProcessPool, ShutdownWithCancelPendingCancelsQueuedWork) {
  const auto started = std::filesystem::temp_directory_path() / ("troupe-cancelpend-" + std::to_string(::getpid()));
  std::filesystem::remove(started);
  ProcessPool pool(testing_plugin(), small(1));
  auto running = pool.call("testing.announce_then_sleep", started.string(), 200);
  // Started, not only sent: a sent frame not yet started would be revoked.
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(started); }));
  std::filesystem::remove(started);
  std::vector<Future<Value>> queued;
  for (int i = 0; i < 2000; ++i) {
    queued.push_back(pool.call("testing.double", i));
  }
  pool.shutdown({.wait = true, .cancel_pending = true});
  EXPECT_EQ(running.get(), 200);
  std::size_t cancelled = 0;
  for (auto& f : queued) {
    cancelled += f.state() == FutureState::cancelled ? 1 : 0;
    EXPECT_TRUE(f.done());
  }
  EXPECT_GT(cancelled, 0u);
  EXPECT_EQ(pool.cancelled_tasks().size(), cancelled);
}

TEST(ProcessPool, IdleWorkersRetireAfterIdleTimeout) {
  auto options = small(2);
  options.idle_timeout = 100ms;
  ProcessPool pool(testing_plugin(), options);
  pool.spawn_workers(2);
  EXPECT_EQ(pool.call("testing.double", 1).get(), 2);
  EXPECT_TRUE(eventually([&] { return pool.workers() == 0; }));
  EXPECT_EQ(pool.stats().retired.idle_timeout, 2u);
  EXPECT_EQ(pool.call("testing.double", 2).get(), 4);
}

TEST(ProcessPool, MinWorkersStayThroughIdleTimeout) {
  auto options = small(2);
  options.idle_timeout = 50ms;
  options.min_workers = 1;
  ProcessPool pool(testing_plugin(), options);
  pool.spawn_workers(2);
  EXPECT_TRUE(eventually([&] { return pool.stats().retired.idle_timeout == 1; }));
  EXPECT_TRUE(eventually([&] { return pool.workers() == 1; }));
}

TEST(ProcessPool, CountersDescribeThePool) {
  ProcessPool pool(testing_plugin(), small(2));
  EXPECT_EQ(pool.max_workers(), 2u);
  pool.spawn_workers(2);
  ASSERT_TRUE(eventually([&] { return pool.free_workers() == 2; }));
  auto a = pool.call("testing.sleep", 100);
  auto b = pool.call("testing.sleep", 100);
  ASSERT_TRUE(eventually([&] { return pool.busy_workers() == 2; }));
  EXPECT_EQ(pool.workers(), 2u);
  a.get();
  b.get();
  ASSERT_TRUE(eventually([&] { return pool.free_workers() == 2; }));
  EXPECT_EQ(pool.pending_tasks(), 0u);
  EXPECT_EQ(pool.stats().spawned, 2u);
}

TEST(ProcessPool, FutureKnowsItsWorker) {
  ProcessPool pool(testing_plugin(), small(1));
  auto f = pool.call("testing.worker_id");
  EXPECT_EQ(f.get(), 0);
  ASSERT_TRUE(f.worker_id());
  EXPECT_EQ(*f.worker_id(), 0u);
}

TEST(ProcessPool, CancelledQueuedFutureNeverRuns) {
  ProcessPool pool(testing_plugin(), small(1));
  auto running = pool.call("testing.sleep", 100);
  ASSERT_TRUE(eventually([&] { return running.state() == FutureState::running; }));
  // Fill the worker's pipeline so the next one stays queued in the host.
  std::vector<Future<Value>> fill;
  for (int i = 0; i < 64; ++i) {
    fill.push_back(pool.call("testing.sleep", 1));
  }
  auto victim = pool.call("testing.double", 1);
  if (victim.cancel()) {
    EXPECT_EQ(victim.state(), FutureState::cancelled);
    EXPECT_THROW(victim.get(), CancelledError);
  }
  EXPECT_TRUE(pool.join(30s));
  EXPECT_EQ(pool.pending_tasks(), 0u);
}

TEST(ProcessPool, CancellingARunningTaskReachesItsContext) {
  ProcessPool pool(testing_plugin(), small(1));
  const auto started = std::filesystem::temp_directory_path() / ("troupe-cancelrun-" + std::to_string(::getpid()));
  std::filesystem::remove(started);
  auto running = pool.call("testing.announce_then_cancellable_sleep", started.string(), 60'000);
  // Started, not only sent: cancel() of a sent frame not yet started revokes it.
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(started); }));
  std::filesystem::remove(started);
  EXPECT_FALSE(running.cancel());                           // running: only the cooperative flag
  EXPECT_EQ(running.get(std::chrono::seconds(30)), false);  // it returned early
  EXPECT_EQ(pool.call("testing.double", 2).get(), 4);
}

TEST(ProcessPool, QueueLimitFailPolicyRefusesWhenFull) {
  auto options = small(1);
  options.queue_limit = 2;
  options.queue_full_policy = QueueFullPolicy::fail;
  ProcessPool pool(testing_plugin(), options);
  std::vector<Future<Value>> accepted;
  bool refused = false;
  for (int i = 0; i < 2000 && !refused; ++i) {
    try {
      accepted.push_back(pool.call("testing.sleep", 5));
    } catch (const QueueFullError&) {
      refused = true;
    }
  }
  EXPECT_TRUE(refused);
  EXPECT_TRUE(pool.join(60s));
}

TEST(ProcessPool, CallerRunsPolicyIsRefused) {
  auto options = small(1);
  options.queue_limit = 1;
  options.queue_full_policy = QueueFullPolicy::caller_runs;
  EXPECT_THROW(ProcessPool(testing_plugin(), options), UsageError);
}

TEST(ProcessPool, ChunkRunsEveryItemInOrder) {
  ProcessPool pool(testing_plugin(), small(2));
  std::vector<Args> items;
  for (int i = 0; i < 1000; ++i) {
    items.push_back(Args{i});
  }
  const auto outcomes = pool.submit_chunk("testing.double", items).get();
  ASSERT_EQ(outcomes.size(), 1000u);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(outcomes[static_cast<std::size_t>(i)].value(), 2 * i);
  }
}

TEST(ProcessPool, ChunkCapturesEachItemsError) {
  ProcessPool pool(testing_plugin(), small(1));
  const auto outcomes = pool.submit_chunk("testing.fail", {Args{"one", ""}, Args{"two", "why"}}).get();
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_THROW(outcomes[0].value(), RemoteError);
  EXPECT_THROW(outcomes[1].value(), RemoteError);
  const auto mixed = pool.submit_chunk("testing.double", {Args{1}, Args{"x"}, Args{3}}).get();
  EXPECT_EQ(mixed[0].value(), 2);
  EXPECT_THROW(mixed[1].value(), ArgumentError);
  EXPECT_EQ(mixed[2].value(), 6);
}

TEST(ProcessPool, ChunkOfAnUnknownTaskFailsAsAWhole) {
  ProcessPool pool(testing_plugin(), small(1));
  EXPECT_THROW(pool.submit_chunk("testing.nope", {Args{1}}).get(), UnknownTaskError);
}

TEST(ProcessPool, CrashMidChunkFailsItsUnreportedItems) {
  ProcessPool pool(testing_plugin(), small(1));
  std::vector<Args> items;
  for (int i = 0; i < 10; ++i) {
    items.push_back(Args{i, 5});
  }
  const auto outcomes = pool.submit_chunk("testing.abort_at", items).get();
  ASSERT_EQ(outcomes.size(), 10u);
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    ASSERT_FALSE(outcomes[i].ok());
    try {
      outcomes[i].rethrow();
    } catch (const WorkerCrashedError& e) {
      EXPECT_EQ(e.item(), i);
      EXPECT_EQ(e.signal(), SIGABRT);
    }
  }
  EXPECT_EQ(pool.call("testing.double", 1).get(), 2);
}

TEST(ProcessPool, HungChunkItemTimesOut) {
  auto options = small(1);
  options.task_timeout = 300ms;
  ProcessPool pool(testing_plugin(), options);
  const auto outcomes = pool.submit_chunk("testing.sleep", {Args{1}, Args{60'000}, Args{1}}).get();
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_THROW(outcomes[1].value(), TaskTimeoutError);
  EXPECT_FALSE(outcomes[2].ok());
}

TEST(ProcessPool, MissingWorkerExecutableIsAClearError) {
  auto options = small(1);
  options.worker_executable = "/nonexistent/troupe-worker";
  const auto error = expect_throws<Error>([&] { ProcessPool pool(testing_plugin(), options); });
  EXPECT_THAT(error.what(), HasSubstr("/nonexistent/troupe-worker"));
}

TEST(ProcessPool, WorkerIsFoundNextToTheLibrary) {
  ProcessPoolOptions options;
  options.max_workers = 1;
  ProcessPool pool(testing_plugin(), options);
  EXPECT_EQ(pool.call("testing.double", 5).get(), 10);
}

TEST(ProcessPool, WorksThroughTheExecutorInterface) {
  ProcessPool pool(testing_plugin(), small(1));
  Executor& executor = pool;
  EXPECT_EQ(executor.call("testing.double", 8).get(), 16);
  executor.shutdown({.wait = true});
  EXPECT_THROW(executor.call("testing.double", 1), UsageError);
}

}  // namespace
}  // namespace troupe
