#include <CLI/CLI.hpp>

#include <iostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "parse_errors.hpp"
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

  RunOptions run;
  bool resume = false;
  bool retry_failed = false;
  bool overwrite = false;
  CLI::App* run_cmd = app.add_subcommand("run", "Run a configuration file's jobs, one JSON Lines record per item");
  run_cmd->add_option("file", run.file, "The YAML configuration file")->required();
  run_cmd->add_option("--job", run.job, "Run this job only (a `from:` job's upstream output must exist)");
  run_cmd->add_option("--set", run.sets, "Override a key, KEY.PATH=VALUE (repeatable; jobs.NAME.KEY for a job)")
      ->allow_extra_args(false);
  CLI::Option* resume_opt =
      run_cmd->add_flag("--resume", resume, "Continue an existing output: skip the keys it records (ok or failed)");
  CLI::Option* retry_opt = run_cmd->add_flag("--retry-failed", retry_failed,
                                             "Keep an existing output's ok records and run the other items again");
  CLI::Option* overwrite_opt = run_cmd->add_flag("--overwrite", overwrite, "Start existing outputs over, empty");
  resume_opt->excludes(retry_opt)->excludes(overwrite_opt);
  retry_opt->excludes(overwrite_opt);
  run_cmd->add_flag("--fsync", run.fsync, "Sync each record to disk as it is written");
  run_cmd->add_option("--progress", run.progress, "A live progress line per job on stderr")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->default_str("auto");

  std::vector<std::string> words(argv, argv + argc);
  const std::vector<std::string> call_arguments_after_separator = take_call_arguments_after_separator(*call_cmd, words);
  try {
    std::vector<char*> parsed;
    for (std::string& word : words) {
      parsed.push_back(word.data());
    }
    app.parse(static_cast<int>(parsed.size()), parsed.data());
  } catch (const CLI::ParseError& e) {
    return report_parse_error(app, e);
  }

  try {
    if (*inspect_cmd) {
      return run_inspect(inspect);
    }
    if (*call_cmd) {
      collect_call_arguments(*call_cmd, call);
      call.args.insert(call.args.end(), call_arguments_after_separator.begin(), call_arguments_after_separator.end());
      if (!call.config.empty()) {
        return run_call_on_pool(call);
      }
      if (call.task.empty()) {
        print_error("call: the TASK argument is missing: troupe call PLUGIN TASK [ARGS...] (see troupe call --help)");
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
    if (*run_cmd) {
      run.existing = resume         ? troupe::ExistingOutput::resume
                     : retry_failed ? troupe::ExistingOutput::retry_failed
                     : overwrite    ? troupe::ExistingOutput::overwrite
                                    : troupe::ExistingOutput::refuse;
      return run_run(run);
    }
  } catch (const troupe::Error& e) {
    print_error(e.what());
  } catch (...) {
    // The verbs report their own errors; anything else is still reported, never an abort.
    print_error(troupe::describe_exception(std::current_exception()));
  }
  return kUsageError;
}
