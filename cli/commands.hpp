// The troupe command's verbs. Each returns the process exit code (listed
// in `troupe --help`): 0 success, 1 a task failed or crashed, 2 usage,
// argument or plugin error, 3 the worker pool broke (with --isolated: no
// worker could start), 130 interrupted.
#pragma once

#include <string>

#include "call_inputs.hpp"

namespace troupe::cli {

enum ExitCode : int { kOk = 0, kTaskFailed = 1, kUsageError = 2, kPoolBroken = 3, kInterrupted = 130 };

inline constexpr const char* kExitCodesHelp =
    "Exit codes: 0 ok; 1 the task failed or crashed; 2 usage, argument or plugin error; 3 the worker pool broke "
    "(with --isolated: its worker could not start); 130 interrupted.";

struct InspectOptions {
  std::string plugin;
  bool json = false;
};

int run_inspect(const InspectOptions& options);
int run_call(const CallOptions& options);

// `troupe: error: <message>` on stderr.
void print_error(const std::string& message);

}  // namespace troupe::cli
