// spawn_worker and the worker's side of the protocol, without a pool: a
// worker started with an inherited descriptor answers hello with its task
// table, and a task it runs finds the descriptor open.
#include "process/spawn.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "process/protocol.hpp"
#include "process/worker_page.hpp"
#include "support/paths.hpp"

namespace troupe::detail::process {
namespace {

// The next frame from the worker, waiting up to 20 s for it.
template <class M>
M next_frame(int channel, FrameBuffer& in) {
  FrameView frame{};
  while (!in.next(frame)) {
    pollfd p{channel, POLLIN, 0};
    if (::poll(&p, 1, 20'000) != 1) {
      throw std::runtime_error("no frame from the worker within 20 s");
    }
    auto space = in.prepare();
    const ssize_t n = ::recv(channel, space.data(), space.size(), 0);
    if (n <= 0) {
      throw std::runtime_error("the worker closed its channel");
    }
    in.commit(static_cast<std::size_t>(n));
  }
  return read_frame<M>(frame);
}

void send_frame(int channel, const std::vector<std::uint8_t>& bytes) {
  std::size_t at = 0;
  while (at < bytes.size()) {
    pollfd p{channel, POLLOUT, 0};
    ASSERT_EQ(::poll(&p, 1, 20'000), 1);
    const ssize_t n = ::send(channel, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
    ASSERT_GT(n, 0);
    at += static_cast<std::size_t>(n);
  }
}

template <class M>
void send_message(int channel, const M& m) {
  std::vector<std::uint8_t> bytes;
  write_frame(bytes, m);
  send_frame(channel, bytes);
}

TEST(Spawn, WorkerInheritsTheDescriptorsItIsGiven) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  const SpawnedWorker worker =
      spawn_worker(test::binary_path("troupe-worker"), {}, {InheritedFd{7, pipe_fds[1]}, InheritedFd{9, pipe_fds[1]}});
  ::close(pipe_fds[1]);  // the worker holds its own copies
  FrameBuffer in(1 << 20);

  send_message(
      worker.channel,
      Hello{0, "spawn-test", {test::plugin_path("testing").string()}, std::nullopt, std::nullopt, 0, 0, 1 << 20});
  const Ready ready = next_frame<Ready>(worker.channel, in);
  EXPECT_EQ(ready.pid, static_cast<std::uint64_t>(worker.pid));
  bool listed = false;
  for (const auto& signature : ready.tasks) {
    listed = listed || signature.qualified_name == "testing.write_fd";
  }
  EXPECT_TRUE(listed);

  send_message(worker.channel, Task{1, "testing.write_fd", {first_inherited_fd + 1, "hello"}, {}});  // id 9
  const Result result = next_frame<Result>(worker.channel, in);
  EXPECT_EQ(result.id, 1u);
  EXPECT_EQ(result.value, 5);
  char text[5];
  ASSERT_EQ(::read(pipe_fds[0], text, 5), 5);
  EXPECT_EQ(std::string(text, 5), "hello");

  send_message(worker.channel, Shutdown{});
  EXPECT_FALSE(next_frame<Bye>(worker.channel, in).finalizer_error);
  int status = 0;
  ASSERT_EQ(::waitpid(worker.pid, &status, 0), worker.pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ::close(worker.channel);
  ::close(worker.pidfd);
  ::close(pipe_fds[0]);
  ::munmap(worker.page, worker_page_size);
}

}  // namespace
}  // namespace troupe::detail::process
