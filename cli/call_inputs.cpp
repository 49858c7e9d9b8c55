#include "call_inputs.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>

#include "troupe/config/units.hpp"
#include "troupe/detail/json_integers.hpp"
#include "troupe/sdk/errors.hpp"
#include "troupe/sdk/names.hpp"

namespace troupe::cli {
namespace {

// An argument as the message shows it: escaped, and cut when long.
std::string shown(const std::string& text) {
  constexpr std::size_t kShown = 60;
  std::string out = detail::escaped_name(text.size() > kShown ? text.substr(0, kShown) : text);
  return text.size() > kShown ? out + "..." : out;
}

class TooDeep : public std::exception {};

// A word that starts with '-' and is still a JSON argument, not an option.
bool is_negative_number(const std::string& word) {
  return word.size() > 1 && word[0] == '-' && word[1] >= '0' && word[1] <= '9';
}

}  // namespace

void add_call_options(CLI::App& command, CallOptions& options) {
  command.add_option("plugin", options.plugin, "Path to the plugin's .so file")->required();
  command.add_option("task", options.task, "Task name: 'task' or 'plugin.task'");
  command.add_option("--kw", options.kwargs, "Keyword argument name=JSON (repeatable)")->allow_extra_args(false);
  command.add_flag("--pretty", options.pretty, "Indent the JSON result");
  command.add_flag("--isolated", options.isolated,
                   "Run the task in a troupe-worker process: a crash or hang cannot take the CLI down");
  command.add_option("--timeout", options.timeout, "With --isolated: kill the task after this long (250ms, 30s, 5m)");
  command.add_option("--config", options.config,
                     "Run on a pool of this configuration file: troupe call --config FILE --pool NAME "
                     "plugin.task ARGS...");
  command.add_option("--pool", options.pool, "With --config: the pool to run on");
  command.add_option("--set", options.sets, "With --config: override a key, KEY.PATH=VALUE (repeatable)")
      ->allow_extra_args(false);
  command.allow_extras();
  command.footer(
      "ARGS: the task's positional arguments, each one JSON value, taken as written: 42, 1.5, true, '\"text\"', "
      "'[1,2]' (one list), '{\"x\":1}'. After --, arguments may start with '-' (PLUGIN and TASK may come "
      "after it too).");
}

void collect_call_arguments(CLI::App& command, CallOptions& options) {
  for (std::string& extra : command.remaining()) {
    // JSON starts with '-' only in a negative number: anything else is an unknown option.
    if (extra.starts_with('-') && !is_negative_number(extra)) {
      throw UsageError("call: unknown option '" + shown(extra) + "' (see troupe call --help)");
    }
    options.args.push_back(std::move(extra));
  }
}

std::vector<std::string> take_call_arguments_after_separator(const CLI::App& call_command,
                                                             std::vector<std::string>& argv) {
  // The verb is the first word that is not an option (`troupe --version` has none).
  const auto verb = std::find_if(argv.begin() + (argv.empty() ? 0 : 1), argv.end(),
                                 [](const std::string& word) { return !word.starts_with('-'); });
  if (verb == argv.end() || *verb != call_command.get_name()) {
    return {};
  }
  auto separator = std::find(verb, argv.end(), "--");
  if (separator == argv.end()) {
    return {};
  }
  // What the words before `--` leave of PLUGIN TASK (or, with --config,
  // plugin.task) comes first after it: `troupe call -- p.so echo 5` works.
  std::size_t positionals = 0;
  bool with_config = false;
  for (auto it = verb + 1; it != separator; ++it) {
    const CLI::Option* option = it->starts_with('-') ? call_command.get_option_no_throw(*it) : nullptr;
    with_config = with_config || it->starts_with("--config");
    if (option != nullptr && option->get_items_expected_min() > 0) {
      if (std::next(it) == separator) {
        positionals = 2;  // its value is missing: CLI11 says so, rather than take PLUGIN for it
        break;
      }
      ++it;  // its value
    } else if (!it->starts_with('-') || is_negative_number(*it)) {
      ++positionals;
    }
  }
  const std::size_t wanted = with_config ? 1 : 2;
  const auto first_argument =
      separator + 1 +
      static_cast<std::ptrdiff_t>(std::min<std::size_t>(wanted - std::min(wanted, positionals),
                                                        static_cast<std::size_t>(argv.end() - separator - 1)));
  std::vector<std::string> after(first_argument, argv.end());
  argv.erase(first_argument, argv.end());
  argv.erase(separator);
  return after;
}

Value parse_json_argument(const std::string& text, const std::string& where) {
  // `depth` counts from 0 at the outermost value; only a new array or object goes deeper.
  const auto depth_guard = [](int depth, Value::parse_event_t event, Value&) {
    const bool opens = event == Value::parse_event_t::array_start || event == Value::parse_event_t::object_start;
    if (opens && depth >= kMaxJsonDepth) {
      throw TooDeep();
    }
    return true;
  };
  try {
    Value value = Value::parse(text, depth_guard);
    // The parser reads such an integer as a float, its low digits lost: refused rather than changed.
    if (auto wide = detail::find_wide_integer(text)) {
      throw ArgumentError(where + " '" + shown(text) + "': " + detail::wide_integer_message(wide->literal));
    }
    return value;
  } catch (const TooDeep&) {
    throw ArgumentError(where + " nests deeper than " + std::to_string(kMaxJsonDepth) +
                        " levels of arrays and objects; pass such data in a file");
  } catch (const nlohmann::json::out_of_range&) {
    throw ArgumentError(where + " '" + shown(text) + "' holds a number too large for JSON (past 1.8e308)");
  } catch (const nlohmann::json::parse_error& e) {
    throw ArgumentError(where + " '" + shown(text) + "' is not a JSON literal (at byte " + std::to_string(e.byte) +
                        "); write strings in JSON quotes, e.g. '\"" + shown(text) + "\"'");
  }
}

CallInputs read_call_inputs(const CallOptions& options) {
  CallInputs inputs;
  if (!options.timeout.empty()) {
    if (!options.isolated) {
      throw UsageError("--timeout needs --isolated: only a task in a worker process can be stopped");
    }
    try {
      inputs.timeout = config::parse_duration(options.timeout);
    } catch (const Error& e) {
      throw UsageError(std::string("--timeout: ") + e.what());
    }
    if (inputs.timeout->count() <= 0) {
      throw UsageError("--timeout '" + shown(options.timeout) + "' must be longer than 0 (leave it out for none)");
    }
  }
  for (std::size_t i = 0; i < options.args.size(); ++i) {
    inputs.args.push_back(parse_json_argument(options.args[i], "argument " + std::to_string(i + 1)));
  }
  for (const auto& pair : options.kwargs) {
    const auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw ArgumentError("--kw '" + shown(pair) + "' must be name=JSON, e.g. --kw width=640");
    }
    const std::string name = pair.substr(0, eq);
    if (inputs.kwargs.count(name) != 0) {
      throw ArgumentError("--kw '" + shown(name) + "' given twice");
    }
    inputs.kwargs.emplace(name, parse_json_argument(pair.substr(eq + 1), "--kw " + shown(name)));
  }
  return inputs;
}

}  // namespace troupe::cli
