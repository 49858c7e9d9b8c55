// Starting troupe-worker processes: posix_spawn (never fork of a threaded
// host), a socketpair channel on the child's fd 3, its own process group, a
// clean signal mask and dispositions, and a pidfd to watch it with.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <string>

namespace troupe::detail::process {

// The child's end of the channel, as the worker sees it.
inline constexpr int worker_channel_fd = 3;

struct SpawnedWorker {
  pid_t pid = -1;
  void* page = nullptr;  // the worker's WorkerPage, mapped shared (worker_page_size bytes)
  int pidfd = -1;        // O_CLOEXEC, readable when the process ends
  int channel = -1;      // the host's end: SOCK_CLOEXEC, non-blocking
};

// Spawns `executable --channel 3 --page 4 --parent <this pid>` with the host's
// environment plus `env` (overriding). Throws troupe::Error naming the
// executable and what to do when it cannot start.
SpawnedWorker spawn_worker(const std::filesystem::path& executable, const std::map<std::string, std::string>& env);

// The troupe-worker to run: `configured` if set, else $TROUPE_WORKER, else
// next to libtroupe (build tree: <libdir>/../bin; install:
// <prefix>/<libexecdir>/troupe). Throws troupe::Error listing where it looked.
std::filesystem::path find_worker_executable(const std::filesystem::path& configured);

}  // namespace troupe::detail::process
