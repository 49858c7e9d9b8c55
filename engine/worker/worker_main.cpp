// troupe-worker: one process of a troupe::ProcessPool.
//
// Started by the pool's reactor thread with `--channel 3 --page 4 --parent
// PID` (and `--descriptor ID:FD` for each descriptor it inherits). It reads
// a hello frame (plugins, initializer, finalizer, limits), loads the
// plugins, runs the initializer and answers ready with its task table (or
// init_failed). Then it runs task and chunk frames in order, streaming
// results back in batches, and a monitor thread sends a heartbeat with the
// RSS every ~100 ms while a task runs. It exits on a shutdown frame (after
// the finalizer), on EOF of its channel, and when its parent changes (the
// host died): it never outlives its host.
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "process/worker_page.hpp"
#include "worker_process.hpp"

int main(int argc, char** argv) {
  // Die with the host. The check after it closes the race with a host that
  // died before prctl ran.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  int channel = -1;
  int page_fd = -1;
  long parent = -1;
  std::unordered_map<std::uint64_t, int> inherited;  // --descriptor ID:FD, the host's table entries
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--descriptor") == 0) {
      char* colon = nullptr;
      const auto id = std::strtoull(argv[i + 1], &colon, 10);
      if (colon != nullptr && *colon == ':') {
        inherited[id] = std::atoi(colon + 1);
      }
    } else if (std::strcmp(argv[i], "--channel") == 0) {
      channel = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--page") == 0) {
      page_fd = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--parent") == 0) {
      parent = std::atol(argv[i + 1]);
    }
  }
  if (channel < 0 || page_fd < 0 || parent <= 0) {
    std::fprintf(stderr,
                 "troupe-worker runs inside a troupe::ProcessPool, which starts it; it is not a command "
                 "(usage: troupe-worker --channel FD --page FD --parent PID)\n");
    return 2;
  }
  if (::getppid() != static_cast<pid_t>(parent)) {
    return 0;
  }
  ::signal(SIGPIPE, SIG_IGN);
  // Ctrl-C goes to the host's process group, not ours; the host decides.
  ::signal(SIGINT, SIG_IGN);
  void* page =
      ::mmap(nullptr, troupe::detail::process::worker_page_size, PROT_READ | PROT_WRITE, MAP_SHARED, page_fd, 0);
  if (page == MAP_FAILED) {
    return 5;
  }
  ::close(page_fd);
  // Never destroyed: a task that calls std::exit runs the static destructors,
  // and a destroyed worker would end in std::terminate (its monitor thread is
  // still joinable) instead of with the status the task asked for.
  static auto* worker =
      new troupe::worker::WorkerProcess(channel, static_cast<troupe::detail::process::WorkerPage*>(page),
                                        static_cast<pid_t>(parent), std::move(inherited));
  worker->run();
}
