// troupe validate FILE [--set KEY=VALUE]...: the file alone first, then the
// checks that need the plugins (in troupe-worker processes).
#include <iostream>
#include <string>

#include "commands.hpp"
#include "troupe/config.hpp"

namespace troupe::cli {

int report_config_error(const std::exception& error, const std::string& heading) {
  std::string text = heading.empty() ? std::string() : "troupe: error: " + heading + "\n";
  const auto* config_error = dynamic_cast<const ConfigError*>(&error);
  if (config_error == nullptr) {
    text += "troupe: error: " + std::string(error.what()) + "\n";
  } else {
    for (const auto& problem : config_error->problems()) {
      text += problem.to_string() + "\n";
    }
    const std::size_t n = config_error->problems().size();
    text += "troupe: error: " + std::to_string(n) + " problem" + (n == 1 ? "" : "s") + " in the configuration\n";
  }
  std::cerr << text;  // one write: under mpirun, ranks' reports do not interleave
  return kUsageError;
}

int run_validate(const ConfigFileOptions& options) {
  try {
    const EngineSpec spec = config::load_file(options.file, {.overrides = options.sets});
    config::check(spec, options.file);
    std::string pools;
    for (const auto& pool : spec.pools) {
      pools += (pools.empty() ? "" : ", ") + pool.name + " (" + kind_name(pool.options) + ")";
    }
    std::cout << options.file << ": ok: " << spec.plugins.size() << " plugin" << (spec.plugins.size() == 1 ? "" : "s")
              << ", " << spec.pools.size() << " pool" << (spec.pools.size() == 1 ? "" : "s")
              << (pools.empty() ? "" : ": " + pools) << '\n';
    return kOk;
  } catch (const ConfigError& e) {
    return report_config_error(e);
  }
}

}  // namespace troupe::cli
