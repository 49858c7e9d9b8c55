#include <CLI/CLI.hpp>

#include <iostream>

#include "commands.hpp"
#include "troupe/errors.hpp"
#include "troupe/sdk/config.hpp"

int main(int argc, char** argv) {
  using namespace troupe::cli;
  CLI::App app{"troupe: run plugin tasks on worker pools", "troupe"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("troupe ") + TROUPE_VERSION_STRING);

  InspectOptions inspect;
  CLI::App* inspect_cmd = app.add_subcommand("inspect", "List a plugin's name, version, ABI, tasks and hooks");
  inspect_cmd->add_option("plugin", inspect.plugin, "Path to the plugin's .so file")->required();
  inspect_cmd->add_flag("--json", inspect.json, "Print the description as JSON");

  CallOptions call;
  CLI::App* call_cmd = app.add_subcommand("call", "Run one plugin task in this process and print its result as JSON");
  call_cmd->add_option("plugin", call.plugin, "Path to the plugin's .so file")->required();
  call_cmd->add_option("task", call.task, "Task name: 'task' or 'plugin.task'");
  call_cmd->add_option("args", call.args,
                       "Positional arguments, each a JSON literal (42, 1.5, true, '\"text\"', '[1,2]')");
  call_cmd->add_option("--kw", call.kwargs, "Keyword argument name=JSON (repeatable)")->allow_extra_args(false);
  call_cmd->add_flag("--pretty", call.pretty, "Indent the JSON result");
  call_cmd->add_flag("--isolated", call.isolated,
                     "Run the task in a troupe-worker process: a crash or hang cannot take the CLI down");
  call_cmd->add_option("--timeout", call.timeout, "With --isolated: kill the task after this long (250ms, 30s, 5m)");
  call_cmd->add_option("--config", call.config,
                       "Run on a pool of this configuration file: troupe call --config FILE --pool NAME "
                       "plugin.task ARGS...");
  call_cmd->add_option("--pool", call.pool, "With --config: the pool to run on");
  call_cmd->add_option("--set", call.sets, "With --config: override a key, KEY.PATH=VALUE (repeatable)")
      ->allow_extra_args(false);

  ConfigFileOptions validate;
  CLI::App* validate_cmd =
      app.add_subcommand("validate", "Check a configuration file, its plugins and its pools' initializers");
  validate_cmd->add_option("file", validate.file, "The YAML configuration file")->required();
  validate_cmd->add_option("--set", validate.sets, "Override a key, KEY.PATH=VALUE (repeatable)")
      ->allow_extra_args(false);

  ConfigFileOptions resolved;
  CLI::App* config_cmd = app.add_subcommand(
      "config", "Print the resolved configuration: defaults filled in, variables expanded, paths absolute");
  config_cmd->add_option("file", resolved.file, "The YAML configuration file")->required();
  config_cmd->add_option("--set", resolved.sets, "Override a key, KEY.PATH=VALUE (repeatable)")
      ->allow_extra_args(false);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kOk : kUsageError;
  }

  try {
    if (*inspect_cmd) {
      return run_inspect(inspect);
    }
    if (*call_cmd) {
      if (!call.config.empty()) {
        return run_call_on_pool(call);
      }
      if (call.task.empty()) {
        print_error("call: the TASK argument is required: troupe call PLUGIN TASK ARGS...");
        return kUsageError;
      }
      return run_call(call);
    }
    if (*validate_cmd) {
      return run_validate(validate);
    }
    if (*config_cmd) {
      return run_config(resolved);
    }
  } catch (...) {
    // The verbs report their own errors; anything else is still reported, never an abort.
    print_error(troupe::describe_exception(std::current_exception()));
  }
  return kUsageError;
}
