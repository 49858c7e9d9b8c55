// The troupe command's verbs. Each returns the process exit code:
// 0 success, 1 a task failed, 2 usage, config or plugin error.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace troupe::cli {

enum ExitCode : int { kOk = 0, kTaskFailed = 1, kUsageError = 2, kPoolBroken = 3, kInterrupted = 130 };

struct InspectOptions {
  std::string plugin;
  bool json = false;
};

struct CallOptions {
  std::string plugin;
  std::string task;
  std::vector<std::string> args;
  std::vector<std::string> kwargs;  // name=json
  bool pretty = false;
  bool isolated = false;  // run in a troupe-worker process (ProcessPool)
  std::string timeout;    // with isolated: a duration, e.g. 30s
  // --config FILE --pool NAME: the positionals are TASK ARGS... and the
  // call runs on that configured pool (its initializer included).
  std::string config;
  std::string pool;
  std::vector<std::string> sets;  // --set KEY=VALUE
};

// validate and config: a file and its --set overrides.
struct ConfigFileOptions {
  std::string file;
  std::vector<std::string> sets;
};

int run_inspect(const InspectOptions& options);
int run_call(const CallOptions& options);
int run_call_on_pool(const CallOptions& options);
int run_validate(const ConfigFileOptions& options);
int run_config(const ConfigFileOptions& options);

// Prints each problem of a ConfigError (GCC-style lines) and a summary line
// on stderr; returns kUsageError.
int report_config_error(const std::exception& error);

// `troupe: error: <message>` on stderr.
void print_error(const std::string& message);

}  // namespace troupe::cli
