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
};

int run_inspect(const InspectOptions& options);
int run_call(const CallOptions& options);

// `troupe: error: <message>` on stderr.
void print_error(const std::string& message);

}  // namespace troupe::cli
