// The config loader against arbitrary job definitions: it returns a spec or
// throws ConfigError with problems, never anything else, never a crash or a
// hang. A spec it accepts keeps the promises the pipeline relies on (unique
// names, dependencies on existing other jobs without cycles, one job per
// output and none read as an input, absolute paths) and writes out (to_yaml) as a file that loads back
// to the same text. A first line `--set KEY=VALUE` is applied as an
// override, so addressing jobs by name is fuzzed too. Each input is also
// read as choices that build a job file (generated_file), so the checks
// across jobs see many well-formed files, not only broken YAML.
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
    const bool reads_file =
        job.inputs.kind == troupe::JobInputSpec::Kind::lines || job.inputs.kind == troupe::JobInputSpec::Kind::jsonl;
    if (reads_file && outputs.contains(job.inputs.path.string())) {
      troupe_fuzz_fail("job '" + job.name + "' reads " + job.inputs.path.string() + ", which a job writes");
    }
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

// The bytes as choices of a job file built from parts, so that the checks
// across jobs (names, dependencies, cycles, outputs, overrides) are reached
// far more often than by mutated text, which mostly breaks the YAML. Each
// list starts with its valid parts; an input of odd length keeps to those, so
// whole files are accepted often enough to test what an accepted spec
// promises.
class Choices {
 public:
  explicit Choices(std::string_view bytes) : bytes_(bytes) {}
  bool left() const { return at_ < bytes_.size(); }
  std::size_t next(std::size_t n) { return left() ? static_cast<unsigned char>(bytes_[at_++]) % n : 0; }
  const char* pick(const std::vector<const char*>& options, std::size_t valid) {
    return options[next(valid_only_ ? valid : options.size())];
  }
  void keep_to_valid(bool on) { valid_only_ = on; }

 private:
  std::string_view bytes_;
  std::size_t at_ = 0;
  bool valid_only_ = false;
};

std::string generated_file(std::string_view bytes, std::vector<std::string>& overrides) {
  static const std::vector<const char*> kNames = {"a", "b", "c", "a.b", "d-1", "", "a/b"};
  static const std::vector<const char*> kPools = {"cpu", "io", "cpux", "", "[cpu]"};
  static const std::vector<const char*> kTasks = {"text.upper", "text.add", "t.a.b", "upper", "", ".x"};
  static const std::vector<const char*> kInputs = {"{items: [1, \"two\", {id: 3}]}",
                                                   "{range: [0, 10]}",
                                                   "{range: [5, -5, -2]}",
                                                   "{lines: l.txt}",
                                                   "{jsonl: d.jsonl, key: id}",
                                                   "{glob: \"**/*.txt\"}",
                                                   "{from: a}",
                                                   "{from: b, key: k}",
                                                   "{from: c}",
                                                   "{range: [0, 1, 0]}",
                                                   "{lines: o.jsonl}",
                                                   "{range: [0, 3], key: id}",
                                                   "{}",
                                                   "{items: [1], range: [0, 1]}",
                                                   "{range: [a, 9223372036854775808]}",
                                                   "[1]",
                                                   "{items: 3}"};
  static const std::vector<const char*> kExtras = {"",
                                                   ", after: a",
                                                   ", after: [b, c]",
                                                   ", after: a.b",
                                                   ", output: o.jsonl",
                                                   ", output: ./out/a.jsonl",
                                                   ", chunk_size: auto",
                                                   ", chunk_size: 7",
                                                   ", retries: 3",
                                                   ", timeout: 2s",
                                                   ", timeout: none",
                                                   ", args: [1, x]",
                                                   ", kwargs: {b: 2}",
                                                   ", after: [d-1, nowhere]",
                                                   ", chunk_size: 0",
                                                   ", retries: -1",
                                                   ", timeout: 0s",
                                                   ", args: {a: 1}",
                                                   ", taks: text.upper"};
  static const std::vector<const char*> kOverrides = {"",
                                                      "jobs.a.retries=2",
                                                      "jobs.a.b.chunk_size=4",
                                                      "jobs.b.after=[a]",
                                                      "jobs.c.inputs={from: a}",
                                                      "jobs=[]",
                                                      "jobs.nowhere.retries=1",
                                                      "jobs.a=5",
                                                      "jobs.0.task=text.upper"};
  Choices choices(bytes);
  // Not a byte the mutations of a seed keep (seeds start alike).
  const bool valid_only = bytes.size() % 2 == 1;
  choices.keep_to_valid(valid_only);
  std::string file = "version: 1\npools:\n  cpu: {kind: process}\n  io: {kind: thread}\njobs:\n";
  const std::size_t jobs = 1 + choices.next(5);
  for (std::size_t job = 0; job < jobs; ++job) {
    // Valid files name their jobs a, b, c, ... so their dependencies exist.
    const char* name = valid_only ? kNames[job] : choices.pick(kNames, 5);
    file += std::string("  - {name: \"") + name + "\", pool: \"" + choices.pick(kPools, 2) + "\", task: \"" +
            choices.pick(kTasks, 3) + "\", inputs: " + choices.pick(kInputs, 9) + choices.pick(kExtras, 13) +
            choices.pick(kExtras, 13) + "}\n";
  }
  if (const std::string set = choices.pick(kOverrides, 6); !set.empty()) {
    overrides.push_back(set);
  }
  return file;
}

}  // namespace

namespace {

void load_and_check(std::string_view text, std::vector<std::string> overrides) {
  const troupe::config::LoadOptions options{.overrides = std::move(overrides),
                                            .environment = [](const std::string& name) -> std::optional<std::string> {
                                              return name == "N" ? std::optional<std::string>("3") : std::nullopt;
                                            }};
  troupe::EngineSpec spec;
  try {
    spec = troupe::config::load_string(text, "/fuzz/jobs.yaml", options);
  } catch (const troupe::ConfigError& e) {
    if (e.problems().empty()) {
      troupe_fuzz_fail("a ConfigError without problems");
    }
    return;
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
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> generated_overrides;
  const std::string generated = generated_file(text, generated_overrides);
  load_and_check(generated, std::move(generated_overrides));
  std::vector<std::string> overrides;
  if (text.starts_with("--set ")) {
    const std::size_t end = std::min(text.find('\n'), text.size());
    overrides.emplace_back(text.substr(6, end - 6));
    text.remove_prefix(end);
  }
  load_and_check(text, std::move(overrides));
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
