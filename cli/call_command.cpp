#include <iostream>

#include "commands.hpp"
#include "troupe/config/units.hpp"
#include "troupe/errors.hpp"
#include "troupe/process_errors.hpp"
#include "troupe/process_pool.hpp"
#include "troupe/registry.hpp"

namespace troupe::cli {
namespace {

Value parse_json_literal(const std::string& text, const std::string& where) {
  try {
    return Value::parse(text);
  } catch (const nlohmann::json::parse_error&) {
    throw ArgumentError(where + " '" + text + "' is not a JSON literal; write strings in JSON quotes, e.g. '\"" + text +
                        "\"'");
  }
}

// The task runs in one troupe-worker process; remote errors, crashes and
// timeouts come back as troupe errors and are printed in full.
int run_isolated(const CallOptions& options, const std::string& task, Args args, Kwargs kwargs) {
  ProcessPoolOptions pool_options;
  pool_options.max_workers = 1;
  pool_options.name = "call";
  pool_options.crash_storm.max = 0;  // one call: report the crash itself, not a storm
  if (!options.timeout.empty()) {
    try {
      pool_options.task_timeout = config::parse_duration(options.timeout);
    } catch (const Error& e) {
      print_error(std::string("--timeout: ") + e.what());
      return kUsageError;
    }
  }
  try {
    ProcessPool pool({options.plugin}, pool_options);
    Value result = pool.submit_call(Call{task, std::move(args), std::move(kwargs)}).get();
    pool.shutdown(ProcessShutdownOptions{});
    std::cout << result.dump(options.pretty ? 2 : -1, ' ', false, Value::error_handler_t::replace) << '\n';
    return kOk;
  } catch (const ArgumentError&) {
    print_error("task '" + task + "' failed: " + format_error_report(std::current_exception()));
    return kUsageError;
  } catch (const UnknownTaskError&) {
    print_error("task '" + task + "' failed: " + format_error_report(std::current_exception()));
    return kUsageError;
  } catch (const BrokenPoolError&) {
    print_error(format_error_report(std::current_exception()));
    return kPoolBroken;
  } catch (const std::exception&) {
    print_error("task '" + task + "' failed: " + format_error_report(std::current_exception()));
    return kTaskFailed;
  }
}

}  // namespace

int run_call(const CallOptions& options) {
  const TaskInfo* task = nullptr;
  Args args;
  Kwargs kwargs;
  try {
    Registry registry;
    const Plugin& plugin = registry.load(options.plugin);
    const std::string qualified =
        options.task.find('.') == std::string::npos ? plugin.name() + "." + options.task : options.task;
    task = &registry.task(qualified);
    for (std::size_t i = 0; i < options.args.size(); ++i) {
      args.push_back(parse_json_literal(options.args[i], "argument " + std::to_string(i + 1)));
    }
    for (const auto& pair : options.kwargs) {
      const auto eq = pair.find('=');
      if (eq == std::string::npos || eq == 0) {
        throw ArgumentError("--kw '" + pair + "' must be name=JSON, e.g. --kw width=640");
      }
      const std::string name = pair.substr(0, eq);
      if (kwargs.count(name) != 0) {
        throw ArgumentError("--kw '" + name + "' given twice");
      }
      kwargs.emplace(name, parse_json_literal(pair.substr(eq + 1), "--kw " + name));
    }
  } catch (const Error& e) {
    print_error(e.what());
    return kUsageError;
  }

  if (options.isolated) {
    return run_isolated(options, task->signature.qualified_name, std::move(args), std::move(kwargs));
  }

  Worker worker(0, "call");
  TaskContext context(task->signature.qualified_name, worker);
  try {
    Value result = task->invoke(context, args, kwargs);
    std::cout << result.dump(options.pretty ? 2 : -1, ' ', false, Value::error_handler_t::replace) << '\n';
    return kOk;
  } catch (const ArgumentError& e) {
    print_error(e.what());
    return kUsageError;
  } catch (...) {
    print_error("task '" + task->signature.qualified_name +
                "' failed: " + describe_exception(std::current_exception()));
    return kTaskFailed;
  }
}

}  // namespace troupe::cli
