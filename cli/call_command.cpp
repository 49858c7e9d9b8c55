#include <iostream>

#include "commands.hpp"
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
