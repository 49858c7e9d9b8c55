// Tasks that misbehave on purpose, for the pools' crash, hang and leak
// tests, plus a few well-behaved probes. Not for production pipelines.
#include <troupe/sdk.hpp>

#include "shared_tasks.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

class TestingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::int64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0;
  long pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return static_cast<std::int64_t>(pages_resident) * sysconf(_SC_PAGESIZE);
}

// Touches every page, so the memory counts in RSS.
void touch_megabytes(std::int64_t megabytes, bool keep) {
  const std::size_t bytes = static_cast<std::size_t>(megabytes) << 20;
  auto* block = static_cast<char*>(std::malloc(bytes));
  if (block == nullptr) {
    throw std::bad_alloc();
  }
  for (std::size_t i = 0; i < bytes; i += 4096) {
    static_cast<volatile char*>(block)[i] = static_cast<char>(i);
  }
  if (keep) {
    // Published where the optimizer cannot prove it dead: the leak is real.
    static std::vector<char*> leaked;
    static std::mutex leaked_mutex;
    std::lock_guard lock(leaked_mutex);
    leaked.push_back(block);
  } else {
    std::free(block);
  }
}

// Uninstrumented, so UBSan's null check does not turn the fault into a
// sanitizer report: the process must die of SIGSEGV in every build.
__attribute__((no_sanitize("address", "undefined"), noinline)) void write_through_null() {
  volatile int* volatile null = nullptr;
  *null = 1;
}

struct Counter {
  std::int64_t calls = 0;
};

// The worker's channel to its host: the fd after --channel on its command
// line (the worker keeps no other socket), or -1 outside a troupe-worker.
int worker_channel() {
  std::ifstream cmdline("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string arg; std::getline(cmdline, arg, '\0');) {
    args.push_back(arg);
  }
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--channel") {
      return std::atoi(args[i + 1].c_str());
    }
  }
  return -1;
}

std::atomic<int> g_initializer_runs{0};

// Sleeps up to ms, polling the cooperative flag; true if it slept the whole time.
bool sleep_unless_cancelled(troupe::TaskContext& ctx, std::int64_t ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ctx.cancelled()) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// The per-worker object of the objects.method_call benchmark: the same work
// as `double`, as a method.
struct Doubler {
  std::int64_t twice(std::int64_t x) const { return 2 * x; }
};

}  // namespace

TROUPE_PLUGIN(testing, "1.0.0") {
  plugin.task(
      "echo", [](const troupe::Value& value) { return value; }, "Return the argument unchanged", troupe::arg("value"));
  plugin.task(
      "double", [](std::int64_t x) { return 2 * x; }, "Return 2x", troupe::arg("x"));
  plugin.worker_class<Doubler>("doubler", "A stateless object per worker")
      .method("double_on_object", &Doubler::twice, "Return 2x, on the worker's Doubler", troupe::arg("x"));
  plugin.task(
      "sleep",
      [](std::int64_t ms) {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        return ms;
      },
      "Sleep ms milliseconds and return ms", troupe::arg("ms"));
  plugin.task(
      "cancellable_sleep", [](troupe::TaskContext& ctx, std::int64_t ms) { return sleep_unless_cancelled(ctx, ms); },
      "Sleep up to ms, polling cancellation; true if it slept the whole time", troupe::arg("ms"));
  plugin.task(
      "spin",
      [](std::int64_t iterations) {
        std::uint64_t h = 1469598103934665603ull;
        for (std::int64_t i = 0; i < iterations; ++i) {
          h = (h ^ static_cast<std::uint64_t>(i)) * 1099511628211ull;
        }
        return h;
      },
      "Burn CPU for a number of FNV-1a rounds and return the hash", troupe::arg("iterations"));
  plugin.task(
      "fail",
      [](const std::string& message, const std::string& cause) -> troupe::Value {
        if (cause.empty()) {
          throw TestingError(message);
        }
        try {
          throw std::invalid_argument(cause);
        } catch (...) {
          std::throw_with_nested(TestingError(message));
        }
      },
      "Throw TestingError(message), nested over std::invalid_argument(cause) unless cause is empty",
      troupe::arg("message"), troupe::arg("cause") = "");
  plugin.task(
      "abort", []() -> troupe::Value { std::abort(); }, "Call std::abort()");
  plugin.task(
      "segfault",
      []() -> troupe::Value {
        std::signal(SIGSEGV, SIG_DFL);  // past any sanitizer's handler: a real SIGSEGV death
        write_through_null();
        return nullptr;
      },
      "Write through a null pointer (SIGSEGV)");
  plugin.task(
      "exit", [](int code) -> troupe::Value { _exit(code); }, "Call _exit(code)", troupe::arg("code"));
  plugin.task(
      "std_exit", [](int code) -> troupe::Value { std::exit(code); },
      "Call std::exit(code) (atexit handlers and static destructors run)", troupe::arg("code"));
  plugin.task(
      "kill_self",
      [](int signal_number) -> troupe::Value {
        std::signal(signal_number, SIG_DFL);
        raise(signal_number);
        std::this_thread::sleep_for(10s);
        return nullptr;
      },
      "Raise a signal at itself", troupe::arg("signal"));
  plugin.task(
      "leak",
      [](std::int64_t megabytes) {
        touch_megabytes(megabytes, true);
        return rss_bytes();
      },
      "Allocate and touch megabytes that are never freed; return RSS in bytes", troupe::arg("megabytes"));
  plugin.task(
      "allocate",
      [](std::int64_t megabytes) {
        touch_megabytes(megabytes, false);
        return rss_bytes();
      },
      "Allocate, touch and free megabytes; return RSS in bytes", troupe::arg("megabytes"));
  plugin.task(
      "hang",
      []() -> troupe::Value {
        for (;;) {
          std::this_thread::sleep_for(1s);
        }
      },
      "Never return and ignore cancellation");
  plugin.task(
      "rss", []() { return rss_bytes(); }, "The worker's resident set size in bytes");
  plugin.task(
      "pid", []() { return static_cast<std::int64_t>(getpid()); }, "The worker's process id");
  plugin.task(
      "worker_id", [](troupe::TaskContext& ctx) { return ctx.worker().id(); }, "The id of the worker running the task");
  plugin.task(
      "counter",
      [](troupe::TaskContext& ctx) {
        auto* counter = ctx.worker().find<Counter>();
        return counter == nullptr ? std::int64_t{-1} : ++counter->calls;
      },
      "Calls on this worker since its counting initializer ran; -1 without it");
  plugin.task(
      "big_result", [](std::int64_t bytes) { return std::string(static_cast<std::size_t>(bytes), 'x'); },
      "Return a string of the given size", troupe::arg("bytes"));
  plugin.task(
      "env",
      [](const std::string& name) -> troupe::Value {
        const char* value = std::getenv(name.c_str());
        return value == nullptr ? troupe::Value() : troupe::Value(value);
      },
      "An environment variable of the worker, or null", troupe::arg("name"));

  plugin.initializer(
      "start_counter",
      [](troupe::Worker& worker) {
        worker.emplace<Counter>();
        g_initializer_runs.fetch_add(1);
      },
      "Give the worker a call counter");
  plugin.initializer(
      "fail_init", [](const std::string& message) -> void { throw TestingError(message); },
      "Throw TestingError(message)", troupe::arg("message"));
  plugin.initializer(
      "fail_on_worker",
      [](troupe::Worker& worker, std::int64_t id) {
        if (static_cast<std::int64_t>(worker.id()) == id) {
          throw TestingError("initializer refuses worker " + std::to_string(id));
        }
      },
      "Throw on the worker with the given id only", troupe::arg("id"));
  plugin.initializer(
      "crash_init", []() { std::abort(); }, "Abort while initializing");
  plugin.initializer(
      "slow_init", [](std::int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); },
      "Sleep ms while initializing", troupe::arg("ms"));
  // For the start-up failure tests: the starts of a pool's workers take
  // turns, counted in a file: the odd ones abort (one worker starts at a time).
  plugin.initializer(
      "abort_every_other_start",
      [](const std::string& path) {
        std::int64_t starts = 0;
        {
          std::ifstream in(path);
          in >> starts;
        }
        ++starts;
        {
          std::ofstream out(path, std::ios::trunc);
          out << starts << '\n';
        }
        if (starts % 2 == 1) {
          std::abort();
        }
      },
      "Count this start in the file at path; abort on the odd starts", troupe::arg("path"));
  plugin.finalizer(
      "stop_counter", [](troupe::Worker& worker) { worker.reset<Counter>(); }, "Drop the worker's call counter");
  plugin.finalizer(
      "fail_fini", [](const std::string& message) -> void { throw TestingError(message); },
      "Throw TestingError(message)", troupe::arg("message"));
  plugin.finalizer(
      "write_file",
      [](troupe::Worker& worker, const std::string& path) {
        std::ofstream out(path, std::ios::app);
        out << worker.id() << '\n';
      },
      "Append the worker id to a file (proves the finalizer ran)", troupe::arg("path"));
  // Appended for the revoke tests: proves the task started (a test waits for
  // the file) before it sleeps.
  plugin.task(
      "announce_then_sleep",
      [](const std::string& path, std::int64_t ms) {
        {
          std::ofstream out(path + ".tmp");
          out << getpid() << '\n';
        }
        std::rename((path + ".tmp").c_str(), path.c_str());
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        return ms;
      },
      "Write the worker's pid to path, then sleep ms and return ms", troupe::arg("path"), troupe::arg("ms"));
  // Proves the task really started (a process pool's future counts as running
  // once sent), then sleeps like cancellable_sleep.
  plugin.task(
      "announce_then_cancellable_sleep",
      [](troupe::TaskContext& ctx, const std::string& path, std::int64_t ms) {
        {
          std::ofstream out(path + ".tmp");
          out << getpid() << '\n';
        }
        std::rename((path + ".tmp").c_str(), path.c_str());
        return sleep_unless_cancelled(ctx, ms);
      },
      "Write the worker's pid to path, then sleep up to ms polling cancellation; true if it slept the whole time",
      troupe::arg("path"), troupe::arg("ms"));
  // Appended for the spawn test: proves a descriptor the worker inherited is open in it.
  plugin.task(
      "write_fd",
      [](std::int64_t fd, const std::string& text) {
        const auto n = ::write(static_cast<int>(fd), text.data(), text.size());
        if (n != static_cast<ssize_t>(text.size())) {
          throw TestingError("write to fd " + std::to_string(fd) + " failed: " + std::strerror(errno));
        }
        return static_cast<std::int64_t>(n);
      },
      "Write text to the worker's descriptor fd", troupe::arg("fd"), troupe::arg("text"));
  // Appended for the process pool's retirement tests: a finalizer that takes
  // a while, so a worker killed right after its shutdown frame leaves no line.
  plugin.finalizer(
      "slow_write_file",
      [](troupe::Worker& worker, const std::string& path, std::int64_t ms) {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        std::ofstream out(path, std::ios::app);
        out << worker.id() << '\n';
      },
      "Sleep ms, then append the worker id to a file (proves a slow finalizer ran)", troupe::arg("path"),
      troupe::arg("ms"));
  // Appended for the process pool's tests: a map chunk whose item `at` crashes its worker.
  plugin.task(
      "abort_at",
      [](std::int64_t x, std::int64_t at) -> std::int64_t {
        if (x == at) {
          std::abort();
        }
        return x;
      },
      "Return x, or abort the process when x == at", troupe::arg("x"), troupe::arg("at"));
  // Appended for the process pool's memory-limit test: like leak, but the
  // block stays reachable and is written through a volatile pointer, so an
  // optimizing compiler cannot drop the allocation or the page touches.
  plugin.task(
      "retain",
      [](std::int64_t megabytes) {
        static std::vector<char*> retained;
        const std::size_t bytes = static_cast<std::size_t>(megabytes) << 20;
        auto* block = static_cast<char*>(std::malloc(bytes));
        if (block == nullptr) {
          throw std::bad_alloc();
        }
        volatile char* touch = block;
        for (std::size_t i = 0; i < bytes; i += 4096) {
          touch[i] = static_cast<char>(i);
        }
        retained.push_back(block);
        return rss_bytes();
      },
      "Allocate, touch and keep megabytes; return RSS in bytes", troupe::arg("megabytes"));
  // Appended for the process pool's tests: proves the task started (a test
  // waits for the file) before it hangs.
  plugin.task(
      "announce_then_hang",
      [](const std::string& path) -> troupe::Value {
        {
          std::ofstream out(path + ".tmp");
          out << getpid() << '\n';
        }
        std::rename((path + ".tmp").c_str(), path.c_str());
        for (;;) {
          std::this_thread::sleep_for(1s);
        }
      },
      "Write the worker's pid to path, then never return", troupe::arg("path"));
  // Appended for the process pool's channel-corruption test: a plugin that
  // writes stray bytes into its worker's channel to the host.
  plugin.task(
      "write_to_channel",
      [](const std::string& hex, std::int64_t sleep_before_ms, std::int64_t sleep_after_ms) {
        const int fd = worker_channel();
        if (fd < 0) {
          throw TestingError("write_to_channel runs only inside a troupe-worker");
        }
        std::string bytes;
        for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
          bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(sleep_before_ms));
        if (!bytes.empty() && ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
          throw TestingError(std::string("write to the channel failed: ") + std::strerror(errno));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(sleep_after_ms));
        return static_cast<std::int64_t>(bytes.size());
      },
      "Sleep sleep_before_ms, write the bytes given in hex to the worker's channel to its host, then sleep "
      "sleep_after_ms",
      troupe::arg("hex"), troupe::arg("sleep_before_ms"), troupe::arg("sleep_after_ms"));
  // Appended for the at-most-once tests: each run leaves a line in a file,
  // so a test can count how often a task ran.
  plugin.task(
      "append_line",
      [](const std::string& path) {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0 || ::write(fd, "x\n", 2) != 2) {
          throw TestingError("cannot append to " + path + ": " + std::strerror(errno));
        }
        ::close(fd);
        return true;
      },
      "Append a line to the file at path (counts runs)", troupe::arg("path"));
  plugin.task(
      "append_line_then_close_channel",
      [](const std::string& path) {
        std::ofstream(path, std::ios::app) << "x\n";
        const int fd = worker_channel();
        if (fd < 0) {
          throw TestingError("append_line_then_close_channel runs only inside a troupe-worker");
        }
        ::close(fd);
        return true;
      },
      "Append a line to the file at path, then close the worker's channel to its host", troupe::arg("path"));
  // Appended for the nesting-limit tests.
  plugin.task(
      "nest",
      [](std::int64_t levels) {
        troupe::Value value;
        for (std::int64_t i = 0; i < levels; ++i) {
          value = troupe::Value::array({std::move(value)});
        }
        return value;
      },
      "A null inside `levels` nested one-element arrays", troupe::arg("levels"));
  // Appended for the error-record size tests: a chain of `levels` nested
  // exceptions, each with a message of `bytes` bytes.
  plugin.task(
      "fail_chain",
      [](std::int64_t levels, std::int64_t bytes) -> troupe::Value {
        const auto message = [&](std::int64_t level) {
          std::string text = "level " + std::to_string(level) + " ";
          text.resize(static_cast<std::size_t>(std::max<std::int64_t>(bytes, 0)), 'x');
          return text;
        };
        const auto throw_from = [&](auto& self, std::int64_t level) -> void {
          if (level + 1 == levels) {
            throw TestingError(message(level));
          }
          try {
            self(self, level + 1);
          } catch (...) {
            std::throw_with_nested(TestingError(message(level)));
          }
        };
        throw_from(throw_from, 0);
        return nullptr;
      },
      "Throw a chain of `levels` nested TestingErrors with messages of `bytes` bytes", troupe::arg("levels"),
      troupe::arg("bytes"));
  troupe::testing::add_shared_tasks(plugin);
  // Appended for the runner's retry tests: fail (or crash the worker) the
  // first time a marker file is missing, succeed once it exists, so a retry
  // of the same key succeeds on either pool kind.
  plugin.task(
      "fail_once",
      [](const std::string& path, std::int64_t value) -> troupe::Value {
        if (!std::filesystem::exists(path)) {
          std::ofstream(path) << "seen\n";
          throw TestingError("first attempt at " + path);
        }
        return value;
      },
      "Throw TestingError unless path exists (creating it); else return value", troupe::arg("path"),
      troupe::arg("value"));
  plugin.task(
      "crash_once",
      [](const std::string& path, std::int64_t value) -> troupe::Value {
        if (!std::filesystem::exists(path)) {
          std::ofstream(path) << "seen\n";
          std::_Exit(70);
        }
        return value;
      },
      "_Exit(70) unless path exists (creating it first); else return value", troupe::arg("path"), troupe::arg("value"));
}
