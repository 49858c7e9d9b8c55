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

SpawnedWorker spawn_worker(const std::filesystem::path& executable, const std::map<std::string, std::string>& env) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    throw Error("cannot create a socketpair for a troupe-worker: " + errno_text(errno));
  }
  Fd host(pair[0]);
  Fd child(pair[1]);
  Fd page_fd(::memfd_create("troupe-worker-page", MFD_CLOEXEC));
  if (page_fd.get() < 0 || ::ftruncate(page_fd.get(), worker_page_size) != 0) {
    throw Error("cannot create a troupe-worker's shared page: " + errno_text(errno));
  }
  void* page = ::mmap(nullptr, worker_page_size, PROT_READ | PROT_WRITE, MAP_SHARED, page_fd.get(), 0);
  if (page == MAP_FAILED) {
    throw Error("cannot map a troupe-worker's shared page: " + errno_text(errno));
  }
  std::memset(page, 0, worker_page_size);
  // Lift both child ends above the fixed numbers, so dup2 onto 3 and 4 can
  // neither clobber one with the other nor be a no-op that keeps FD_CLOEXEC.
  for (Fd* fd : {&child, &page_fd}) {
    const int moved = ::fcntl(fd->get(), F_DUPFD_CLOEXEC, 10);
    if (moved < 0) {
      ::munmap(page, worker_page_size);
      throw Error("cannot move a troupe-worker descriptor: " + errno_text(errno));
    }
    fd->reset(moved);
  }
  const int flags = ::fcntl(host.get(), F_GETFL);
  if (flags < 0 || ::fcntl(host.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    throw Error("cannot make a troupe-worker channel non-blocking: " + errno_text(errno));
  }

  FileActions actions;
  posix_spawn_file_actions_adddup2(actions.get(), child.get(), worker_channel_fd);
  posix_spawn_file_actions_adddup2(actions.get(), page_fd.get(), worker_page_fd);
  // Nothing else of the host leaks into the worker, CLOEXEC or not.
  posix_spawn_file_actions_addclosefrom_np(actions.get(), worker_page_fd + 1);

  SpawnAttributes attributes;
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

  const std::string exe = executable.string();
  const std::string parent = std::to_string(::getpid());
  std::vector<std::string> arguments = {
      exe,        "--channel", std::to_string(worker_channel_fd), "--page", std::to_string(worker_page_fd),
      "--parent", parent};
  std::vector<char*> argv;
  for (auto& a : arguments) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);

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
  std::vector<char*> envp;
  for (auto& e : environment) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);

  pid_t pid = -1;
  const int error = ::posix_spawn(&pid, exe.c_str(), actions.get(), attributes.get(), argv.data(), envp.data());
  if (error != 0) {
    ::munmap(page, worker_page_size);
    throw Error("cannot start the process-pool worker '" + exe + "': " + errno_text(error) +
                "; point ProcessPoolOptions::worker_executable or $TROUPE_WORKER at a troupe-worker built with "
                "this libtroupe");
  }
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    const int open_error = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::munmap(page, worker_page_size);
    throw Error("cannot watch troupe-worker pid " + std::to_string(pid) + " (pidfd_open: " + errno_text(open_error) +
                "); the process pool needs Linux 5.3 or newer");
  }
  SpawnedWorker spawned;
  spawned.pid = pid;
  spawned.pidfd = pidfd;
  spawned.page = page;
  spawned.channel = host.release();
  return spawned;
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
