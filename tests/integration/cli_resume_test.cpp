// `troupe run --resume` after SIGKILLs at random moments: however often the
// run is killed, the final output holds every key exactly once, all ok.
// tests/scripts/resume_chaos.sh runs this test 10 times over.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/paths.hpp"
#include "troupe/sdk/value.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using troupe::test::binary_path;
using troupe::test::plugin_path;

constexpr int kItems = 1200;

struct Exit {
  int code = -1;  // 128 + signal when it was killed
};

// Runs `troupe args...` with stdout and stderr into `log`; kills it with
// SIGKILL after `kill_after` when set. A run past 120 s is killed and fails.
Exit run_troupe(const std::vector<std::string>& args, const fs::path& log,
                std::optional<std::chrono::milliseconds> kill_after) {
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
  int status = 0;
  bool killed = false;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    const auto ran = std::chrono::steady_clock::now() - start;
    if ((kill_after && ran >= *kill_after && !killed) || ran > std::chrono::seconds(120)) {
      EXPECT_LT(ran, std::chrono::seconds(120)) << "troupe ran past 120 s";
      kill(pid, SIGKILL);
      killed = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)};
}

TEST(CliResume, RandomKillsThenResumeRecordEveryKeyExactlyOnce) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("troupe-resume-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    // Each item is 1: the task sleeps 1 ms, so a run takes long enough to be
    // killed in the middle.
    std::ofstream input(dir / "items.jsonl");
    for (int i = 0; i < kItems; ++i) {
      input << "1\n";
    }
    std::ofstream(dir / "pipeline.yaml") << "version: 1\n"
                                         << "plugins:\n  - path: " << plugin_path("testing").string() << "\n"
                                         << "pools:\n  cpu: {kind: process, workers: 2}\n"
                                         << "jobs:\n"
                                         << "  - name: sleepy\n    pool: cpu\n    task: testing.sleep\n"
                                         << "    chunk_size: 4\n"
                                         << "    inputs: {jsonl: items.jsonl}\n    output: out.jsonl\n";
  }
  const std::string config = (dir / "pipeline.yaml").string();
  const fs::path log = dir / "troupe.log";
  std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> moment_ms(5, 500);

  int kills = 0;
  Exit last = run_troupe({"run", config, "--progress", "never"}, log, std::chrono::milliseconds(moment_ms(random)));
  for (int round = 0; round < 40 && last.code == 128 + SIGKILL; ++round) {
    ++kills;
    // Half the resumes are killed again; the last one runs to its end.
    std::optional<std::chrono::milliseconds> kill_after;
    if (round < 6 && random() % 2 == 0) {
      kill_after = std::chrono::milliseconds(moment_ms(random));
    }
    last = run_troupe({"run", config, "--resume", "--progress", "never"}, log, kill_after);
  }
  // 1200 sleeps of 1 ms on two workers outlast the first kill (at most 500 ms).
  ASSERT_GE(kills, 1) << "the first run ended before it was killed; nothing was resumed";
  ASSERT_EQ(last.code, 0) << "after " << kills << " kills; log:\n" << std::ifstream(log).rdbuf();

  std::map<std::int64_t, int> seen;
  std::ifstream output(dir / "out.jsonl");
  int line_no = 0;
  for (std::string line; std::getline(output, line);) {
    ++line_no;
    const auto record = troupe::Value::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(record.is_discarded()) << "out.jsonl:" << line_no << " is not JSON: " << line;
    ASSERT_TRUE(record.at("ok").get<bool>()) << "out.jsonl:" << line_no << ": " << line;
    ++seen[record.at("key").get<std::int64_t>()];
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kItems)) << "after " << kills << " kills";
  for (const auto& [key, count] : seen) {
    EXPECT_EQ(count, 1) << "key " << key << " after " << kills << " kills";
    EXPECT_GE(key, 1);
    EXPECT_LE(key, kItems);
  }
  RecordProperty("kills", kills);
  fs::remove_all(dir);
}

}  // namespace
