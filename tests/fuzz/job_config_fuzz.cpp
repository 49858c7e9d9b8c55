// The config loader against arbitrary job definitions: it returns a spec or
// throws ConfigError with problems, never anything else, never a crash or a
// hang. A spec it accepts keeps the promises the pipeline relies on (unique
// names, dependencies on existing other jobs without cycles, one job per
// output, absolute paths) and writes out (to_yaml) as a file that loads back
// to the same text. A first line `--set KEY=VALUE` is applied as an
// override, so addressing jobs by name is fuzzed too.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_target.hpp"
#include "troupe/config.hpp"

namespace {

// Kahn's algorithm: whether every job can run once its dependencies have.
bool acyclic(const std::vector<troupe::JobSpec>& jobs) {
  std::map<std::string, std::size_t> waiting;
  for (const auto& job : jobs) {
    waiting[job.name] = job.after.size();
  }
  std::vector<std::string> ready;
  for (const auto& [name, count] : waiting) {
    if (count == 0) {
      ready.push_back(name);
    }
  }
  std::size_t done = 0;
  while (!ready.empty()) {
    const std::string name = ready.back();
    ready.pop_back();
    ++done;
    for (const auto& job : jobs) {
      for (const auto& dependency : job.after) {
        if (dependency == name && --waiting[job.name] == 0) {
          ready.push_back(job.name);
        }
      }
    }
  }
  return done == jobs.size();
}

void check_promises(const troupe::EngineSpec& spec) {
  std::set<std::string> names;
  std::set<std::string> outputs;
  std::set<std::string> pools;
  for (const auto& pool : spec.pools) {
    pools.insert(pool.name);
  }
  for (const auto& job : spec.jobs) {
    if (job.name.empty() || !names.insert(job.name).second) {
      troupe_fuzz_fail("an empty or repeated job name was accepted: '" + job.name + "'");
    }
    if (!pools.contains(job.pool)) {
      troupe_fuzz_fail("job '" + job.name + "' names pool '" + job.pool + "', which the spec does not have");
    }
    if (!job.output.is_absolute() || !outputs.insert(job.output.string()).second) {
      troupe_fuzz_fail("job '" + job.name + "' has a relative or shared output " + job.output.string());
    }
    if (job.inputs.kind == troupe::JobInputSpec::Kind::range && job.inputs.step == 0) {
      troupe_fuzz_fail("job '" + job.name + "' has a range with step 0");
    }
    if (job.inputs.kind == troupe::JobInputSpec::Kind::from &&
        std::find(job.after.begin(), job.after.end(), job.inputs.from) == job.after.end()) {
      troupe_fuzz_fail("job '" + job.name + "' reads from '" + job.inputs.from + "' without waiting for it");
    }
  }
  for (const auto& job : spec.jobs) {
    for (const auto& dependency : job.after) {
      if (dependency == job.name || !names.contains(dependency)) {
        troupe_fuzz_fail("job '" + job.name + "' waits for itself or an unknown job '" + dependency + "'");
      }
    }
  }
  if (!acyclic(spec.jobs)) {
    troupe_fuzz_fail("accepted jobs whose dependencies form a cycle");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  troupe::config::LoadOptions options{.overrides = {},
                                      .environment = [](const std::string& name) -> std::optional<std::string> {
                                        return name == "N" ? std::optional<std::string>("3") : std::nullopt;
                                      }};
  if (text.starts_with("--set ")) {
    const std::size_t end = std::min(text.find('\n'), text.size());
    options.overrides.emplace_back(text.substr(6, end - 6));
    text.remove_prefix(end);
  }
  troupe::EngineSpec spec;
  try {
    spec = troupe::config::load_string(text, "/fuzz/jobs.yaml", options);
  } catch (const troupe::ConfigError& e) {
    if (e.problems().empty()) {
      troupe_fuzz_fail("a ConfigError without problems");
    }
    return 0;
  } catch (const std::exception& e) {
    troupe_fuzz_fail(std::string("load_string threw something other than ConfigError: ") + e.what());
  }
  check_promises(spec);
  std::string written;
  try {
    written = troupe::config::to_yaml(spec);
    if (troupe::config::to_yaml(troupe::config::load_string(written, "/fuzz/again.yaml", {})) != written) {
      troupe_fuzz_fail("to_yaml output does not load back to the same spec:\n" + written);
    }
  } catch (const troupe::ConfigError& e) {
    troupe_fuzz_fail("to_yaml output does not load:\n" + written + "\n" + e.what());
  }
  return 0;
}

std::vector<std::string> troupe_fuzz_seeds() {
  const std::string pools = "version: 1\npools:\n  cpu: {kind: process}\n  io: {kind: thread}\njobs:\n";
  return {
      pools +
          "  - name: count\n    pool: cpu\n    task: text.word_counts\n    args: [x.txt, 3]\n"
          "    kwargs: {min_count: 2}\n    inputs: {jsonl: data/docs.jsonl, key: id}\n    chunk_size: 64\n"
          "    retries: 2\n    timeout: 1500ms\n    output: results/counts.jsonl\n    after: prep\n"
          "  - name: prep\n    pool: io\n    task: text.upper\n    inputs: {range: [10, -10, -3]}\n"
          "    chunk_size: auto\n    timeout: none\n",
      pools +
          "  - {name: a, pool: io, task: text.upper, inputs: {items: [1, \"two\", {id: 3}, [4], ~, 2.5]}}\n"
          "  - {name: b, pool: cpu, task: text.tally, inputs: {from: a, key: id}, after: [a]}\n",
      pools +
          "  - {name: g.1, pool: cpu, task: text.sha256_file, inputs: {glob: \"corpus/**/*.txt\"}}\n"
          "  - {name: l, pool: cpu, task: text.upper, inputs: {lines: /abs/words.txt}, retries: ${N}}\n",
      "--set jobs.a.retries=4\n" + pools + "  - {name: a, pool: io, task: text.upper, inputs: {range: [0, 5]}}\n",
      "--set jobs.g.1.inputs={range: [0, 2, 1]}\n" + pools +
          "  - {name: g.1, pool: io, task: text.upper, inputs: {items: []}}\n",
      pools +
          "  - {name: a, pool: io, task: text.upper, inputs: {items: [1]}, after: b}\n"
          "  - {name: b, pool: io, task: text.upper, inputs: {from: a}}\n",
      pools +
          "  - {name: a, pool: io, task: text.upper, inputs: {items: [1]}}\n"
          "  - {name: a, pool: io, task: text.upper, inputs: {items: [1]}, output: out/a.jsonl}\n",
  };
}
