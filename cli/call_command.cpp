#include <exception>
#include <iostream>
#include <optional>

#include "commands.hpp"
#include "troupe/errors.hpp"
#include "troupe/process_errors.hpp"
#include "troupe/process_pool.hpp"
#include "troupe/registry.hpp"

namespace troupe::cli {
namespace {

void print_result(const CallOptions& options, const Value& result) {
  std::cout << result.dump(options.pretty ? 2 : -1, ' ', false, Value::error_handler_t::replace) << '\n';
}

std::exception_ptr nested_of(const std::exception& e) {
  const auto* nested = dynamic_cast<const std::nested_exception*>(&e);
  return nested != nullptr ? nested->nested_ptr() : nullptr;
}

// Whether a plugin error (in this process or in a worker) is in the chain.
bool caused_by_plugin_error(std::exception_ptr error) {
  while (error != nullptr) {
    try {
      std::rethrow_exception(error);
    } catch (const PluginError&) {
      return true;
    } catch (const RemoteError& e) {
      if (e.remote_type() == "troupe::PluginError") {
        return true;
      }
      error = nested_of(e);
    } catch (const std::exception& e) {
      error = nested_of(e);
    } catch (...) {
      return false;
    }
  }
  return false;
}

// The worker's task table qualifies a bare task name: the plugin is never
// loaded into this process.
std::string qualified_in(const ProcessPool& pool, const std::string& task) {
  if (task.find('.') != std::string::npos) {
    return task;
  }
  for (const std::string& name : pool.task_names()) {
    if (name.substr(name.find('.') + 1) == task) {
      return name;
    }
  }
  return task;  // the pool refuses it with the names it has
}

// Starts the one worker and waits until it is ready (plugin loaded).
// Returns the exit code of a failed start, or nullopt.
std::optional<int> start_worker(ProcessPool& pool) {
  try {
    // An empty chunk is a round trip through a started worker.
    pool.submit_chunk("", {}).get();
    return std::nullopt;
  } catch (const std::exception&) {
    const auto error = std::current_exception();
    const bool plugin = caused_by_plugin_error(error);
    print_error(std::string(plugin ? "the plugin could not be loaded in the worker process: "
                                   : "the worker process could not start: ") +
                format_error_report(error));
    return plugin ? kUsageError : kPoolBroken;
  }
}

// The task runs in one troupe-worker process, which alone loads the
// plugin; remote errors, crashes and timeouts come back as troupe errors
// and are printed in full.
int run_isolated(const CallOptions& options, CallInputs inputs) {
  ProcessPoolOptions pool_options;
  pool_options.max_workers = 1;
  pool_options.name = "call";
  // One call, one worker: the first worker that dies or hangs before it is
  // ready breaks the pool with that cause (exit 3) instead of respawning,
  // and a crash during the task fails the task itself (exit 1).
  pool_options.crash_storm.max = 1;
  if (inputs.timeout) {
    pool_options.task_timeout = *inputs.timeout;
  }
  std::optional<ProcessPool> pool;
  try {
    pool.emplace(std::vector<std::filesystem::path>{options.plugin}, pool_options);
  } catch (const Error& e) {
    print_error(e.what());
    return kUsageError;
  }
  if (const auto failed = start_worker(*pool)) {
    return *failed;
  }
  const std::string task = qualified_in(*pool, options.task);
  try {
    Value result = pool->submit_call(Call{task, std::move(inputs.args), std::move(inputs.kwargs)}).get();
    pool->shutdown(ProcessShutdownOptions{});
    print_result(options, result);
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

int run_in_process(const CallOptions& options, CallInputs inputs) {
  const TaskInfo* task = nullptr;
  try {
    Registry registry;
    const Plugin& plugin = registry.load(options.plugin);
    const std::string qualified =
        options.task.find('.') == std::string::npos ? plugin.name() + "." + options.task : options.task;
    task = &registry.task(qualified);
  } catch (const Error& e) {
    print_error(e.what());
    return kUsageError;
  }
  Worker worker(0, "call");
  TaskContext context(task->signature.qualified_name, worker);
  try {
    print_result(options, task->invoke(context, inputs.args, inputs.kwargs));
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

}  // namespace

int run_call(const CallOptions& options) {
  CallInputs inputs;
  try {
    inputs = read_call_inputs(options);
  } catch (const Error& e) {
    print_error(e.what());
    return kUsageError;
  }
  return options.isolated ? run_isolated(options, std::move(inputs)) : run_in_process(options, std::move(inputs));
}

}  // namespace troupe::cli
