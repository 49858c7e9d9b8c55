// Workers never outlive their host: a host process SIGKILLed, or stopped by
// a terminal's Ctrl-C, while its workers run tasks that never return leaves
// no worker behind.
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

struct Host {
  pid_t pid = -1;
  std::vector<pid_t> workers;
};

// Starts troupe-test-pool-host (in a process group of its own, as a shell
// starts a foreground job) and reads the pids of its two busy workers.
Host start_host() {
  Host host;
  int out[2];
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);
  const std::string binary = std::string(TROUPE_BUILD_DIR) + "/tests/troupe-test-pool-host";
  const std::string plugin = test::plugin_path("testing").string();
  const std::string worker_env = "TROUPE_WORKER=" + test::binary_path("troupe-worker").string();
  std::vector<char*> argv = {const_cast<char*>(binary.c_str()), const_cast<char*>(plugin.c_str()), nullptr};
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    envp.push_back(*e);
  }
  envp.push_back(const_cast<char*>(worker_env.c_str()));
  envp.push_back(nullptr);
  EXPECT_EQ(::posix_spawn(&host.pid, binary.c_str(), &actions, &attributes, argv.data(), envp.data()), 0);
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  FILE* lines = ::fdopen(out[0], "r");
  EXPECT_NE(lines, nullptr);
  if (lines == nullptr) {
    return host;
  }
  char buffer[64];
  while (std::fgets(buffer, sizeof buffer, lines) != nullptr) {
    const std::string line(buffer);
    if (line.rfind("ready", 0) == 0) {
      break;
    }
    host.workers.push_back(static_cast<pid_t>(std::stol(line)));
  }
  std::fclose(lines);
  return host;
}

void expect_no_worker_survives(const std::vector<pid_t>& workers) {
  // A generous bound: the parent-death signal is immediate.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  for (const pid_t pid : workers) {
    while (running(pid) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    EXPECT_FALSE(running(pid)) << "worker " << pid << " outlived its host";
  }
}

TEST(ProcessPoolHostDeath, SigkilledHostLeavesNoWorker) {
  const Host host = start_host();
  ASSERT_EQ(host.workers.size(), 2u);
  for (const pid_t pid : host.workers) {
    EXPECT_TRUE(running(pid));
  }
  ASSERT_EQ(::kill(host.pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(host.pid, &status, 0), host.pid);
  EXPECT_TRUE(WIFSIGNALED(status));
  expect_no_worker_survives(host.workers);
}

TEST(ProcessPoolHostDeath, CtrlCReachesTheHostAloneAndLeavesNoWorker) {
  const Host host = start_host();
  ASSERT_EQ(host.workers.size(), 2u);
  // Workers sit in process groups of their own: the terminal's SIGINT to the
  // host's foreground group does not reach them.
  for (const pid_t pid : host.workers) {
    EXPECT_NE(::getpgid(pid), host.pid);
  }
  ASSERT_EQ(::kill(-host.pid, SIGINT), 0);  // what Ctrl-C sends: the whole foreground group
  int status = 0;
  ASSERT_EQ(::waitpid(host.pid, &status, 0), host.pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGINT);
  expect_no_worker_survives(host.workers);
}

}  // namespace
}  // namespace troupe
