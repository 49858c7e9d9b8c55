// What a valid file turns into: every key, defaults, ${VAR}, overrides,
// paths from the file's folder, and the round trip through to_yaml().
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "support/paths.hpp"
#include "troupe/config.hpp"

namespace {

using namespace std::chrono_literals;
using troupe::EngineSpec;
using troupe::ProcessPoolOptions;
using troupe::ThreadPoolOptions;
using troupe::config::load_string;

const std::string kPluginPath = troupe::test::plugin_path("text").string();

troupe::config::LoadOptions with_env(std::map<std::string, std::string> vars, std::vector<std::string> overrides = {}) {
  return {.overrides = std::move(overrides),
          .environment = [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
            auto it = vars.find(name);
            return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
          }};
}

const ThreadPoolOptions& thread_pool(const EngineSpec& spec, const std::string& name) {
  for (const auto& pool : spec.pools) {
    if (pool.name == name) {
      return std::get<ThreadPoolOptions>(pool.options);
    }
  }
  throw std::runtime_error("no pool " + name);
}

const ProcessPoolOptions& process_pool(const EngineSpec& spec, const std::string& name) {
  for (const auto& pool : spec.pools) {
    if (pool.name == name) {
      return std::get<ProcessPoolOptions>(pool.options);
    }
  }
  throw std::runtime_error("no pool " + name);
}

const std::string kFull = R"(version: 1
plugins:
  - path: )" + kPluginPath +
                          R"(
pools:
  cpu:
    kind: process
    workers: auto
    min_workers: 1
    idle_timeout: none
    max_tasks_per_worker: 1000
    recycle_jitter: 10
    max_memory_per_worker: 512MiB
    task_timeout: 30s
    on_worker_crash: break
    startup_timeout: 250ms
    shutdown_grace: 0s
    max_frame: 2MiB
    crash_storm: {max: 3, within: 1m}
    env: {LANG: C, DEPTH: "3"}
    queue_limit: 100
    queue_full_policy: fail
    initializer: {task: text.open_dict, args: [dict.txt]}
    finalizer: text.close_dict
    worker_executable: bin/troupe-worker
  io:
    kind: thread
    workers: 16
    idle_timeout: 10s
    spin_before_sleep: 0s
    queue_full_policy: caller_runs
    initializer:
      task: text.open_dict
      kwargs: {path: words.txt, n: 3, ratio: 0.5, flag: true, none: ~, quoted: "42"}
jobs:
  - name: words
    pool: cpu
    task: text.word_counts
    args: [x.txt]
    kwargs: {min_count: 2}
    inputs: {jsonl: data/docs.jsonl, key: id}
    chunk_size: 16
    retries: 1
    timeout: 90s
    after: [upper]
  - name: upper
    pool: io
    task: text.upper
    inputs: {items: ["a", 1, {k: [true, ~, "$${x}"]}]}
  - name: sums
    pool: io
    task: text.add
    args: [1]
    inputs: {from: words, key: word}
    output: /abs/sums.jsonl
  - name: r
    pool: io
    task: text.upper
    inputs: {range: [-5, 5, 2]}
    timeout: none
  - name: g
    pool: cpu
    task: text.sha256_file
    inputs: {glob: "**/*.txt"}
    chunk_size: auto
  - name: l
    pool: cpu
    task: text.upper
    inputs: {lines: ../l.txt}
)";

TEST(ConfigLoad, EveryKeyReachesItsOption) {
  const EngineSpec spec = load_string(kFull, "/srv/app/troupe.yaml", with_env({}));
  ASSERT_EQ(spec.plugins.size(), 1u);
  EXPECT_EQ(spec.plugins[0].path, kPluginPath);
  ASSERT_EQ(spec.pools.size(), 2u);
  EXPECT_EQ(spec.pools[0].name, "cpu");
  const auto& cpu = process_pool(spec, "cpu");
  EXPECT_EQ(cpu.name, "cpu");
  EXPECT_EQ(cpu.max_workers, 0u);
  EXPECT_EQ(cpu.min_workers, 1u);
  EXPECT_FALSE(cpu.idle_timeout.has_value());
  EXPECT_EQ(cpu.max_tasks_per_worker, 1000u);
  EXPECT_EQ(cpu.recycle_jitter, 10u);
  EXPECT_EQ(cpu.max_memory_per_worker, 512u << 20);
  EXPECT_EQ(cpu.task_timeout, 30s);
  EXPECT_EQ(cpu.on_worker_crash, troupe::OnWorkerCrash::break_pool);
  EXPECT_EQ(cpu.startup_timeout, 250ms);
  EXPECT_EQ(cpu.shutdown_grace, 0s);
  EXPECT_EQ(cpu.max_frame, 2u << 20);
  EXPECT_EQ(cpu.crash_storm.max, 3u);
  EXPECT_EQ(cpu.crash_storm.within, 1min);
  EXPECT_EQ(cpu.env, (std::map<std::string, std::string>{{"LANG", "C"}, {"DEPTH", "3"}}));
  EXPECT_EQ(cpu.queue_limit, 100u);
  EXPECT_EQ(cpu.queue_full_policy, troupe::QueueFullPolicy::fail);
  ASSERT_TRUE(cpu.initializer.has_value());
  EXPECT_EQ(cpu.initializer->task, "text.open_dict");
  EXPECT_EQ(troupe::Value(cpu.initializer->args),
            troupe::Value::parse(R"(["dict.txt"])"));  // arguments stay as written
  EXPECT_EQ(cpu.finalizer->task, "text.close_dict");
  EXPECT_EQ(cpu.worker_executable, "/srv/app/bin/troupe-worker");

  const auto& io = thread_pool(spec, "io");
  EXPECT_EQ(io.max_workers, 16u);
  EXPECT_EQ(io.idle_timeout, 10s);
  EXPECT_EQ(io.spin_before_sleep, 0s);
  EXPECT_EQ(io.queue_full_policy, troupe::QueueFullPolicy::caller_runs);
  EXPECT_EQ(io.registry, nullptr);  // the Engine gives it its own
  ASSERT_TRUE(io.initializer.plugin_call().has_value());
  EXPECT_EQ(troupe::Value(io.initializer.plugin_call()->kwargs),
            troupe::Value::parse(R"({"path": "words.txt", "n": 3, "ratio": 0.5, "flag": true, "none": null,
                                     "quoted": "42"})"));
}

TEST(ConfigLoad, UnsetKeysKeepTheEngineDefaults) {
  const EngineSpec spec = load_string("version: 1\npools:\n  a: {kind: thread}\n  b: {kind: process}\n", "/x.yaml");
  const auto& a = thread_pool(spec, "a");
  const ThreadPoolOptions thread_defaults;
  EXPECT_EQ(a.max_workers, thread_defaults.max_workers);
  EXPECT_EQ(a.idle_timeout, thread_defaults.idle_timeout);
  EXPECT_EQ(a.spin_before_sleep, thread_defaults.spin_before_sleep);
  const auto& b = process_pool(spec, "b");
  const ProcessPoolOptions process_defaults;
  EXPECT_EQ(b.startup_timeout, process_defaults.startup_timeout);
  EXPECT_EQ(b.max_frame, process_defaults.max_frame);
  EXPECT_EQ(b.crash_storm.max, process_defaults.crash_storm.max);
}

TEST(ConfigLoad, EmptyPluginsAndPoolsAreAllowed) {
  const EngineSpec spec = load_string("version: 1\nplugins:\npools:\n", "/x.yaml");
  EXPECT_TRUE(spec.plugins.empty());
  EXPECT_TRUE(spec.pools.empty());
}

TEST(ConfigLoad, VariablesExpandWithDefaultsAndEscapes) {
  const EngineSpec spec = load_string(
      "version: 1\npools:\n  cpu:\n    kind: process\n    workers: ${N}\n    task_timeout: ${T:-5s}\n"
      "    env: {A: \"${EMPTY:-fallback}\", B: \"$${LITERAL}\", C: \"x${N}y\"}\n",
      "/x.yaml", with_env({{"N", "3"}, {"EMPTY", ""}}));
  const auto& cpu = process_pool(spec, "cpu");
  EXPECT_EQ(cpu.max_workers, 3u);
  EXPECT_EQ(cpu.task_timeout, 5s);
  EXPECT_EQ(cpu.env.at("A"), "fallback");
  EXPECT_EQ(cpu.env.at("B"), "${LITERAL}");
  EXPECT_EQ(cpu.env.at("C"), "x3y");
}

TEST(ConfigLoad, RelativePluginPathsResolveFromTheFilesFolder) {
  const auto dir = std::filesystem::path(TROUPE_PLUGIN_DIR);
  const EngineSpec spec =
      load_string("version: 1\nplugins:\n  - libtroupe_text.so\n", dir / "sub" / ".." / "troupe.yaml");
  ASSERT_EQ(spec.plugins.size(), 1u);
  EXPECT_EQ(spec.plugins[0].path, (dir / "libtroupe_text.so").lexically_normal());
}

TEST(ConfigLoad, OverridesSetAddAndReplace) {
  const EngineSpec spec =
      load_string("version: 1\npools:\n  cpu: {kind: thread, workers: 2}\n", "/x.yaml",
                  with_env({}, {"pools.cpu.workers=8", "pools.new.kind=process", "pools.new.task_timeout=1h",
                                "pools.cpu.initializer={task: text.open_dict, args: [a]}"}));
  EXPECT_EQ(thread_pool(spec, "cpu").max_workers, 8u);
  EXPECT_EQ(thread_pool(spec, "cpu").initializer.plugin_call()->task, "text.open_dict");
  EXPECT_EQ(process_pool(spec, "new").task_timeout, 1h);
}

TEST(ConfigLoad, OverrideCanChangeAPoolsKind) {
  const EngineSpec spec =
      load_string("version: 1\npools:\n  cpu: {kind: thread}\n", "/x.yaml", with_env({}, {"pools.cpu.kind=process"}));
  EXPECT_TRUE(std::holds_alternative<ProcessPoolOptions>(spec.pools[0].options));
}

TEST(ConfigLoad, ResolvedConfigReloadsToAnEqualSpec) {
  const EngineSpec first = load_string(kFull, "/srv/app/troupe.yaml", with_env({}));
  const std::string yaml = troupe::config::to_yaml(first);
  const EngineSpec second = load_string(yaml, "/elsewhere/resolved.yaml", with_env({}));
  EXPECT_EQ(troupe::config::to_yaml(second), yaml);
  // Spot checks that the text is not merely stable but faithful.
  const auto& cpu = process_pool(second, "cpu");
  EXPECT_EQ(cpu.startup_timeout, 250ms);
  EXPECT_EQ(cpu.max_memory_per_worker, 512u << 20);
  EXPECT_EQ(cpu.env.at("DEPTH"), "3");
  EXPECT_EQ(cpu.worker_executable, "/srv/app/bin/troupe-worker");
  EXPECT_EQ(second.plugins[0].path, kPluginPath);
  EXPECT_EQ(troupe::Value(thread_pool(second, "io").initializer.plugin_call()->kwargs),
            troupe::Value(thread_pool(first, "io").initializer.plugin_call()->kwargs));
  ASSERT_EQ(second.jobs.size(), 6u);
  EXPECT_EQ(second.jobs[0].output, "/srv/app/out/words.jsonl");
  EXPECT_EQ(second.jobs[0].inputs.path, "/srv/app/data/docs.jsonl");
  EXPECT_EQ(second.jobs[0].inputs.key_field, "id");
  EXPECT_EQ(second.jobs[0].timeout, 90s);
  EXPECT_EQ(second.jobs[0].chunk_size, 16u);
  EXPECT_EQ(second.jobs[0].retries, 1u);
  EXPECT_EQ(troupe::Value(second.jobs[0].kwargs), troupe::Value::parse(R"({"min_count": 2})"));
  EXPECT_EQ(troupe::Value(second.jobs[1].inputs.items),
            troupe::Value::parse(R"(["a", 1, {"k": [true, null, "${x}"]}])"));
  EXPECT_EQ(second.jobs[2].after, std::vector<std::string>{"words"});
  EXPECT_EQ(second.jobs[2].inputs.from, "words");
  EXPECT_EQ(second.jobs[2].output, "/abs/sums.jsonl");
  EXPECT_EQ(second.jobs[3].inputs.start, -5);
  EXPECT_EQ(second.jobs[3].inputs.step, 2);
  EXPECT_EQ(second.jobs[3].timeout, std::nullopt);
  EXPECT_EQ(second.jobs[4].inputs.pattern, "/srv/app/**/*.txt");
  EXPECT_EQ(second.jobs[4].chunk_size, 0u);
  EXPECT_EQ(second.jobs[5].inputs.path, "/srv/l.txt");
}

TEST(ConfigLoad, RoundTripKeepsStringsThatLookLikeOtherThings) {
  const EngineSpec first = load_string(
      "version: 1\npools:\n  io:\n    kind: thread\n    initializer:\n      task: a.b\n"
      "      args: [\"42\", \"true\", \"~\", \"$${HOME}\", \"none\", 1.5e300, -7, \"multi\\nline\"]\n",
      "/x.yaml", with_env({}));
  const EngineSpec second = load_string(troupe::config::to_yaml(first), "/x.yaml", with_env({}));
  EXPECT_EQ(troupe::Value(thread_pool(second, "io").initializer.plugin_call()->args),
            troupe::Value::parse(R"(["42", "true", "~", "${HOME}", "none", 1.5e300, -7, "multi\nline"])"));
}

TEST(ConfigLoad, OddDurationsRoundTripExactly) {
  const EngineSpec first = load_string(
      "version: 1\npools:\n  p:\n    kind: process\n    startup_timeout: 1.5s\n    shutdown_grace: 90m\n"
      "    task_timeout: 7ns\n",
      "/x.yaml");
  const EngineSpec second = load_string(troupe::config::to_yaml(first), "/x.yaml");
  const auto& p = process_pool(second, "p");
  EXPECT_EQ(p.startup_timeout, 1500ms);
  EXPECT_EQ(p.shutdown_grace, 90min);
  EXPECT_EQ(p.task_timeout, 7ns);
}

TEST(ConfigLoad, SpecWithCppHookCannotBeWritten) {
  EngineSpec spec;
  spec.pools.push_back({"io", ThreadPoolOptions{.initializer = [](troupe::Worker&) {
                        }}});
  EXPECT_THROW(troupe::config::to_yaml(spec), troupe::UsageError);
}

TEST(ConfigLoad, LoadFileReadsFromDisk) {
  const auto path = std::filesystem::temp_directory_path() / ("troupe_config_" + std::to_string(::getpid()) + ".yaml");
  {
    std::ofstream out(path);
    out << "version: 1\npools:\n  io: {kind: thread, workers: 3}\n";
  }
  const EngineSpec spec = troupe::config::load_file(path);
  std::filesystem::remove(path);
  EXPECT_EQ(thread_pool(spec, "io").max_workers, 3u);
}

// The timing bar's file (bench/compare/config_compare.cpp times it): every
// pool read, each hook's place kept for config::check.
TEST(ConfigLoad, HundredPoolFileLoadsWithItsHookPlaces) {
  std::string yaml = "version: 1\npools:\n";
  for (int i = 0; i < 100; ++i) {
    yaml += "  p" + std::to_string(i) + ":\n    kind: " + (i % 2 ? "thread" : "process") +
            "\n    workers: 4\n    idle_timeout: 10s\n    max_tasks_per_worker: 100\n    queue_limit: 1000\n"
            "    initializer: {task: text.open_dict, args: [dict.txt]}\n";
  }
  const EngineSpec spec = load_string(yaml, "/x.yaml");
  ASSERT_EQ(spec.pools.size(), 100u);
  const auto& place = spec.sources.at("pools.p99.initializer.args[0]");
  EXPECT_EQ(place.origin, "/x.yaml");
  EXPECT_EQ(place.line, 2 + 99 * 7 + 7);
  EXPECT_EQ(place.column, 48);
}

}  // namespace
