// troupe call --config FILE --pool NAME plugin.task ARGS...: one call on a
// configured pool, its initializer included, through an Engine.
#include <iostream>

#include "commands.hpp"
#include "troupe/config.hpp"
#include "troupe/engine.hpp"
#include "troupe/errors.hpp"
#include "troupe/process_errors.hpp"

namespace troupe::cli {
namespace {

// With --config the positionals are TASK ARGS...: CLI11 filled them into
// PLUGIN TASK ARGS..., so they shift by one.
Call call_of(const CallOptions& options) {
  std::vector<std::string> positionals{options.plugin};
  if (!options.task.empty()) {
    positionals.push_back(options.task);
  }
  positionals.insert(positionals.end(), options.args.begin(), options.args.end());
  Call call{positionals.front(), {}, {}};
  if (call.task.find('.') == std::string::npos) {
    throw ArgumentError("with --config, name the task as plugin.task (got '" + call.task + "')");
  }
  for (std::size_t i = 1; i < positionals.size(); ++i) {
    call.args.push_back(parse_json_argument(positionals[i], "argument " + std::to_string(i)));
  }
  for (const auto& pair : options.kwargs) {
    const auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw ArgumentError("--kw '" + pair + "' must be name=JSON, e.g. --kw width=640");
    }
    if (!call.kwargs.emplace(pair.substr(0, eq), parse_json_argument(pair.substr(eq + 1), "--kw " + pair.substr(0, eq)))
             .second) {
      throw ArgumentError("--kw '" + pair.substr(0, eq) + "' given twice");
    }
  }
  return call;
}

}  // namespace

int run_call_on_pool(const CallOptions& options) {
  if (options.pool.empty() || options.plugin.empty()) {
    print_error("call --config FILE needs --pool NAME and a task: troupe call --config FILE --pool NAME plugin.task");
    return kUsageError;
  }
  if (options.isolated || !options.timeout.empty()) {
    print_error(
        "call --config runs on the configured pool: --isolated and --timeout do not apply (set the pool's "
        "kind and task_timeout instead)");
    return kUsageError;
  }
  Call call;
  std::unique_ptr<Engine> engine;
  try {
    call = call_of(options);
    engine = std::make_unique<Engine>(config::load_file(options.config, {.overrides = options.sets}));
  } catch (const ConfigError& e) {
    return report_config_error(e);
  } catch (const Error& e) {
    print_error(e.what());
    return kUsageError;
  }
  const std::string task = call.task;
  try {
    Value result = engine->pool(options.pool)->submit_call(std::move(call)).get();
    std::cout << result.dump(options.pretty ? 2 : -1, ' ', false, Value::error_handler_t::replace) << '\n';
    return kOk;
  } catch (const BrokenPoolError&) {
    print_error("pool '" + options.pool + "' broke: " + format_error_report(std::current_exception()));
    return kPoolBroken;
  } catch (const PluginError&) {
    print_error(format_error_report(std::current_exception()));
    return kUsageError;
  } catch (const UsageError&) {
    print_error(format_error_report(std::current_exception()));
    return kUsageError;
  } catch (const ArgumentError&) {
    print_error("task '" + task + "' failed: " + format_error_report(std::current_exception()));
    return kUsageError;
  } catch (const UnknownTaskError&) {
    print_error("task '" + task + "' failed: " + format_error_report(std::current_exception()));
    return kUsageError;
  } catch (const std::exception&) {
    print_error("task '" + task + "' failed: " + format_error_report(std::current_exception()));
    return kTaskFailed;
  }
}

}  // namespace troupe::cli
