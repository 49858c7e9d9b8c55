// `troupe run` under `mpirun -np 3`, as a user runs it: rank 0 runs the
// jobs, ranks 1 and 2 serve the file's pool of kind mpi. The records equal
// a one-machine run's; a crash on a serving rank fails only its item; a
// SIGKILL of any rank ends the run and leaves no process behind; SIGINTs to
// rank 0 stop it cleanly or interrupt it; --resume under mpirun finishes
// what was stopped; outside mpirun (or on one rank) a job on an mpi pool is
// refused saying how to start it; a configuration error is printed once,
// not once per rank.
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "support/cli_runner.hpp"
#include "support/paths.hpp"
#include "troupe/sdk/value.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using troupe::test::CliResult;
using troupe::test::run_program;
using troupe::test::run_troupe;

// (key, ok, value or error type): what a record says about its item, apart
// from where and how long it ran.
using Outcome = std::tuple<std::string, bool, std::string>;

// The live children of `pid` (all its threads'), from /proc.
std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> children;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = opendir(tasks.c_str());
  if (dir == nullptr) {
    return children;
  }
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') {
      continue;
    }
    std::ifstream list(tasks + "/" + entry->d_name + "/children");
    for (pid_t child = 0; list >> child;) {
      children.push_back(child);
    }
  }
  closedir(dir);
  return children;
}

// The rank `pid` was started as, from the variable mpirun gave it; nullopt
// when it has none (or is gone).
std::optional<int> mpi_rank_of(pid_t pid) {
  std::ifstream environ_file("/proc/" + std::to_string(pid) + "/environ");
  const std::string prefix = "OMPI_COMM_WORLD_RANK=";
  for (std::string variable; std::getline(environ_file, variable, '\0');) {
    if (variable.starts_with(prefix)) {
      return std::atoi(variable.c_str() + prefix.size());
    }
  }
  return std::nullopt;
}

// A signal for one rank's troupe, and what the watch saw when it sent it.
struct RankSignal {
  RankSignal(int to_rank, int signal_number) : rank(to_rank), signal(signal_number) {}
  int rank;
  int signal;
  std::optional<std::chrono::steady_clock::time_point> sent_at;
  std::vector<pid_t> workers;  // the rank's children just before
};

constexpr int kSleepyItems = 300;

const char* kMpiPool = "  cluster:\n    kind: mpi\n    local: {kind: process, workers: 2}\n";
const char* kProcessPool = "  cluster: {kind: process, workers: 2}\n";

// Whether `pid` still runs: a zombie has ended (nobody may reap it here).
bool running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) {
    return false;
  }
  const auto close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z';
}

// Expects every one of `pids` to end; they learn of their parent's death at
// once (PR_SET_PDEATHSIG, or mpirun's abort), so 30 s is only a bound.
void expect_ended(const std::vector<pid_t>& pids, const std::string& what) {
  for (const pid_t pid : pids) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (running(pid) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
    }
    EXPECT_FALSE(running(pid)) << what << " " << pid << " outlived the run";
  }
}

std::size_t count_of(const std::string& text, const std::string& part) {
  std::size_t count = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) {
    ++count;
  }
  return count;
}

class CliMpi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Open MPI refuses to start as root without both (containers run as root).
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
  }

  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("troupe-cli-mpi-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A file with the testing plugin, the pools (YAML map entries, indented by
  // 2) and the jobs (YAML list items, indented by 2), written as `name`.
  std::string write_config(const std::string& pools, const std::string& jobs,
                           const std::string& name = "troupe.yaml") const {
    std::ofstream(dir_ / name) << "version: 1\nplugins:\n  - path: " << troupe::test::plugin_path("testing").string()
                               << "\npools:\n"
                               << pools << "jobs:\n"
                               << jobs;
    return (dir_ / name).string();
  }

  // `troupe args...` on three ranks.
  static CliResult mpirun_troupe(const std::vector<std::string>& troupe_args,
                                 const std::function<void(pid_t)>& watch = nullptr) {
    std::vector<std::string> args{"--oversubscribe", "-np", "3", troupe::test::binary_path("troupe").string()};
    args.insert(args.end(), troupe_args.begin(), troupe_args.end());
    return run_program(TROUPE_MPIEXEC, args, 90s, watch);
  }

  std::vector<troupe::Value> records(const std::string& name) const {
    std::ifstream in(dir_ / name);
    std::vector<troupe::Value> out;
    int line_no = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_no;
      const auto record = troupe::Value::parse(line, nullptr, /*allow_exceptions=*/false);
      EXPECT_FALSE(record.is_discarded()) << name << ":" << line_no << " is not JSON: " << line;
      if (!record.is_discarded()) {
        out.push_back(record);
      }
    }
    return out;
  }

  static std::set<Outcome> outcomes(const std::vector<troupe::Value>& records) {
    std::set<Outcome> seen;
    for (const auto& r : records) {
      const bool ok = r.at("ok").get<bool>();
      EXPECT_TRUE(
          seen.emplace(r.at("key").dump(), ok, ok ? r.at("value").dump() : r.at("error").at("type").dump()).second)
          << "twice: " << r.dump();
    }
    return seen;
  }

  static std::set<std::int64_t> workers(const std::vector<troupe::Value>& records) {
    std::set<std::int64_t> seen;
    for (const auto& r : records) {
      seen.insert(r.at("worker").get<std::int64_t>());
    }
    return seen;
  }

  // A job of kSleepyItems sleeps of 30 ms on the mpi pool: on 4 workers
  // it outlasts a signal sent once its first records are out by seconds.
  std::string write_sleepy_job() const {
    {
      std::ofstream items(dir_ / "items.jsonl");
      for (int i = 0; i < kSleepyItems; ++i) {
        items << "30\n";
      }
    }
    return write_config(kMpiPool, R"(  - name: sleepy
    pool: cluster
    task: testing.sleep
    chunk_size: 1
    inputs: {jsonl: items.jsonl}
    output: sleepy.jsonl
)");
  }

  // A watch for mpirun_troupe: once sleepy.jsonl holds 10 records, sends
  // shot.signal to rank shot.rank's troupe (a child of mpirun), once,
  // noting its own children first.
  std::function<void(pid_t)> signal_once_records_flow(RankSignal& shot) const {
    return [this, &shot](pid_t mpirun) {
      if (shot.sent_at || count_of(troupe::test::read_whole((dir_ / "sleepy.jsonl").string()), "\n") < 10) {
        return;
      }
      for (const pid_t rank : children_of(mpirun)) {
        if (mpi_rank_of(rank) == shot.rank) {
          shot.workers = children_of(rank);
          ASSERT_EQ(kill(rank, shot.signal), 0);
          shot.sent_at = std::chrono::steady_clock::now();
        }
      }
    };
  }

  void expect_every_sleepy_key_once_ok() const {
    std::map<std::int64_t, int> seen;
    for (const auto& record : records("sleepy.jsonl")) {
      EXPECT_TRUE(record.at("ok").get<bool>()) << record.dump();
      ++seen[record.at("key").get<std::int64_t>()];
    }
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(kSleepyItems));
    for (const auto& [key, count] : seen) {
      EXPECT_EQ(count, 1) << "key " << key;
      EXPECT_GE(key, 1);
      EXPECT_LE(key, kSleepyItems);
    }
  }

  fs::path dir_;
};

// Chunks small enough that both serving ranks get some of each job.
const char* kRangeAndJsonlJobs = R"(  - name: doubled
    pool: cluster
    task: testing.double
    chunk_size: 20
    inputs: {range: [-500, 2500]}
    output: out/doubled.jsonl
  - name: echoed
    pool: cluster
    task: testing.echo
    chunk_size: 10
    inputs: {jsonl: items.jsonl}
    output: out/echoed.jsonl
)";

TEST_F(CliMpi, ThreeRanksRecordTheSameOutcomesAsOneMachineAndBothServingRanksWork) {
  {
    std::ofstream items(dir_ / "items.jsonl");
    for (int i = 0; i < 400; ++i) {
      items << (i % 4 == 0   ? "\"text " + std::to_string(i) + "\""
                : i % 4 == 1 ? std::to_string(i * 1.5)
                : i % 4 == 2 ? "{\"n\": " + std::to_string(i) + ", \"list\": [1, null, true]}"
                             : "[" + std::to_string(i) + "]")
            << "\n";
    }
  }
  const std::string local = write_config(kProcessPool, kRangeAndJsonlJobs, "local.yaml");
  const auto one_machine = run_troupe({"run", local, "--progress", "never"});
  ASSERT_EQ(one_machine.exit_code, 0) << one_machine.err;
  const auto doubled_locally = records("out/doubled.jsonl");
  const auto echoed_locally = records("out/echoed.jsonl");
  ASSERT_EQ(doubled_locally.size(), 3000u);
  ASSERT_EQ(echoed_locally.size(), 400u);
  fs::remove_all(dir_ / "out");

  const std::string cluster = write_config(kMpiPool, kRangeAndJsonlJobs, "cluster.yaml");
  const auto three_ranks = mpirun_troupe({"run", cluster, "--progress", "never"});
  ASSERT_EQ(three_ranks.exit_code, 0) << three_ranks.err;
  EXPECT_THAT(three_ranks.err, HasSubstr("job 'doubled': 3000 ok, 0 failed"));
  EXPECT_THAT(three_ranks.err, HasSubstr("job 'echoed': 400 ok, 0 failed"));
  const auto doubled = records("out/doubled.jsonl");
  const auto echoed = records("out/echoed.jsonl");
  EXPECT_EQ(outcomes(doubled), outcomes(doubled_locally));
  EXPECT_EQ(outcomes(echoed), outcomes(echoed_locally));
  // On an mpi pool a record's worker is the rank that ran it.
  EXPECT_EQ(workers(doubled), (std::set<std::int64_t>{1, 2}));
  EXPECT_EQ(workers(echoed), (std::set<std::int64_t>{1, 2}));
}

TEST_F(CliMpi, AWorkerCrashOnAServingRankFailsOnlyItsItemNamingTheRank) {
  // One frame per rank at a time: a worker never holds an earlier item's
  // result unsent when it crashes (with more, those are lost with it and
  // fail too, as on one machine's process pool: a task never runs twice).
  const std::string file = write_config(R"(  cluster:
    kind: mpi
    local: {kind: process, workers: 1}
    frames_per_worker: 1
)",
                                        R"(  - name: crashy
    pool: cluster
    task: testing.abort_at
    args: [17]
    chunk_size: 1
    inputs: {range: [0, 40]}
    output: crashy.jsonl
)");
  const auto r = mpirun_troupe({"run", file, "--progress", "never"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("39 ok, 1 failed"));
  const auto crashy = records("crashy.jsonl");
  ASSERT_EQ(crashy.size(), 40u);
  for (const auto& record : crashy) {
    if (record.at("key").get<std::int64_t>() == 17) {
      ASSERT_FALSE(record.at("ok").get<bool>()) << record.dump();
      EXPECT_THAT(record.at("error").at("type").get<std::string>(), HasSubstr("WorkerCrashedError"));
      EXPECT_THAT(record.at("error").at("message").get<std::string>(), HasSubstr("while running testing.abort_at"));
      EXPECT_THAT(record.at("error").at("message").get<std::string>(),
                  HasSubstr("on rank " + std::to_string(record.at("worker").get<int>())));
    } else {
      EXPECT_TRUE(record.at("ok").get<bool>()) << record.dump();
      EXPECT_EQ(record.value("value", troupe::Value()), record.at("key")) << record.dump();
    }
  }
}

TEST_F(CliMpi, ASigkilledServingRankEndsTheRunAndResumeUnderMpirunFinishesIt) {
  const std::string file = write_sleepy_job();
  RankSignal shot(1, SIGKILL);
  const auto killed = mpirun_troupe({"run", file, "--progress", "never"}, signal_once_records_flow(shot));
  ASSERT_TRUE(shot.sent_at) << "rank 1 was never found under mpirun; " << killed.err;
  EXPECT_NE(killed.exit_code, 0) << killed.err;
  EXPECT_NE(killed.exit_code, -1) << "mpirun did not end after rank 1 was killed: " << killed.err;
  EXPECT_LT(std::chrono::steady_clock::now() - *shot.sent_at, 60s);
  EXPECT_FALSE(shot.workers.empty()) << "rank 1 had no local workers to check";
  expect_ended(shot.workers, "rank 1's worker");
  EXPECT_LT(records("sleepy.jsonl").size(), static_cast<std::size_t>(kSleepyItems)) << "the job ended before the kill";

  const auto resumed = mpirun_troupe({"run", file, "--resume", "--progress", "never"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  expect_every_sleepy_key_once_ok();
}

TEST_F(CliMpi, ASigkilledRankZeroEndsTheRunLeavingNoRankAndResumeFinishesIt) {
  const std::string file = write_sleepy_job();
  RankSignal shot(0, SIGKILL);
  std::set<pid_t> serving;  // ranks 1 and 2, as they appear (until the kill)
  const auto killed =
      mpirun_troupe({"run", file, "--progress", "never"}, [&, watch = signal_once_records_flow(shot)](pid_t mpirun) {
        for (const pid_t rank : shot.sent_at ? std::vector<pid_t>{} : children_of(mpirun)) {
          if (mpi_rank_of(rank).value_or(0) != 0) {
            serving.insert(rank);
          }
        }
        watch(mpirun);
      });
  ASSERT_TRUE(shot.sent_at) << "rank 0 was never found under mpirun; " << killed.err;
  EXPECT_NE(killed.exit_code, 0) << killed.err;
  EXPECT_NE(killed.exit_code, -1) << "mpirun did not end after rank 0 was killed: " << killed.err;
  EXPECT_LT(std::chrono::steady_clock::now() - *shot.sent_at, 60s);
  EXPECT_EQ(serving.size(), 2u);
  expect_ended({serving.begin(), serving.end()}, "serving rank");

  const auto resumed = mpirun_troupe({"run", file, "--resume", "--progress", "never"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  expect_every_sleepy_key_once_ok();
}

TEST_F(CliMpi, ASigintToRankZeroStopsCleanlyAndItsHintResumesUnderMpirun) {
  const std::string file = write_sleepy_job();
  RankSignal shot(0, SIGINT);
  const auto stopped = mpirun_troupe({"run", file, "--progress", "never"}, signal_once_records_flow(shot));
  ASSERT_TRUE(shot.sent_at) << "rank 0 was never found under mpirun; " << stopped.err;
  EXPECT_EQ(stopped.exit_code, 130) << stopped.err;
  EXPECT_THAT(stopped.err, HasSubstr("not finished"));
  // Outside mpirun the resumed run would be refused (its pool is of kind mpi).
  EXPECT_THAT(stopped.err, HasSubstr("to continue where it stopped: mpirun -np 3 troupe run "));
  const auto before = records("sleepy.jsonl");
  EXPECT_LT(before.size(), static_cast<std::size_t>(kSleepyItems));
  for (const auto& record : before) {
    EXPECT_TRUE(record.at("ok").get<bool>()) << "a clean stop fails nothing: " << record.dump();
  }

  const auto resumed = mpirun_troupe({"run", file, "--resume", "--progress", "never"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  expect_every_sleepy_key_once_ok();
}

TEST_F(CliMpi, RepeatedSigintsToRankZeroInterruptTheItemsRunningOnTheRanks) {
  {
    std::ofstream items(dir_ / "items.jsonl");
    for (int i = 0; i < 8; ++i) {
      items << "20000\n";  // ms: far past the bound below, so only an interrupt ends them in time
    }
  }
  const std::string file = write_config(kMpiPool, R"(  - name: endless
    pool: cluster
    task: testing.sleep
    chunk_size: 1
    inputs: {jsonl: items.jsonl}
    output: endless.jsonl
)");
  // Once both serving ranks have their two workers, SIGINT rank 0 every
  // 200 ms until it is gone: a second signal must interrupt, not wait.
  std::map<pid_t, std::vector<pid_t>> workers;  // per serving rank
  std::optional<std::chrono::steady_clock::time_point> first_signal;
  std::chrono::steady_clock::time_point last_signal;
  int signals = 0;
  const auto stopped = mpirun_troupe({"run", file, "--progress", "never"}, [&](pid_t mpirun) {
    const auto now = std::chrono::steady_clock::now();
    for (const pid_t rank : children_of(mpirun)) {
      const auto number = mpi_rank_of(rank);
      if (!first_signal && number.value_or(0) != 0) {
        workers[rank] = children_of(rank);
      }
      const bool ready =
          workers.size() == 2 && workers.begin()->second.size() == 2 && workers.rbegin()->second.size() == 2;
      if (number == 0 && ready && (!first_signal || now - last_signal > 200ms)) {
        ASSERT_EQ(kill(rank, SIGINT), 0);
        first_signal = first_signal.value_or(now);
        last_signal = now;
        ++signals;
      }
    }
  });
  ASSERT_TRUE(first_signal) << "the serving ranks' workers were never seen; " << stopped.err;
  EXPECT_EQ(stopped.exit_code, 130) << stopped.err;
  EXPECT_GE(signals, 2);
  EXPECT_LT(std::chrono::steady_clock::now() - *first_signal, 15s) << stopped.err;
  EXPECT_THAT(stopped.err, HasSubstr("job 'endless': 0 ok"));
  EXPECT_THAT(stopped.err, HasSubstr("not finished"));
  EXPECT_THAT(stopped.err, HasSubstr("mpirun -np 3 troupe run "));
  for (const auto& [rank, its_workers] : workers) {
    expect_ended(its_workers, "a worker of rank pid " + std::to_string(rank));
  }
}

TEST_F(CliMpi, AJobOnAnMpiPoolOutsideMpirunExitsTwoNamingThePoolAndMpirun) {
  const std::string file = write_config(kMpiPool, R"(  - name: doubled
    pool: cluster
    task: testing.double
    inputs: {range: [0, 10]}
)");
  const auto r = run_troupe({"run", file, "--progress", "never"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("pool 'cluster' is of kind mpi"));
  EXPECT_THAT(r.err, HasSubstr("mpirun -np 3 troupe run"));
  EXPECT_FALSE(fs::exists(dir_ / "out/doubled.jsonl"));
}

// A job on the mpi pool and one on a process pool beside it.
constexpr const char* kRemoteAndHereJobs = R"(  - name: remote
    pool: cluster
    task: testing.double
    inputs: {range: [0, 10]}
  - name: here
    pool: cpu
    task: testing.double
    inputs: {range: [0, 100]}
    output: here.jsonl
)";

TEST_F(CliMpi, AJobOnAProcessPoolRunsWithoutMpirunBesideAnMpiPool) {
  const std::string file =
      write_config(std::string(kMpiPool) + "  cpu: {kind: process, workers: 2}\n", kRemoteAndHereJobs);
  const auto r = run_troupe({"run", file, "--job", "here", "--progress", "never"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("job 'here': 100 ok, 0 failed"));
  const auto here = records("here.jsonl");
  EXPECT_EQ(here.size(), 100u);
  for (const auto& record : here) {
    EXPECT_EQ(record.at("value").get<std::int64_t>(), 2 * record.at("key").get<std::int64_t>());
  }
  EXPECT_FALSE(fs::exists(dir_ / "out/remote.jsonl"));
}

TEST_F(CliMpi, AJobOnAProcessPoolRunsUnderMpirunBesideAnMpiPoolItDoesNotUse) {
  // Ranks 1 and 2 serve `cluster`, which rank 0 never opens: they must still end.
  const std::string file =
      write_config(std::string(kMpiPool) + "  cpu: {kind: process, workers: 2}\n", kRemoteAndHereJobs);
  const auto r = mpirun_troupe({"run", file, "--job", "here", "--progress", "never"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_of(r.err, "job 'here': 100 ok, 0 failed"), 1u) << r.err;
  EXPECT_EQ(records("here.jsonl").size(), 100u);
  EXPECT_FALSE(fs::exists(dir_ / "out/remote.jsonl"));
}

TEST_F(CliMpi, AnMpiPoolOnOneRankFailsItsJobSayingToStartMoreRanks) {
  const std::string file = write_config(kMpiPool, R"(  - name: doubled
    pool: cluster
    task: testing.double
    inputs: {range: [0, 10]}
)");
  const auto r =
      run_program(TROUPE_MPIEXEC,
                  {"-np", "1", troupe::test::binary_path("troupe").string(), "run", file, "--progress", "never"}, 90s);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("one rank, so no rank serves the pool"));
  EXPECT_THAT(r.err, HasSubstr("mpirun -np N, N >= 2"));
}

TEST_F(CliMpi, ALocalPoolThatCannotStartOnTheRanksEndsTheRunNamingEachRank) {
  const std::string file = write_config(R"(  cluster:
    kind: mpi
    local: {kind: process, workers: 2, initializer: {task: testing.crash_init}}
)",
                                        R"(  - name: doubled
    pool: cluster
    task: testing.double
    inputs: {range: [0, 10]}
)");
  const auto r = mpirun_troupe({"run", file, "--progress", "never"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("MpiPool 'cluster' did not start"));
  EXPECT_THAT(r.err, HasSubstr("  rank 1 ("));
  EXPECT_THAT(r.err, HasSubstr("  rank 2 ("));
  EXPECT_THAT(r.err, HasSubstr("killed by SIGABRT"));
  EXPECT_EQ(count_of(r.err, "did not start"), 1u) << r.err;
}

TEST_F(CliMpi, AnUnreadableConfigUnderMpirunIsReportedOnce) {
  const std::string file = write_config(std::string(kMpiPool) + "    frames_per_wroker: 2\n", R"(  - name: doubled
    pool: cluster
    task: testing.double
    inputs: {range: [0, 10]}
)");
  const auto r = mpirun_troupe({"run", file, "--progress", "never"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(count_of(r.err, "unknown key 'frames_per_wroker'"), 1u) << r.err;
  EXPECT_EQ(count_of(r.err, "troupe: error: 1 problem in the configuration"), 1u) << r.err;
}

// Every rank reads the file itself (here each is handed its own, as on hosts
// whose copies differ). Ranks 1 and 2 returned at once when theirs did not
// load, before MPI started: mpirun could end the job before rank 0 said why.
TEST_F(CliMpi, AFileThatLoadsOnRankZeroOnlyNamesTheRanksWhereItDidNot) {
  const std::string jobs = R"(  - name: doubled
    pool: cluster
    task: testing.double
    inputs: {range: [0, 10]}
)";
  const std::string good = write_config(kMpiPool, jobs, "good.yaml");
  const std::string bad = write_config(std::string(kMpiPool) + "    frames_per_wroker: 2\n", jobs, "bad.yaml");
  const std::string troupe = troupe::test::binary_path("troupe").string();
  const auto mpmd = [&](const std::string& first, const std::string& rest) {
    return run_program(TROUPE_MPIEXEC,
                       {"--oversubscribe", "-np", "1", troupe, "run", first, "--progress", "never", ":", "-np", "2",
                        troupe, "run", rest, "--progress", "never"},
                       90s);
  };
  const auto r = mpmd(good, bad);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr(good + " did not load on ranks 1, 2 (each says why)")) << r.err;
  EXPECT_THAT(r.err, HasSubstr("troupe: error: on rank 1 (")) << r.err;
  EXPECT_THAT(r.err, HasSubstr("troupe: error: on rank 2 (")) << r.err;
  EXPECT_EQ(count_of(r.err, "unknown key 'frames_per_wroker'"), 2u) << r.err;
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 2) << "only the two files";

  // Rank 0's own error is said once, by rank 0, whatever the others read.
  const auto s = mpmd(bad, good);
  EXPECT_EQ(s.exit_code, 2) << s.err;
  EXPECT_EQ(count_of(s.err, "unknown key 'frames_per_wroker'"), 1u) << s.err;
  EXPECT_THAT(s.err, ::testing::Not(HasSubstr("on rank"))) << s.err;
}

TEST_F(CliMpi, AConfigThatFailsItsChecksUnderMpirunIsReportedOnceAndEndsTheRun) {
  // It loads (every rank starts MPI and ranks 1, 2 serve); only rank 0's
  // check finds the task missing from the plugin, and the run still ends.
  const std::string file = write_config(kMpiPool, R"(  - name: doubled
    pool: cluster
    task: testing.doubel
    inputs: {range: [0, 10]}
)");
  const auto r = mpirun_troupe({"run", file, "--progress", "never"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(count_of(r.err, "no task 'testing.doubel'"), 1u) << r.err;
  EXPECT_EQ(count_of(r.err, "troupe: error: 1 problem in the configuration"), 1u) << r.err;
}

}  // namespace
