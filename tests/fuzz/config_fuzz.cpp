// The config loader against arbitrary text: it returns a spec or throws
// ConfigError, never anything else, never a crash or a hang; and a spec it
// accepts writes out (to_yaml) as a file that loads back to the same text.
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_target.hpp"
#include "troupe/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const troupe::config::LoadOptions options{.overrides = {},
                                            .environment = [](const std::string& name) -> std::optional<std::string> {
                                              return name == "SET" ? std::optional<std::string>("4") : std::nullopt;
                                            }};
  troupe::EngineSpec spec;
  try {
    spec = troupe::config::load_string(text, "/fuzz/troupe.yaml", options);
  } catch (const troupe::ConfigError& e) {
    if (e.problems().empty()) {
      troupe_fuzz_fail("a ConfigError without problems");
    }
    return 0;
  } catch (const std::exception& e) {
    troupe_fuzz_fail(std::string("load_string threw something other than ConfigError: ") + e.what());
  }
  std::string written;
  try {
    written = troupe::config::to_yaml(spec);
    if (troupe::config::to_yaml(troupe::config::load_string(written, "/fuzz/again.yaml", options)) != written) {
      troupe_fuzz_fail("to_yaml output does not load back to the same spec:\n" + written);
    }
  } catch (const troupe::ConfigError& e) {
    troupe_fuzz_fail("to_yaml output does not load:\n" + written + "\n" + e.what());
  } catch (const troupe::UsageError&) {
    // A value a file cannot hold (binary): refused by to_yaml, as documented.
  }
  return 0;
}

std::vector<std::string> troupe_fuzz_seeds() {
  return {
      "version: 1\npools:\n  cpu: {kind: process, workers: auto, task_timeout: 30s, max_memory_per_worker: 512MiB}\n",
      "version: 1\npools:\n  io:\n    kind: thread\n    workers: ${SET}\n    idle_timeout: none\n"
      "    initializer: {task: text.open_dict, args: [dict.txt, 1, 2.5, true, ~], kwargs: {a: \"b\"}}\n",
      "version: 1\npools:\n  p:\n    kind: process\n    crash_storm: {max: 2, within: 1m}\n    env: {A: \"$${X}\"}\n"
      "    on_worker_crash: break\n    queue_limit: 10\n    queue_full_policy: fail\n",
      "version: 1\nplugins: []\npools: {}\n",
      "version: 1\npools:\n  a: &x {kind: thread}\n  b: *x\n",
      "version: 1\npools:\n  c:\n    kind: mpi\n    local: {kind: process, workers: auto, task_timeout: 5s}\n"
      "    frames_per_worker: 4\n    queue_limit: 100\n    queue_full_policy: fail\n    startup_timeout: 2m\n",
      "version: 1\npools:\n  c:\n    kind: mpi\n    local:\n      kind: thread\n      spin_before_sleep: 0s\n"
      "      initializer: {task: a.b, args: [1]}\n",
  };
}
