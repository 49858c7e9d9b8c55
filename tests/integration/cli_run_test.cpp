// troupe run, as a user runs it: every exit code (0 ok, 1 failed items,
// 2 usage/config and an existing output, 3 a broken pool, 130 SIGINT), the
// summary on stderr and the records it leaves.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/cli_runner.hpp"
#include "support/paths.hpp"
#include "troupe/sdk/value.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using troupe::test::run_troupe;

class CliRun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("troupe-cli-run-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A file with the testing plugin, a process pool `cpu` (`pool_extra`: its keys
  // besides kind; two workers by default) and `jobs` (YAML list items, indented by 2).
  std::string config(const std::string& jobs, const std::string& pool_extra = "    workers: 2\n") {
    const std::string yaml = "version: 1\nplugins:\n  - path: " + troupe::test::plugin_path("testing").string() +
                             "\npools:\n  cpu:\n    kind: process\n" + pool_extra + "jobs:\n" + jobs;
    std::ofstream(dir_ / "troupe.yaml") << yaml;
    return (dir_ / "troupe.yaml").string();
  }
  std::vector<troupe::Value> records(const std::string& name) const {
    std::ifstream in(dir_ / name);
    std::vector<troupe::Value> out;
    for (std::string line; std::getline(in, line);) {
      out.push_back(troupe::Value::parse(line));
    }
    return out;
  }
  static std::set<std::string> keys(const std::vector<troupe::Value>& records) {
    std::set<std::string> seen;
    for (const auto& r : records) {
      EXPECT_TRUE(seen.insert(r.at("key").dump()).second) << "twice: " << r.dump();
    }
    return seen;
  }

  fs::path dir_;
};

const char* kDoubleJob = R"(  - name: double
    pool: cpu
    task: testing.double
    inputs: {range: [0, 100, 1]}
    output: out/double.jsonl
)";

TEST_F(CliRun, AllItemsOkExitsZeroWithASummary) {
  const auto r = run_troupe({"run", config(kDoubleJob), "--progress", "never"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("job 'double': 100 ok, 0 failed"));
  EXPECT_THAT(r.err, HasSubstr((dir_ / "out/double.jsonl").string()));
  EXPECT_EQ(keys(records("out/double.jsonl")).size(), 100u);
}

TEST_F(CliRun, FailedItemsExitOneAndTheSummaryNamesTheFirst) {
  const auto r = run_troupe({"run", config(R"(  - name: mixed
    pool: cpu
    task: testing.double
    inputs: {items: [1, "x", 3]}
    output: mixed.jsonl
)"),
                             "--progress", "never"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("2 ok, 1 failed"));
  EXPECT_THAT(r.err, HasSubstr("  key 1: "));
  EXPECT_THAT(r.err, HasSubstr("ArgumentError"));
  EXPECT_EQ(records("mixed.jsonl").size(), 3u);
}

TEST_F(CliRun, AnExistingOutputWithoutAFlagExitsTwoAndResumeAndOverwriteAccept) {
  const std::string file = config(kDoubleJob);
  ASSERT_EQ(run_troupe({"run", file, "--progress", "never"}).exit_code, 0);
  const auto refused = run_troupe({"run", file, "--progress", "never"});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_THAT(refused.err, HasSubstr("troupe: error: "));
  EXPECT_THAT(refused.err, HasSubstr("double.jsonl exists"));
  EXPECT_THAT(refused.err, HasSubstr("--resume"));
  const auto resumed = run_troupe({"run", file, "--resume", "--progress", "never"});
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_THAT(resumed.err, HasSubstr("0 ok, 0 failed, 100 skipped"));
  EXPECT_EQ(keys(records("out/double.jsonl")).size(), 100u);
  const auto again = run_troupe({"run", file, "--overwrite", "--progress", "never"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(keys(records("out/double.jsonl")).size(), 100u);
}

TEST_F(CliRun, ResumingAFileThatIsNotAnOutputExitsTwoNamingIt) {
  const std::string file = config(kDoubleJob);
  fs::create_directories(dir_ / "out");
  std::ofstream(dir_ / "out/double.jsonl") << "{\"name\": \"not a record\"}\n";
  const auto r = run_troupe({"run", file, "--resume", "--progress", "never"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("troupe: error: job 'double': "));
  EXPECT_THAT(r.err, HasSubstr("double.jsonl"));
}

TEST_F(CliRun, ResumeAndOverwriteTogetherAreAUsageError) {
  const auto r = run_troupe({"run", config(kDoubleJob), "--resume", "--overwrite"});
  EXPECT_EQ(r.exit_code, 2);
}

TEST_F(CliRun, AConfigErrorExitsTwoWithItsPlace) {
  const auto r = run_troupe({"run", config(R"(  - name: double
    pool: nosuchpool
    task: testing.double
    inputs: {range: [0, 3, 1]}
    output: d.jsonl
)")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("troupe.yaml:"));
  EXPECT_THAT(r.err, HasSubstr("nosuchpool"));
}

TEST_F(CliRun, AnUnknownJobExitsTwo) {
  const auto r = run_troupe({"run", config(kDoubleJob), "--job", "nope"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("troupe: error: no job named 'nope'"));
}

TEST_F(CliRun, SetOverridesAJobKey) {
  const auto r =
      run_troupe({"run", config(kDoubleJob), "--set", "jobs.double.output=other.jsonl", "--progress", "never"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(records("other.jsonl").size(), 100u);
}

TEST_F(CliRun, ACrashUnderOnWorkerCrashBreakExitsThree) {
  const auto r = run_troupe({"run",
                             config(R"(  - name: crashy
    pool: cpu
    task: testing.abort_at
    args: [5]
    chunk_size: 1
    inputs: {range: [0, 500, 1]}
    output: crashy.jsonl
)",
                                    "    workers: 1\n    on_worker_crash: break\n"),
                             "--progress", "never"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("pool broke"));
  // One worker: what was not sent to it before it died is never run, nor recorded.
  EXPECT_LT(records("crashy.jsonl").size(), 500u);
}

TEST_F(CliRun, SigintStopsExitsOneThirtyAndSaysHowToResume) {
  const std::string file = config(R"(  - name: slow
    pool: cpu
    task: testing.sleep
    inputs: {items: [20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
                     20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
                     20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
                     20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
                     20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
                     20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
                     20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
                     20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
                     20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
                     20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20]}
    output: slow.jsonl
)");
  const std::string err_path = (dir_ / "err.txt").string();
  const std::string binary = troupe::test::binary_path("troupe").string();
  // A job name and an override that the resume hint must repeat.
  std::vector<std::string> args = {binary,  "run",  file,    "--progress",         "never",
                                   "--job", "slow", "--set", "jobs.slow.retries=0"};
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  // Interrupt once a few records are written (awaited, with a bound).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (records("slow.jsonl").size() < 5 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(kill(pid, SIGINT), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  const std::string err = troupe::test::read_whole(err_path);
  EXPECT_THAT(err, HasSubstr("troupe run " + file + " --job slow --set jobs.slow.retries=0 --resume"));
  const auto first = keys(records("slow.jsonl"));
  EXPECT_LT(first.size(), 200u);
  // The resume finishes the rest, each key once.
  const auto resumed = run_troupe({"run", file, "--resume", "--progress", "never"});
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(keys(records("slow.jsonl")).size(), 200u);
}

TEST_F(CliRun, AJsonlLineWithAnIntegerPastSixtyFourBitsIsThatItemsErrorNotAFloat) {
  std::ofstream(dir_ / "in.jsonl") << "18446744073709551616\n1e30\n{\"n\": [1, 99999999999999999999]}\n5\n"
                                   << "\"18446744073709551616\"\n18446744073709551615\n";
  const auto r = run_troupe({"run", config(R"(  - name: wide
    pool: cpu
    task: testing.echo
    inputs: {jsonl: in.jsonl}
    output: wide.jsonl
)"),
                             "--progress", "never"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("4 ok, 2 failed"));
  std::map<std::int64_t, troupe::Value> by_line;
  for (const auto& record : records("wide.jsonl")) {
    by_line[record.at("key").get<std::int64_t>()] = record;
  }
  ASSERT_EQ(by_line.size(), 6u);
  EXPECT_FALSE(by_line[1]["ok"].get<bool>());
  EXPECT_EQ(by_line[1]["attempts"], 0);
  EXPECT_EQ(by_line[1]["error"]["type"], "troupe::InputError");
  EXPECT_EQ(by_line[1]["error"]["message"].get<std::string>(),
            (dir_ / "in.jsonl").string() +
                ":1: the integer 18446744073709551616 is outside -2^63..2^64-1, which no integer type holds; pass it "
                "as a string (\"18446744073709551616\"), or as a float written with a decimal point or an exponent "
                "(18446744073709551616.0) if losing its low digits is fine");
  EXPECT_FALSE(by_line[3]["ok"].get<bool>());
  EXPECT_THAT(by_line[3]["error"]["message"].get<std::string>(),
              HasSubstr("in.jsonl:3: the integer 99999999999999999999 is outside"));
  EXPECT_EQ(by_line[2]["value"], troupe::Value(1e30));
  EXPECT_EQ(by_line[4]["value"], 5);
  EXPECT_EQ(by_line[5]["value"], "18446744073709551616");
  EXPECT_EQ(by_line[6]["value"].get<std::uint64_t>(), 18446744073709551615ULL);
}

TEST_F(CliRun, AYamlArgumentWithAnIntegerPastSixtyFourBitsIsAConfigErrorAtItsPlace) {
  const std::string file = config(R"(  - name: wide
    pool: cpu
    task: testing.echo
    kwargs: {value: 18446744073709551616}
    inputs: {items: [1]}
    output: wide.jsonl
)");
  const auto r = run_troupe({"run", file, "--progress", "never"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr(file + ":12:21: error: jobs[0].kwargs.value: the integer 18446744073709551616 is "
                                      "outside -2^63..2^64-1"));
  EXPECT_FALSE(fs::exists(dir_ / "wide.jsonl"));
}

}  // namespace
