#define BOOST_DLL_USE_STD_FS
#include "process/spawn.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/dll/runtime_symbol_info.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "process/worker_page.hpp"
#include "troupe/sdk/errors.hpp"

extern char** environ;

namespace troupe::detail::process {

namespace {

std::string errno_text(int error) {
  return std::strerror(error);
}

class FileActions {
 public:
  FileActions() { posix_spawn_file_actions_init(&actions_); }
  ~FileActions() { posix_spawn_file_actions_destroy(&actions_); }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
  posix_spawn_file_actions_t* get() noexcept { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

class SpawnAttributes {
 public:
  SpawnAttributes() { posix_spawnattr_init(&attributes_); }
  ~SpawnAttributes() { posix_spawnattr_destroy(&attributes_); }
  SpawnAttributes(const SpawnAttributes&) = delete;
  SpawnAttributes& operator=(const SpawnAttributes&) = delete;
  posix_spawnattr_t* get() noexcept { return &attributes_; }

 private:
  posix_spawnattr_t attributes_;
};

class Fd {
 public:
  explicit Fd(int fd = -1) noexcept : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&&) = delete;
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd) noexcept {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = fd;
  }

 private:
  int fd_;
};

}  // namespace

static_assert(worker_page_fd == worker_channel_fd + 1 && first_inherited_fd == worker_page_fd + 1,
              "the child's descriptors are dup2'd onto consecutive numbers from the channel on");

namespace {

// The worker's shared page, mapped here too.
void* map_page(Fd& page_fd) {
  page_fd.reset(::memfd_create("troupe-worker-page", MFD_CLOEXEC));
  if (page_fd.get() < 0 || ::ftruncate(page_fd.get(), worker_page_size) != 0) {
    throw Error("cannot create a troupe-worker's shared page: " + errno_text(errno));
  }
  void* page = ::mmap(nullptr, worker_page_size, PROT_READ | PROT_WRITE, MAP_SHARED, page_fd.get(), 0);
  if (page == MAP_FAILED) {
    throw Error("cannot map a troupe-worker's shared page: " + errno_text(errno));
  }
  std::memset(page, 0, worker_page_size);
  return page;
}

// Copies of the descriptors the child gets, all at or above `floor`, so
// the dup2s onto 3, 4, 5... can neither clobber one another nor be no-ops
// that keep FD_CLOEXEC. The caller's own descriptors stay untouched.
std::vector<Fd> lifted_copies(const std::vector<int>& fds, int floor) {
  std::vector<Fd> copies;
  copies.reserve(fds.size());
  for (const int fd : fds) {
    const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, floor);
    if (copy < 0) {
      throw Error("cannot pass descriptor " + std::to_string(fd) + " to a troupe-worker: " + errno_text(errno));
    }
    copies.emplace_back(copy);
  }
  return copies;
}

void set_default_signals(SpawnAttributes& attributes) {
  sigset_t empty;
  sigemptyset(&empty);
  sigset_t all_default;
  sigfillset(&all_default);
  sigdelset(&all_default, SIGKILL);
  sigdelset(&all_default, SIGSTOP);
  posix_spawnattr_setsigmask(attributes.get(), &empty);
  posix_spawnattr_setsigdefault(attributes.get(), &all_default);
  // Its own process group: a terminal's Ctrl-C reaches the host alone.
  posix_spawnattr_setpgroup(attributes.get(), 0);
  posix_spawnattr_setflags(attributes.get(), POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}

std::vector<std::string> worker_arguments(const std::string& exe, const std::vector<InheritedFd>& inherit) {
  std::vector<std::string> arguments = {exe,
                                        "--channel",
                                        std::to_string(worker_channel_fd),
                                        "--page",
                                        std::to_string(worker_page_fd),
                                        "--parent",
                                        std::to_string(::getpid())};
  for (std::size_t i = 0; i < inherit.size(); ++i) {
    arguments.push_back("--descriptor");
    arguments.push_back(std::to_string(inherit[i].id) + ":" + std::to_string(first_inherited_fd + static_cast<int>(i)));
  }
  return arguments;
}

// The host's environment with `env` added (and overriding).
std::vector<std::string> worker_environment(const std::map<std::string, std::string>& env) {
  std::vector<std::string> environment;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    const auto eq = entry.find('=');
    if (eq != std::string_view::npos && env.count(std::string(entry.substr(0, eq))) != 0) {
      continue;
    }
    environment.emplace_back(entry);
  }
  for (const auto& [name, value] : env) {
    environment.push_back(name + "=" + value);
  }
  return environment;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) {
    out.push_back(s.data());
  }
  out.push_back(nullptr);
  return out;
}

pid_t start(const std::string& exe, FileActions& actions, std::vector<std::string> arguments,
            std::vector<std::string> environment) {
  SpawnAttributes attributes;
  set_default_signals(attributes);
  auto argv = pointers(arguments);
  auto envp = pointers(environment);
  pid_t pid = -1;
  const int error = ::posix_spawn(&pid, exe.c_str(), actions.get(), attributes.get(), argv.data(), envp.data());
  if (error != 0) {
    throw Error("cannot start the process-pool worker '" + exe + "': " + errno_text(error) +
                "; point ProcessPoolOptions::worker_executable or $TROUPE_WORKER at a troupe-worker built with "
                "this libtroupe");
  }
  return pid;
}

int open_pidfd(pid_t pid) {
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    const int open_error = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    throw Error("cannot watch troupe-worker pid " + std::to_string(pid) + " (pidfd_open: " + errno_text(open_error) +
                "); the process pool needs Linux 5.3 or newer");
  }
  return pidfd;
}

}  // namespace

SpawnedWorker spawn_worker(const std::filesystem::path& executable, const std::map<std::string, std::string>& env,
                           const std::vector<InheritedFd>& inherit) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    throw Error("cannot create a socketpair for a troupe-worker: " + errno_text(errno));
  }
  Fd host(pair[0]);
  Fd child(pair[1]);
  Fd page_fd;
  void* page = map_page(page_fd);
  try {
    std::vector<int> sources = {child.get(), page_fd.get()};
    for (const auto& fd : inherit) {
      sources.push_back(fd.fd);
    }
    const int floor = std::max(10, first_inherited_fd + static_cast<int>(inherit.size()));
    const std::vector<Fd> lifted = lifted_copies(sources, floor);
    const int flags = ::fcntl(host.get(), F_GETFL);
    if (flags < 0 || ::fcntl(host.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
      throw Error("cannot make a troupe-worker channel non-blocking: " + errno_text(errno));
    }
    FileActions actions;
    for (std::size_t i = 0; i < lifted.size(); ++i) {  // 3: channel, 4: page, 5...: inherited
      posix_spawn_file_actions_adddup2(actions.get(), lifted[i].get(), worker_channel_fd + static_cast<int>(i));
    }
    // Nothing else of the host leaks into the worker, CLOEXEC or not.
    posix_spawn_file_actions_addclosefrom_np(actions.get(), worker_channel_fd + static_cast<int>(lifted.size()));
    const std::string exe = executable.string();
    const pid_t pid = start(exe, actions, worker_arguments(exe, inherit), worker_environment(env));
    SpawnedWorker spawned;
    spawned.pid = pid;
    spawned.pidfd = open_pidfd(pid);
    spawned.page = page;
    spawned.channel = host.release();
    return spawned;
  } catch (...) {
    ::munmap(page, worker_page_size);
    throw;
  }
}

namespace {

bool is_executable(const std::filesystem::path& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec) && ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

std::filesystem::path find_worker_executable(const std::filesystem::path& configured) {
  if (!configured.empty()) {
    if (!is_executable(configured)) {
      throw Error("the configured troupe-worker '" + configured.string() + "' is not an executable file");
    }
    return configured;
  }
  if (const char* from_env = std::getenv("TROUPE_WORKER"); from_env != nullptr && *from_env != '\0') {
    if (!is_executable(from_env)) {
      throw Error(std::string("$TROUPE_WORKER names '") + from_env + "', which is not an executable file");
    }
    return from_env;
  }
  std::vector<std::filesystem::path> candidates;
  std::error_code ec;
  const std::filesystem::path library = boost::dll::this_line_location(ec);
  if (!ec) {
    const auto libdir = library.parent_path();
    candidates.push_back(libdir.parent_path() / "bin" / "troupe-worker");
    // Installed: strip CMAKE_INSTALL_LIBDIR (lib, lib64, lib/x86_64-linux-gnu) to find the prefix.
    std::filesystem::path prefix = libdir;
    const std::filesystem::path relative_libdir(TROUPE_INSTALL_LIBDIR);
    if (relative_libdir.is_relative()) {
      for (auto it = relative_libdir.begin(); it != relative_libdir.end(); ++it) {
        prefix = prefix.parent_path();
      }
    }
    candidates.push_back(prefix / TROUPE_INSTALL_LIBEXECDIR / "troupe" / "troupe-worker");
    candidates.push_back(libdir.parent_path() / "libexec" / "troupe" / "troupe-worker");
  }
  std::string looked;
  for (const auto& candidate : candidates) {
    if (is_executable(candidate)) {
      return candidate;
    }
    looked += (looked.empty() ? "" : ", ") + candidate.string();
  }
  throw Error("cannot find troupe-worker (looked in: " + (looked.empty() ? std::string("nowhere") : looked) +
              "); set ProcessPoolOptions::worker_executable or $TROUPE_WORKER");
}

}  // namespace troupe::detail::process
