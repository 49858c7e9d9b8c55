// What `troupe call` takes from its command line: the options, declared on
// the subcommand, and the checks that turn them into a call's arguments.
// Every refusal is a troupe::UsageError or ArgumentError naming the option
// or argument (exit 2); nothing a user types reaches the task unchecked.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "troupe/sdk/call.hpp"
#include "troupe/sdk/value.hpp"

namespace CLI {
class App;
}

namespace troupe::cli {

struct CallOptions {
  std::string plugin;
  std::string task;
  std::vector<std::string> args;    // JSON texts, exactly as typed
  std::vector<std::string> kwargs;  // name=JSON
  bool pretty = false;
  bool isolated = false;  // run in a troupe-worker process (ProcessPool)
  std::string timeout;    // with isolated: a duration, e.g. 30s
  // --config FILE --pool NAME: the positionals are TASK ARGS... and the
  // call runs on that configured pool (its initializer included).
  std::string config;
  std::string pool;
  std::vector<std::string> sets;  // --set KEY=VALUE
};

// Declares `call`'s options and positionals on `command`. The task's
// arguments are not a CLI11 option (CLI11 would split '[1,2]' into two):
// collect_call_arguments() takes them, verbatim, after parsing.
void add_call_options(CLI::App& command, CallOptions& options);
void collect_call_arguments(CLI::App& command, CallOptions& options);

// `troupe call ... -- ARGS`: CLI11 hands what follows `--` on a subcommand
// back to the top level, so the command line is cut there before parsing.
// Returns the task arguments after the `--` that follows the call command
// (each one JSON value, a leading '-' included) and drops them and the `--`
// from `argv`; words there that PLUGIN and TASK still need stay for them.
std::vector<std::string> take_call_arguments_after_separator(const CLI::App& call_command,
                                                             std::vector<std::string>& argv);

// JSON arguments nest at most this deep (deeper input could exhaust the
// stack of any code that walks the value).
inline constexpr int kMaxJsonDepth = 256;

// One JSON literal; `where` names it in errors ("argument 2", "--kw b").
Value parse_json_argument(const std::string& text, const std::string& where);

struct CallInputs {
  Args args;
  Kwargs kwargs;
  std::optional<std::chrono::nanoseconds> timeout;
};

// Checks the options and parses every argument. Throws UsageError or ArgumentError.
CallInputs read_call_inputs(const CallOptions& options);

}  // namespace troupe::cli
