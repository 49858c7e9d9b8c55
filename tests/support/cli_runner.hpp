// Runs the troupe command (or any program, e.g. mpirun) as a user would,
// capturing its output; a run that outlives `limit` is killed, so a hang
// fails the test instead.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/paths.hpp"

extern char** environ;

namespace troupe::test {

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string read_whole(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `program args...` with stdin from /dev/null, capturing its output.
// `watch`, when set, is called with the child's pid every few milliseconds
// while it runs (to signal it, or a process it started). A run that
// outlives `limit` is killed and reported in `err`.
inline CliResult run_program(const std::string& program, const std::vector<std::string>& args,
                             std::chrono::seconds limit = std::chrono::seconds(60),
                             const std::function<void(pid_t)>& watch = nullptr) {
  static int counter = 0;
  const std::string base =
      ::testing::TempDir() + "troupe-cli-config-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  const std::string out_path = base + ".out";
  const std::string err_path = base + ".err";
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const auto& a : args) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  CliResult result;
  if (rc != 0) {
    result.err = "posix_spawn " + program + " failed: " + std::strerror(rc);
    return result;
  }
  int status = 0;
  bool killed = false;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      killed = true;
      break;
    }
    if (watch) {
      watch(pid);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  result.out = read_whole(out_path);
  result.err = read_whole(err_path);
  if (killed) {
    // exit_code stays -1: no test mistakes a hang for an exit.
    result.err += "\n" + program + " ran past " + std::to_string(limit.count()) + " s and was killed";
  } else {
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  return result;
}

inline CliResult run_troupe(const std::vector<std::string>& args,
                            std::chrono::seconds limit = std::chrono::seconds(60)) {
  return run_program(binary_path("troupe").string(), args, limit);
}

}  // namespace troupe::test
