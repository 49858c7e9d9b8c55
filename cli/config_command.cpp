// troupe config FILE [--set KEY=VALUE]...: the resolved configuration as
// YAML that loads back to the same spec.
#include <iostream>

#include "commands.hpp"
#include "troupe/config.hpp"

namespace troupe::cli {

int run_config(const ConfigFileOptions& options) {
  try {
    std::cout << config::to_yaml(config::load_file(options.file, {.overrides = options.sets}));
    return kOk;
  } catch (const ConfigError& e) {
    return report_config_error(e);
  }
}

}  // namespace troupe::cli
