// troupe::Pipeline over an Engine with the testing plugin, on a thread pool
// and on a process pool: one record per item, resume and retry_failed,
// timeouts, bad input and duplicate keys recorded failed, `from:` chains,
// independent jobs at once, stop(), and a pool that breaks.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/paths.hpp"
#include "troupe/engine.hpp"
#include "troupe/errors.hpp"
#include "troupe/pipeline.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using troupe::Engine;
using troupe::EngineSpec;
using troupe::ExistingOutput;
using troupe::JobInputSpec;
using troupe::JobSpec;
using troupe::Pipeline;
using troupe::PipelineOptions;
using troupe::PipelineReport;
using troupe::Value;

std::vector<Value> read_records(const fs::path& path) {
  std::ifstream in(path);
  std::vector<Value> records;
  for (std::string line; std::getline(in, line);) {
    records.push_back(Value::parse(line));
  }
  return records;
}

// Records by key (a JSON dump of it); a key twice fails the test.
std::map<std::string, Value> by_key(const std::vector<Value>& records) {
  std::map<std::string, Value> keyed;
  for (const auto& record : records) {
    EXPECT_TRUE(keyed.emplace(record.at("key").dump(), record).second) << "twice: " << record.dump();
  }
  return keyed;
}

JobInputSpec range(std::int64_t stop) {
  JobInputSpec in;
  in.kind = JobInputSpec::Kind::range;
  in.stop = stop;
  return in;
}

JobInputSpec items(std::vector<Value> values) {
  JobInputSpec in;
  in.kind = JobInputSpec::Kind::items;
  in.items = std::move(values);
  return in;
}

// Each test on a pool named by the parameter: "threads" or "procs".
class PipelineKinds : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("troupe-pipeline-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static EngineSpec spec(troupe::OnWorkerCrash on_crash = troupe::OnWorkerCrash::respawn) {
    troupe::ProcessPoolOptions procs;
    procs.max_workers = 2;
    procs.on_worker_crash = on_crash;
    return EngineSpec{.plugins = {{.path = troupe::test::plugin_path("testing")}},
                      .pools = {{"threads", troupe::ThreadPoolOptions{.max_workers = 2}}, {"procs", procs}}};
  }
  JobSpec job(std::string name, std::string task, JobInputSpec inputs) const {
    JobSpec j;
    j.output = dir_ / (name + ".jsonl");
    j.name = std::move(name);
    j.pool = GetParam();
    j.task = std::move(task);
    j.inputs = std::move(inputs);
    return j;
  }
  PipelineReport run(std::vector<JobSpec> jobs, PipelineOptions options = {}) {
    Engine engine(spec());
    Pipeline pipeline(engine, std::move(jobs), std::move(options));
    return pipeline.run();
  }

  fs::path dir_;
  static inline int counter_ = 0;
};

INSTANTIATE_TEST_SUITE_P(Pools, PipelineKinds, ::testing::Values("threads", "procs"));

TEST_P(PipelineKinds, EachItemIsRecordedExactlyOnceWithItsValue) {
  const PipelineReport report = run({job("double", "testing.double", range(200))});
  ASSERT_EQ(report.jobs.size(), 1u);
  EXPECT_EQ(report.jobs[0].ok, 200u);
  EXPECT_EQ(report.jobs[0].failed, 0u);
  EXPECT_FALSE(report.interrupted);
  const auto records = by_key(read_records(dir_ / "double.jsonl"));
  ASSERT_EQ(records.size(), 200u);
  for (int k = 0; k < 200; ++k) {
    const Value& r = records.at(std::to_string(k));
    EXPECT_EQ(r.at("ok"), true);
    EXPECT_EQ(r.at("value"), 2 * k);
    EXPECT_EQ(r.at("attempts"), 1);
  }
}

TEST_P(PipelineKinds, BoundArgumentsFollowTheItem) {
  JobSpec j = job("fail", "testing.fail", items({"boom"}));
  j.args = {Value("the cause")};
  const PipelineReport report = run({j});
  EXPECT_EQ(report.jobs[0].failed, 1u);
  const auto records = read_records(dir_ / "fail.jsonl");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_THAT(records[0].dump(), HasSubstr("boom"));
  EXPECT_THAT(records[0].dump(), HasSubstr("the cause"));
}

TEST_P(PipelineKinds, AFailedItemIsRecordedAndTheJobGoesOn) {
  const PipelineReport report = run({job("mixed", "testing.double", items({1, "x", 3}))});
  EXPECT_EQ(report.jobs[0].ok, 2u);
  EXPECT_EQ(report.jobs[0].failed, 1u);
  ASSERT_EQ(report.jobs[0].failures.size(), 1u);
  EXPECT_EQ(report.jobs[0].failures[0].key, "1");
  const auto records = by_key(read_records(dir_ / "mixed.jsonl"));
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records.at("1").at("ok"), false);
  EXPECT_THAT(records.at("1").at("error").at("type").get<std::string>(), HasSubstr("ArgumentError"));
  EXPECT_EQ(records.at("2").at("value"), 6);
}

TEST_P(PipelineKinds, AnExistingOutputIsRefusedNamingTheFileAndTheChoices) {
  run({job("double", "testing.double", range(3))});
  Engine engine(spec());
  try {
    Pipeline pipeline(engine, {job("double", "testing.double", range(3))});
    FAIL() << "an existing output was accepted";
  } catch (const troupe::UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr((dir_ / "double.jsonl").string()));
    EXPECT_THAT(e.what(), HasSubstr("--resume"));
    EXPECT_THAT(e.what(), HasSubstr("--overwrite"));
  }
}

TEST_P(PipelineKinds, ResumeSkipsRecordedKeysAndCutsATornLastLine) {
  run({job("double", "testing.double", range(10))});
  // Keep keys 0..3 and half a record, as a SIGKILL mid-write leaves it.
  const auto records = read_records(dir_ / "double.jsonl");
  {
    std::ofstream out(dir_ / "double.jsonl", std::ios::trunc);
    int kept = 0;
    for (const auto& r : records) {
      if (r.at("key").get<int>() < 4) {
        out << r.dump() << '\n';
        ++kept;
      }
    }
    ASSERT_EQ(kept, 4);
    out << R"({"key": 7, "ok": tr)";
  }
  const PipelineReport report = run({job("double", "testing.double", range(10))}, {.existing = ExistingOutput::resume});
  EXPECT_EQ(report.jobs[0].skipped, 4u);
  EXPECT_EQ(report.jobs[0].ok, 6u);
  const auto keyed = by_key(read_records(dir_ / "double.jsonl"));
  EXPECT_EQ(keyed.size(), 10u);
}

TEST_P(PipelineKinds, RetryFailedRunsOnlyTheFailedItemsAgain) {
  run({job("j", "testing.double", items({1, "x", 3}))});
  // The same items through echo now: only key 1 runs again, and succeeds.
  const PipelineReport report =
      run({job("j", "testing.echo", items({1, "x", 3}))}, {.existing = ExistingOutput::retry_failed});
  EXPECT_EQ(report.jobs[0].skipped, 2u);
  EXPECT_EQ(report.jobs[0].ok, 1u);
  const auto keyed = by_key(read_records(dir_ / "j.jsonl"));
  ASSERT_EQ(keyed.size(), 3u);
  EXPECT_EQ(keyed.at("0").at("value"), 2);  // doubled by the first run
  EXPECT_EQ(keyed.at("1").at("value"), "x");
  EXPECT_EQ(keyed.at("2").at("value"), 6);
}

TEST_P(PipelineKinds, OverwriteStartsTheOutputOver) {
  run({job("j", "testing.double", range(5))});
  const PipelineReport report = run({job("j", "testing.double", range(2))}, {.existing = ExistingOutput::overwrite});
  EXPECT_EQ(report.jobs[0].ok, 2u);
  EXPECT_EQ(read_records(dir_ / "j.jsonl").size(), 2u);
}

TEST_P(PipelineKinds, AnItemPastTheJobTimeoutIsRecordedAsTaskTimeoutError) {
  JobSpec j = job("slow", "testing.cancellable_sleep", items({10, 60'000, 10}));
  j.timeout = 300ms;
  const PipelineReport report = run({j});
  EXPECT_EQ(report.jobs[0].ok, 2u);
  EXPECT_EQ(report.jobs[0].failed, 1u);
  const auto keyed = by_key(read_records(dir_ / "slow.jsonl"));
  EXPECT_THAT(keyed.at("1").at("error").at("type").get<std::string>(), HasSubstr("TaskTimeoutError"));
}

TEST_P(PipelineKinds, ADuplicateKeyIsRecordedFailedNamingBothPositions) {
  JobInputSpec in = items({Value{{"id", "a"}}, Value{{"id", "b"}}, Value{{"id", "a"}}});
  in.key_field = "id";
  const PipelineReport report = run({job("dup", "testing.echo", in)});
  EXPECT_EQ(report.jobs[0].ok, 2u);
  EXPECT_EQ(report.jobs[0].failed, 1u);
  ASSERT_EQ(report.jobs[0].failures.size(), 1u);
  EXPECT_THAT(report.jobs[0].failures[0].error, HasSubstr("duplicate key"));
  EXPECT_THAT(report.jobs[0].failures[0].error, HasSubstr("position 2"));
  EXPECT_THAT(report.jobs[0].failures[0].error, HasSubstr("position 0"));
  const auto records = read_records(dir_ / "dup.jsonl");
  ASSERT_EQ(records.size(), 3u);
  int failed = 0;
  for (const auto& r : records) {
    if (r.at("ok") == false) {
      ++failed;
      EXPECT_EQ(r.at("key"), "a");
      EXPECT_THAT(r.at("error").at("type").get<std::string>(), HasSubstr("InputError"));
      EXPECT_EQ(r.at("attempts"), 0);
    }
  }
  EXPECT_EQ(failed, 1);
}

TEST_P(PipelineKinds, ABadInputLineIsRecordedFailedAndTheJobGoesOn) {
  const fs::path input = dir_ / "in.jsonl";
  std::ofstream(input) << "1\n{not json\n3\n";
  JobInputSpec in;
  in.kind = JobInputSpec::Kind::jsonl;
  in.path = input;
  const PipelineReport report = run({job("lines", "testing.double", in)});
  EXPECT_EQ(report.jobs[0].ok, 2u);
  EXPECT_EQ(report.jobs[0].failed, 1u);
  const auto keyed = by_key(read_records(dir_ / "lines.jsonl"));
  ASSERT_EQ(keyed.size(), 3u);
  EXPECT_THAT(keyed.at("2").at("error").at("type").get<std::string>(), HasSubstr("InputError"));
  EXPECT_EQ(keyed.at("3").at("value"), 6);
}

TEST_P(PipelineKinds, AFromJobReadsItsUpstreamOkValuesWithTheirKeys) {
  JobInputSpec from;
  from.kind = JobInputSpec::Kind::from;
  from.from = "first";
  // `second` is written first: the order comes from `from`, not the list.
  const PipelineReport report =
      run({job("second", "testing.double", from), job("first", "testing.double", items({1, "x", 3}))});
  ASSERT_EQ(report.jobs.size(), 2u);
  EXPECT_EQ(report.jobs[0].name, "second");
  EXPECT_EQ(report.jobs[0].ok, 2u);
  const auto keyed = by_key(read_records(dir_ / "second.jsonl"));
  ASSERT_EQ(keyed.size(), 2u);
  EXPECT_EQ(keyed.at("0").at("value"), 4);
  EXPECT_EQ(keyed.at("2").at("value"), 12);
}

TEST_P(PipelineKinds, ASingleFromJobNeedsItsUpstreamOutput) {
  JobInputSpec from;
  from.kind = JobInputSpec::Kind::from;
  from.from = "first";
  Engine engine(spec());
  try {
    Pipeline pipeline(engine, {job("first", "testing.double", range(3)), job("second", "testing.double", from)},
                      {.job = "second"});
    FAIL() << "accepted";
  } catch (const troupe::UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("first.jsonl"));
    EXPECT_THAT(e.what(), HasSubstr("does not exist"));
  }
  EXPECT_THROW(Pipeline(engine, {job("first", "testing.double", range(3))}, {.job = "nope"}), troupe::UsageError);
}

TEST_P(PipelineKinds, IndependentJobsRunAtOnce) {
  // Each job's progress is seen while the other's is still unfinished: run
  // one after the other, every snapshot of the first would come before the
  // second's first.
  std::mutex mutex;
  std::vector<std::pair<std::string, bool>> seen;  // label, finished
  PipelineOptions options;
  options.progress = troupe::Progress::to_callback(
      [&](const troupe::ProgressSnapshot& s) {
        std::lock_guard lock(mutex);
        seen.emplace_back(s.label, s.finished);
      },
      10ms);
  JobInputSpec sleeps = items(std::vector<Value>(20, Value(30)));
  const PipelineReport report =
      run({job("a", "testing.sleep", sleeps), job("b", "testing.sleep", sleeps)}, std::move(options));
  EXPECT_EQ(report.jobs[0].ok + report.jobs[1].ok, 40u);
  std::lock_guard lock(mutex);
  // Each job was seen before the other finished.
  std::size_t first_a_finish = seen.size();
  std::size_t first_b_finish = seen.size();
  std::size_t first_a = seen.size();
  std::size_t first_b = seen.size();
  for (std::size_t i = 0; i < seen.size(); ++i) {
    const auto& [label, finished] = seen[i];
    auto& first = label == "a" ? first_a : first_b;
    auto& finish = label == "a" ? first_a_finish : first_b_finish;
    first = std::min(first, i);
    if (finished) {
      finish = std::min(finish, i);
    }
  }
  EXPECT_LT(first_a, first_b_finish);
  EXPECT_LT(first_b, first_a_finish);
}

TEST_P(PipelineKinds, OnATerminalJobsRunningAtOnceEachHaveALineOfTheirOwn) {
  int terminal = -1;
  int reader = -1;
  winsize size{};
  size.ws_row = 24;
  size.ws_col = 200;
  ASSERT_EQ(::openpty(&reader, &terminal, nullptr, nullptr, &size), 0);
  termios raw{};
  ASSERT_EQ(::tcgetattr(terminal, &raw), 0);
  ::cfmakeraw(&raw);
  ASSERT_EQ(::tcsetattr(terminal, TCSANOW, &raw), 0);
  // Read while the jobs run, so the terminal never fills up.
  std::string out;
  std::atomic<bool> done{false};
  std::thread drain([&] {
    char buf[4096];
    for (;;) {
      pollfd p{reader, POLLIN, 0};
      const bool ready = ::poll(&p, 1, 20) == 1 && (p.revents & POLLIN) != 0;
      if (!ready && done) {
        return;
      }
      if (ready) {
        const ssize_t n = ::read(reader, buf, sizeof buf);
        if (n > 0) {
          out.append(buf, static_cast<std::size_t>(n));
        }
      }
    }
  });
  PipelineOptions options;
  options.progress = troupe::Progress::to_fd(terminal);
  JobInputSpec sleeps = items(std::vector<Value>(20, Value(20)));
  const PipelineReport report =
      run({job("a", "testing.sleep", sleeps), job("b", "testing.sleep", sleeps)}, std::move(options));
  done = true;
  drain.join();
  ::close(terminal);
  ::close(reader);
  EXPECT_EQ(report.jobs[0].ok + report.jobs[1].ok, 40u);
  // The last redraw goes back over both lines and draws each job's final one.
  const auto last = out.rfind("\x1b[2A");
  ASSERT_NE(last, std::string::npos) << out;
  const std::string board = out.substr(last);
  EXPECT_THAT(board, HasSubstr("\ra 20 ok 20 failed 0"));
  EXPECT_THAT(board, HasSubstr("\rb 20 ok 20 failed 0"));
  EXPECT_EQ(std::count(board.begin(), board.end(), '\n'), 2) << board;
}

TEST_P(PipelineKinds, StopEndsTheRunningJobAndStartsNoOther) {
  Engine engine(spec());
  JobSpec slow = job("slow", "testing.sleep", items(std::vector<Value>(400, Value(20))));
  JobSpec later = job("later", "testing.double", range(3));
  later.after = {"slow"};
  PipelineOptions options;
  Pipeline* self = nullptr;
  options.progress = troupe::Progress::to_callback(
      [&](const troupe::ProgressSnapshot& s) {
        if (s.done >= 5) {
          self->stop();
        }
      },
      10ms);
  Pipeline pipeline(engine, {slow, later}, std::move(options));
  self = &pipeline;
  const PipelineReport report = pipeline.run();
  EXPECT_TRUE(report.interrupted);
  EXPECT_TRUE(report.jobs[0].interrupted);
  EXPECT_GE(report.jobs[0].ok, 5u);
  EXPECT_LT(report.jobs[0].ok, 400u);
  EXPECT_EQ(report.jobs[0].ok + report.jobs[0].aborted, 400u);
  EXPECT_FALSE(report.jobs[1].ran);
  EXPECT_FALSE(fs::exists(dir_ / "later.jsonl"));
  EXPECT_EQ(by_key(read_records(dir_ / "slow.jsonl")).size(), report.jobs[0].ok);
}

TEST_P(PipelineKinds, RetriesRunAFailedItemAgain) {
  // fail_once(path, 7) fails on its first call for a path, then returns 7.
  JobSpec j = job("again", "testing.fail_once", items({(dir_ / "marker").string()}));
  j.args = {Value(7)};
  j.retries = 1;
  const PipelineReport report = run({j});
  EXPECT_EQ(report.jobs[0].ok, 1u);
  EXPECT_EQ(report.jobs[0].retried, 1u);
  const auto records = read_records(dir_ / "again.jsonl");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].at("value"), 7);
  EXPECT_EQ(records[0].at("attempts"), 2);
}

TEST_P(PipelineKinds, ChunksRecordEachItemOnce) {
  JobSpec j = job("chunked", "testing.double", range(1000));
  j.chunk_size = 64;
  const PipelineReport report = run({j});
  EXPECT_EQ(report.jobs[0].ok, 1000u);
  EXPECT_EQ(by_key(read_records(dir_ / "chunked.jsonl")).size(), 1000u);
}

TEST_P(PipelineKinds, StopBeforeRunStartsNothing) {
  Engine engine(spec());
  Pipeline pipeline(engine, {job("double", "testing.double", range(3))});
  pipeline.stop();
  const PipelineReport report = pipeline.run();
  EXPECT_TRUE(report.interrupted);
  EXPECT_FALSE(report.jobs[0].ran);
  EXPECT_FALSE(fs::exists(dir_ / "double.jsonl"));
  EXPECT_THROW(pipeline.run(), troupe::UsageError);
}

TEST_P(PipelineKinds, AnUnknownPoolIsTheJobsErrorAndHoldsBackTheJobsAfterIt) {
  JobSpec first = job("first", "testing.double", range(3));
  first.pool = "nosuchpool";
  JobSpec second = job("second", "testing.double", range(3));
  second.after = {"first"};
  const PipelineReport report = run({first, second});
  ASSERT_TRUE(report.jobs[0].error.has_value());
  EXPECT_THAT(*report.jobs[0].error, HasSubstr("nosuchpool"));
  EXPECT_FALSE(report.jobs[1].ran);
  EXPECT_FALSE(report.interrupted);
}

TEST_P(PipelineKinds, BadJobListsAreRefusedBeforeAnythingRuns) {
  Engine engine(spec());
  JobSpec a = job("a", "testing.double", range(3));
  JobSpec b = job("b", "testing.double", range(3));
  a.after = {"b"};
  b.after = {"a"};
  try {
    Pipeline pipeline(engine, {a, b});
    FAIL() << "a cycle was accepted";
  } catch (const troupe::UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("a -> b -> a"));
  }
  JobSpec same = job("c", "testing.double", range(3));
  same.output = a.output;
  EXPECT_THROW(Pipeline(engine, {job("a", "testing.double", range(3)), same}), troupe::UsageError);
  JobSpec unknown = job("d", "testing.double", range(3));
  unknown.after = {"nope"};
  EXPECT_THROW(Pipeline(engine, {unknown}), troupe::UsageError);
  EXPECT_THROW(Pipeline(engine, {job("e", "testing.double", range(3)), job("e", "testing.echo", range(3))}),
               troupe::UsageError);
  EXPECT_FALSE(fs::exists(a.output));
}

TEST(PipelineProcessPool, ABrokenPoolEndsTheJobLeavingItsUnfinishedItemsUnrecorded) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("troupe-pipeline-broken-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  troupe::ProcessPoolOptions procs;
  procs.max_workers = 1;
  procs.on_worker_crash = troupe::OnWorkerCrash::break_pool;
  Engine engine(EngineSpec{.plugins = {{.path = troupe::test::plugin_path("testing")}}, .pools = {{"procs", procs}}});
  JobSpec j;
  j.name = "crashy";
  j.pool = "procs";
  j.task = "testing.abort_at";
  j.args = {Value(5)};
  j.inputs = range(500);
  j.output = dir / "out.jsonl";
  j.chunk_size = 1;
  Pipeline pipeline(engine, {j});
  const PipelineReport report = pipeline.run();
  ASSERT_TRUE(report.jobs[0].pool_broken.has_value());
  EXPECT_FALSE(report.interrupted);
  const auto records = read_records(dir / "out.jsonl");
  EXPECT_LT(records.size(), 500u);
  for (const auto& r : records) {
    if (r.at("ok") == false) {
      EXPECT_THAT(r.at("error").at("type").get<std::string>(), ::testing::Not(HasSubstr("BrokenPoolError")))
          << r.dump();
    }
  }
  fs::remove_all(dir);
}

}  // namespace
