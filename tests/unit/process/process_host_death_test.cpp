// Workers never outlive their host: a host process SIGKILLed while its
// workers run tasks that never return leaves no worker behind.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/paths.hpp"

extern char** environ;

namespace troupe {
namespace {

using namespace std::chrono_literals;

// Alive and not a zombie (a reparented zombie waits for whoever reaps orphans).
bool running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) {
    return false;
  }
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z';
}

TEST(ProcessPoolHostDeath, SigkilledHostLeavesNoWorker) {
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  const std::string host = std::string(TROUPE_BUILD_DIR) + "/tests/troupe-test-pool-host";
  const std::string plugin = test::plugin_path("testing").string();
  const std::string worker_env = "TROUPE_WORKER=" + test::binary_path("troupe-worker").string();
  std::vector<char*> argv = {const_cast<char*>(host.c_str()), const_cast<char*>(plugin.c_str()), nullptr};
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    envp.push_back(*e);
  }
  envp.push_back(const_cast<char*>(worker_env.c_str()));
  envp.push_back(nullptr);
  pid_t host_pid = -1;
  ASSERT_EQ(::posix_spawn(&host_pid, host.c_str(), &actions, nullptr, argv.data(), envp.data()), 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);

  std::vector<pid_t> workers;
  {
    FILE* lines = ::fdopen(out[0], "r");
    ASSERT_NE(lines, nullptr);
    char buffer[64];
    while (std::fgets(buffer, sizeof buffer, lines) != nullptr) {
      const std::string line(buffer);
      if (line.rfind("ready", 0) == 0) {
        break;
      }
      workers.push_back(static_cast<pid_t>(std::stol(line)));
    }
    std::fclose(lines);
  }
  ASSERT_EQ(workers.size(), 2u);
  for (const pid_t pid : workers) {
    EXPECT_TRUE(running(pid));
  }

  ASSERT_EQ(::kill(host_pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(host_pid, &status, 0), host_pid);
  EXPECT_TRUE(WIFSIGNALED(status));

  // A generous bound: the parent-death signal is immediate.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  for (const pid_t pid : workers) {
    while (running(pid) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    EXPECT_FALSE(running(pid)) << "worker " << pid << " outlived its host";
  }
}

}  // namespace
}  // namespace troupe
