// `troupe run` interrupted at random moments, then `--resume`: after
// SIGKILLs or SIGINTs, however many, the final output holds every key
// exactly once, all ok; a second SIGINT kills the items running.
// tests/scripts/resume_chaos.sh runs the SIGKILL test 10 times over.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/paths.hpp"
#include "troupe/sdk/value.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using troupe::test::binary_path;
using troupe::test::plugin_path;

constexpr int kItems = 1200;

// A signal sent `after` the shot before it (the first: after the start) and
// after `ready(pid)` first held, when set.
struct Shot {
  std::chrono::milliseconds after;
  int signal;
  std::function<bool(pid_t)> ready = nullptr;
};

struct Exit {
  int code = -1;  // 128 + signal when it was killed
  std::chrono::milliseconds last_shot_to_exit{};
};

// The live children of `pid` (all its threads'), from /proc.
int count_children(pid_t pid) {
  int count = 0;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = opendir(tasks.c_str());
  if (dir == nullptr) {
    return 0;
  }
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') {
      continue;
    }
    std::ifstream children(tasks + "/" + entry->d_name + "/children");
    for (pid_t child = 0; children >> child;) {
      ++count;
    }
  }
  closedir(dir);
  return count;
}

// Runs `troupe args...` with stdout and stderr into `log`, sending `shots`
// in order. A run past 120 s is killed and fails.
Exit run_troupe(const std::vector<std::string>& args, const fs::path& log, std::vector<Shot> shots = {}) {
  const std::string binary = binary_path("troupe").string();
  std::vector<char*> argv{const_cast<char*>(binary.c_str())};
  for (const auto& a : args) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    ADD_FAILURE() << "posix_spawn " << binary << ": " << rc;
    return {};
  }
  const auto start = std::chrono::steady_clock::now();
  auto last_shot = start;
  std::optional<std::chrono::steady_clock::time_point> ready_since;
  std::size_t next = 0;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    const auto now = std::chrono::steady_clock::now();
    if (now - start > 120s) {
      ADD_FAILURE() << "troupe ran past 120 s";
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    if (next < shots.size() && !ready_since && (!shots[next].ready || shots[next].ready(pid))) {
      ready_since = now;
    }
    if (next < shots.size() && ready_since && now - std::max(last_shot, *ready_since) >= shots[next].after) {
      kill(pid, shots[next].signal);
      last_shot = now;
      ready_since.reset();
      ++next;
    }
    std::this_thread::sleep_for(1ms);
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - last_shot)};
}

// A scratch folder with a job over `items` (each the milliseconds
// testing.sleep sleeps) on a process pool of two workers.
class CliResume : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("troupe-resume-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_job(int items, int sleep_ms, int chunk_size = 4) const {
    std::ofstream input(dir_ / "items.jsonl");
    for (int i = 0; i < items; ++i) {
      input << sleep_ms << "\n";
    }
    std::ofstream(dir_ / "pipeline.yaml") << "version: 1\n"
                                          << "plugins:\n  - path: " << plugin_path("testing").string() << "\n"
                                          << "pools:\n  cpu: {kind: process, workers: 2}\n"
                                          << "jobs:\n"
                                          << "  - name: sleepy\n    pool: cpu\n    task: testing.sleep\n"
                                          << "    chunk_size: " << chunk_size << "\n"
                                          << "    inputs: {jsonl: items.jsonl}\n    output: out.jsonl\n";
    return (dir_ / "pipeline.yaml").string();
  }

  // How often each key is recorded; every record must be ok JSON.
  std::map<std::int64_t, int> recorded() const {
    std::map<std::int64_t, int> seen;
    std::ifstream output(dir_ / "out.jsonl");
    int line_no = 0;
    for (std::string line; std::getline(output, line);) {
      ++line_no;
      const auto record = troupe::Value::parse(line, nullptr, /*allow_exceptions=*/false);
      EXPECT_FALSE(record.is_discarded()) << "out.jsonl:" << line_no << " is not JSON: " << line;
      if (record.is_discarded()) {
        continue;
      }
      EXPECT_TRUE(record.at("ok").get<bool>()) << "out.jsonl:" << line_no << ": " << line;
      ++seen[record.at("key").get<std::int64_t>()];
    }
    return seen;
  }

  void expect_every_key_once(int stops) const {
    const auto seen = recorded();
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(kItems)) << "after " << stops << " stops";
    for (const auto& [key, count] : seen) {
      EXPECT_EQ(count, 1) << "key " << key << " after " << stops << " stops";
      EXPECT_GE(key, 1);
      EXPECT_LE(key, kItems);
    }
  }

  std::string read_log() const {
    std::ostringstream text;
    text << std::ifstream(log()).rdbuf();
    return text.str();
  }
  fs::path log() const { return dir_ / "troupe.log"; }

  fs::path dir_;
};

TEST_F(CliResume, RandomKillsThenResumeRecordEveryKeyExactlyOnce) {
  // 1200 sleeps of 1 ms on two workers outlast the first kill (at most 500 ms).
  const std::string config = write_job(kItems, 1);
  std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> moment_ms(5, 500);
  auto kill_at_random = [&] {
    return std::vector<Shot>{{std::chrono::milliseconds(moment_ms(random)), SIGKILL}};
  };

  int kills = 0;
  Exit last = run_troupe({"run", config, "--progress", "never"}, log(), kill_at_random());
  for (int round = 0; round < 40 && last.code == 128 + SIGKILL; ++round) {
    ++kills;
    // Half the resumes are killed again; the last one runs to its end.
    const bool again = round < 6 && random() % 2 == 0;
    last = run_troupe({"run", config, "--resume", "--progress", "never"}, log(),
                      again ? kill_at_random() : std::vector<Shot>{});
  }
  ASSERT_GE(kills, 1) << "the first run ended before it was killed; nothing was resumed";
  ASSERT_EQ(last.code, 0) << "after " << kills << " kills; log:\n" << read_log();
  expect_every_key_once(kills);
  RecordProperty("kills", kills);
}

TEST_F(CliResume, SigintsAtRandomMomentsThenResumeRecordEveryKeyExactlyOnce) {
  const std::string config = write_job(kItems, 1);
  std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> moment_ms(5, 500);
  auto interrupt_at_random = [&] {
    return std::vector<Shot>{{std::chrono::milliseconds(moment_ms(random)), SIGINT}};
  };

  // 130 either way: the command's own exit after a clean stop, or SIGINT's
  // default action when it came before the command took it (128 + 2). The
  // first SIGINT comes while the job runs (its output exists: the run holds
  // its interrupt scope), so at least one stop is a clean one; the resumes'
  // come at any moment, also while the configuration is read.
  const fs::path output = dir_ / "out.jsonl";
  std::uniform_int_distribution<int> into_the_job_ms(0, 300);
  int stops = 0;
  Exit last = run_troupe({"run", config, "--progress", "never"}, log(),
                         {{std::chrono::milliseconds(into_the_job_ms(random)), SIGINT, [&](pid_t) {
                             return fs::exists(output);
                           }}});
  for (int round = 0; round < 40 && last.code == 130; ++round) {
    ++stops;
    const bool again = round < 6 && random() % 2 == 0;
    last = run_troupe({"run", config, "--resume", "--progress", "never"}, log(),
                      again ? interrupt_at_random() : std::vector<Shot>{});
  }
  ASSERT_GE(stops, 1) << "the first run ended before its SIGINT; nothing was resumed";
  ASSERT_EQ(last.code, 0) << "after " << stops << " interrupts; log:\n" << read_log();
  EXPECT_THAT(read_log(), ::testing::HasSubstr("--resume"));  // a clean stop says how to go on
  expect_every_key_once(stops);
  RecordProperty("interrupts", stops);
}

TEST_F(CliResume, AfterASecondSigintNoQueuedItemRunsOnARespawnedWorker) {
  // Three items of 30 s, one per chunk, on two workers: two run, the third
  // waits (queued, or sent to a worker and revoked at the first SIGINT).
  // Once the second SIGINT killed the two workers, nothing may start it on
  // a fresh one.
  const std::string config = write_job(3, 30000, /*chunk_size=*/1);
  const fs::path output = dir_ / "out.jsonl";
  auto running = [&](pid_t pid) {
    return fs::exists(output) && count_children(pid) >= 2;
  };
  const Exit exit =
      run_troupe({"run", config, "--progress", "never"}, log(), {{300ms, SIGINT, running}, {300ms, SIGINT}});
  EXPECT_EQ(exit.code, 130) << read_log();
  EXPECT_LT(exit.last_shot_to_exit, 20s) << "an item ran after the second SIGINT";
  EXPECT_TRUE(recorded().empty()) << read_log();
}

TEST_F(CliResume, ASecondSigintKillsTheRunningItemsWhichAreNotRecorded) {
  // Four items of 30 s in one chunk: the first SIGINT alone would wait for
  // the one running. It is sent once the run holds its interrupt scope (the
  // output exists) and the pool's worker is up, the second a little later.
  const std::string config = write_job(4, 30000);
  const fs::path output = dir_ / "out.jsonl";
  auto running = [&](pid_t pid) {
    return fs::exists(output) && count_children(pid) >= 1;
  };
  const Exit exit =
      run_troupe({"run", config, "--progress", "never"}, log(), {{300ms, SIGINT, running}, {100ms, SIGINT}});
  EXPECT_EQ(exit.code, 130) << read_log();
  EXPECT_LT(exit.last_shot_to_exit, 20s) << "the second SIGINT did not end the running items";
  EXPECT_TRUE(recorded().empty()) << "an item killed in the middle was recorded";
  EXPECT_THAT(read_log(), ::testing::HasSubstr("--resume"));
}

// The temporary files --retry-failed rewrites `out.jsonl` through, in `dir`.
std::vector<fs::path> keep_ok_temporaries(const fs::path& dir) {
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().starts_with(".out.jsonl.keep-ok-")) {
      found.push_back(entry.path());
    }
  }
  return found;
}

std::string read_bytes(const fs::path& path) {
  std::ostringstream text;
  text << std::ifstream(path, std::ios::binary).rdbuf();
  return text.str();
}

TEST_F(CliResume, ARetryFailedKilledMidRewriteLeavesTheOutputWholeAndTheNextRunOfAnyModeRemovesItsTemporary) {
  // An output of 50,000 records (keys 0-9 failed) takes --retry-failed a
  // while to copy; the job itself covers keys 0-999. The run is stopped
  // once its temporary exists, checked, then SIGKILLed: what a crash
  // mid-rewrite leaves.
  constexpr int kRecords = 50'000;
  {
    std::ofstream output(dir_ / "out.jsonl", std::ios::binary);
    for (int key = 0; key < kRecords; ++key) {
      output << (key < 10 ? R"({"key":)" + std::to_string(key) +
                                R"(,"ok":false,"error":{"type":"E","message":"m","causes":[],"traceback":""},)"
                                R"("attempts":1,"worker":0,"ms":1})"
                          : R"({"key":)" + std::to_string(key) + R"(,"ok":true,"value":)" + std::to_string(2 * key) +
                                R"(,"attempts":1,"worker":0,"ms":1})")
             << "\n";
    }
  }
  const std::string original = read_bytes(dir_ / "out.jsonl");
  std::ofstream(dir_ / "pipeline.yaml") << "version: 1\n"
                                        << "plugins:\n  - path: " << plugin_path("testing").string() << "\n"
                                        << "pools:\n  cpu: {kind: process, workers: 2}\n"
                                        << "jobs:\n"
                                        << "  - name: doubles\n    pool: cpu\n    task: testing.double\n"
                                        << "    inputs: {range: [0, 1000]}\n    output: out.jsonl\n";
  const std::string config = (dir_ / "pipeline.yaml").string();
  const auto kill_mid_rewrite = [&] {
    const std::string before = read_bytes(dir_ / "out.jsonl");
    bool seen_mid_rewrite = false;
    const Exit exit = run_troupe({"run", config, "--retry-failed", "--progress", "never"}, log(),
                                 {{0ms, SIGSTOP,
                                   [&](pid_t) {
                                     return !keep_ok_temporaries(dir_).empty();
                                   }},
                                  {0ms, SIGKILL, [&](pid_t) {
                                     seen_mid_rewrite = keep_ok_temporaries(dir_).size() == 1 &&
                                                        read_bytes(dir_ / "out.jsonl") == before;
                                     return true;
                                   }}});
    ASSERT_EQ(exit.code, 128 + SIGKILL) << "the rewrite ended before it was stopped; log:\n" << read_log();
    ASSERT_TRUE(seen_mid_rewrite) << "stopped with its temporary written and the output untouched";
    EXPECT_EQ(keep_ok_temporaries(dir_).size(), 1u) << "SIGKILL leaves the temporary";
    EXPECT_EQ(read_bytes(dir_ / "out.jsonl"), before) << "a crash mid-rewrite must not touch the output";
  };

  // --resume: the stale temporary goes; the output is as it was (every key of the job recorded before).
  kill_mid_rewrite();
  Exit exit = run_troupe({"run", config, "--resume", "--progress", "never"}, log());
  EXPECT_EQ(exit.code, 0) << read_log();
  EXPECT_TRUE(keep_ok_temporaries(dir_).empty()) << "--resume left the stale temporary";
  EXPECT_EQ(read_bytes(dir_ / "out.jsonl"), original);

  // --retry-failed: the stale temporary goes, its own too; every ok record kept, keys 0-9 run again.
  kill_mid_rewrite();
  exit = run_troupe({"run", config, "--retry-failed", "--progress", "never"}, log());
  EXPECT_EQ(exit.code, 0) << read_log();
  EXPECT_TRUE(keep_ok_temporaries(dir_).empty()) << "--retry-failed left the stale temporary";
  {
    std::ifstream output(dir_ / "out.jsonl");
    std::vector<int> ok_times(kRecords, 0);
    int lines = 0;
    for (std::string line; std::getline(output, line); ++lines) {
      const auto record = troupe::Value::parse(line);
      ASSERT_TRUE(record.at("ok").get<bool>()) << line;
      ++ok_times.at(record.at("key").get<std::size_t>());
    }
    EXPECT_EQ(lines, kRecords);
    EXPECT_EQ(std::count(ok_times.begin(), ok_times.end(), 1), kRecords) << "every key ok exactly once";
  }

  // --overwrite: the stale temporary goes with the output it was made from.
  kill_mid_rewrite();
  exit = run_troupe({"run", config, "--overwrite", "--progress", "never"}, log());
  EXPECT_EQ(exit.code, 0) << read_log();
  EXPECT_TRUE(keep_ok_temporaries(dir_).empty()) << "--overwrite left the stale temporary";
}

}  // namespace
