// troupe/process_errors.hpp
//
// Errors only a process pool raises: a worker process died under a task
// (WorkerCrashedError), a task ran past task_timeout (TaskTimeoutError), a
// task threw in a worker (RemoteError), a result was over max_frame
// (ResultTooLargeError).
//
// Guarantees: each message says which worker (id and pid), which task, and
// what the process died of (signal name or exit status, last reported RSS).
// A RemoteError keeps the remote exception chain as std::nested_exception
// causes, each itself a RemoteError, so std::rethrow_if_nested walks it.
// Hazards: the remote stack trace is the one captured where the worker's
// exception was thrown; it names plugin frames only if the plugin kept its
// symbols.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "troupe/sdk/errors.hpp"

namespace troupe {

// What is known about a worker process that ended without being asked to.
struct WorkerExit {
  std::size_t worker_id = 0;
  std::int64_t pid = 0;
  int signal = 0;                         // the signal that ended it; 0 when it exited
  std::optional<int> exit_status;         // its exit status when it exited
  std::optional<std::uint64_t> last_rss;  // bytes, the last resident set size it reported
  bool starting = false;                  // it died before reporting ready
  std::string killed_for;                 // why the pool itself killed it (a broken frame protocol); empty if not
  std::string place;                      // where it ran when not on this host ("rank 2 (node7)"); empty if here
};

// "SIGKILL", "SIGSEGV", ... ("signal 42" when unnamed).
std::string signal_name(int signal);

// A worker process died while it ran this task (or this map chunk item), or
// after it ran it but before its result reached the host (result_lost()): a
// task the host has no result for is never run a second time.
class WorkerCrashedError : public Error {
 public:
  // `task` is plugin.task; `key` the submission's number (Future id); `item`
  // the index inside a map chunk, when the task was one.
  WorkerCrashedError(WorkerExit exit, std::string task, std::uint64_t key, std::optional<std::size_t> item = {},
                     bool result_lost = false);

  const WorkerExit& exit() const noexcept { return exit_; }
  std::size_t worker_id() const noexcept { return exit_.worker_id; }
  std::int64_t pid() const noexcept { return exit_.pid; }
  int signal() const noexcept { return exit_.signal; }
  std::optional<int> exit_status() const noexcept { return exit_.exit_status; }
  std::optional<std::uint64_t> last_rss() const noexcept { return exit_.last_rss; }
  const std::string& task() const noexcept { return task_; }
  std::uint64_t key() const noexcept { return key_; }
  std::optional<std::size_t> item() const noexcept { return item_; }
  bool result_lost() const noexcept { return result_lost_; }

  // "worker 1 (pid 4242) was killed by SIGKILL" (no task part).
  static std::string describe(const WorkerExit& exit);

 private:
  WorkerExit exit_;
  std::string task_;
  std::uint64_t key_;
  std::optional<std::size_t> item_;
  bool result_lost_;
};

// A task ran longer than its time limit (a process pool's task_timeout, a
// submit's or a runner item's timeout). On a process pool its worker was
// killed and replaced; on a thread pool (pid -1) the task was given up and
// its cancel flag set.
class TaskTimeoutError : public Error {
 public:
  TaskTimeoutError(std::string task, std::uint64_t key, std::chrono::nanoseconds timeout, std::size_t worker_id,
                   std::int64_t pid, std::optional<std::size_t> item = {});

  const std::string& task() const noexcept { return task_; }
  std::uint64_t key() const noexcept { return key_; }
  std::chrono::nanoseconds timeout() const noexcept { return timeout_; }
  std::size_t worker_id() const noexcept { return worker_id_; }
  std::int64_t pid() const noexcept { return pid_; }  // -1: a thread pool's thread

 private:
  std::string task_;
  std::uint64_t key_;
  std::chrono::nanoseconds timeout_;
  std::size_t worker_id_;
  std::int64_t pid_;
};

// A task's result was larger than the pool's max_frame; the worker goes on.
class ResultTooLargeError : public Error {
 public:
  using Error::Error;
};

// An exception thrown in a worker process, carried back. what() is
// "RemoteType: message (caused by Type: message)"; remote_type() is the
// demangled C++ type; stack_trace() the remote trace (may be empty for a cause).
class RemoteError : public Error {
 public:
  RemoteError(std::string remote_type, std::string remote_message, std::string stack_trace, std::string what_text = {});

  const std::string& remote_type() const noexcept { return remote_type_; }
  const std::string& remote_message() const noexcept { return remote_message_; }
  const std::string& stack_trace() const noexcept { return stack_trace_; }

 private:
  std::string remote_type_;
  std::string remote_message_;
  std::string stack_trace_;
};

// The whole story of an error, for people: describe_exception()'s text
// ("Type: message", then "  caused by: Type: message" per cause), then the
// remote stack trace of the first RemoteError in the chain, if any.
std::string format_error_report(const std::exception_ptr& error);

}  // namespace troupe
