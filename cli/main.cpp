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
  add_call_options(*call_cmd, call);
  app.footer(kExitCodesHelp);

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
      collect_call_arguments(*call_cmd, call);
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
  } catch (const troupe::Error& e) {
    print_error(e.what());
  } catch (...) {
    // The verbs report their own errors; anything else is still reported, never an abort.
    print_error(troupe::describe_exception(std::current_exception()));
  }
  return kUsageError;
}
