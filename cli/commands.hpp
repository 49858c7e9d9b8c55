// The troupe command's verbs. Each returns the process exit code (listed
// in `troupe --help`): 0 success, 1 a task failed or crashed, 2 usage,
// argument or plugin error, 3 the worker pool broke (with --isolated: no
// worker could start), 130 interrupted.
#pragma once

#include <exception>
#include <string>
#include <vector>

#include "call_inputs.hpp"
#include "troupe/pipeline.hpp"

namespace troupe::cli {

enum ExitCode : int { kOk = 0, kTaskFailed = 1, kUsageError = 2, kPoolBroken = 3, kInterrupted = 130 };

inline constexpr const char* kExitCodesHelp =
    "Exit codes: 0 ok; 1 the task failed or crashed; 2 usage, argument or plugin error; 3 the worker pool broke "
    "(with --isolated: its worker could not start); 130 interrupted.";

struct InspectOptions {
  std::string plugin;
  bool json = false;
};

// validate and config: a file and its --set overrides.
struct ConfigFileOptions {
  std::string file;
  std::vector<std::string> sets;
};

// run: a file's jobs.
struct RunOptions {
  std::string file;
  std::string job;  // empty: every job
  std::vector<std::string> sets;
  ExistingOutput existing = ExistingOutput::refuse;
  bool fsync = false;
  std::string progress = "auto";  // auto | always | never
};

int run_inspect(const InspectOptions& options);
int run_call(const CallOptions& options);
int run_call_on_pool(const CallOptions& options);
int run_validate(const ConfigFileOptions& options);
int run_config(const ConfigFileOptions& options);
int run_run(const RunOptions& options);

// Prints `heading` (if any), each problem of a ConfigError (GCC-style lines)
// and a summary line on stderr, in one write; returns kUsageError.
int report_config_error(const std::exception& error, const std::string& heading = {});

// `troupe: error: <message>` on stderr.
void print_error(const std::string& message);

}  // namespace troupe::cli
