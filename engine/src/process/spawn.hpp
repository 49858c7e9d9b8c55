// Starting troupe-worker processes: posix_spawn (never fork of a threaded
// host), a socketpair channel on the child's fd 3, its own process group, a
// clean signal mask and dispositions, and a pidfd to watch it with.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace troupe::detail::process {

// The child's end of the channel, as the worker sees it.
inline constexpr int worker_channel_fd = 3;

struct SpawnedWorker {
  pid_t pid = -1;
  void* page = nullptr;  // the worker's WorkerPage, mapped shared (worker_page_size bytes)
  int pidfd = -1;        // O_CLOEXEC, readable when the process ends
  int channel = -1;      // the host's end: SOCK_CLOEXEC, non-blocking
};

// A descriptor the worker inherits: the host's `fd` (not consumed; the
// child gets a copy) becomes entry `id` of the worker's descriptor table.
struct InheritedFd {
  std::uint64_t id = 0;
  int fd = -1;
};
// Inherited descriptors land on fds 5, 6, ... in the child, in list order.
inline constexpr int first_inherited_fd = 5;

// Spawns `executable --channel 3 --page 4 --parent <this pid>` (plus
// `--descriptor ID:FD` per inherited descriptor) with the host's
// environment plus `env` (overriding). Throws troupe::Error naming the
// executable and what to do when it cannot start.
SpawnedWorker spawn_worker(const std::filesystem::path& executable, const std::map<std::string, std::string>& env,
                           const std::vector<InheritedFd>& inherit = {});

// The troupe-worker to run: `configured` if set, else $TROUPE_WORKER, else
// next to libtroupe (build tree: <libdir>/../bin; install:
// <prefix>/<libexecdir>/troupe). Throws troupe::Error listing where it looked.
std::filesystem::path find_worker_executable(const std::filesystem::path& configured);

}  // namespace troupe::detail::process
