// Pools of kind mpi in a configuration file: `local:` read as a thread or
// process pool of its own, the mpi keys, the refusals (each at its exact
// line:col with its whole message), overrides under local, the round trip
// through to_yaml(), and config::check on the local pool's hooks and on jobs
// that run on an mpi pool.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <variant>
#include <vector>

#include "support/paths.hpp"
#include "troupe/config.hpp"

namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using troupe::EngineSpec;
using troupe::MpiPoolOptions;
using troupe::ProcessPoolOptions;
using troupe::ThreadPoolOptions;
using troupe::config::load_string;

const std::string kOrigin = "/cfg/troupe.yaml";
const std::string kPluginPath = troupe::test::plugin_path("text").string();

std::vector<troupe::ConfigProblem> problems_of(const std::string& yaml, std::vector<std::string> overrides = {}) {
  try {
    load_string(yaml, kOrigin, {.overrides = std::move(overrides)});
  } catch (const troupe::ConfigError& e) {
    return e.problems();
  }
  return {};
}

const MpiPoolOptions& mpi_pool(const EngineSpec& spec, const std::string& name) {
  for (const auto& pool : spec.pools) {
    if (pool.name == name) {
      return std::get<MpiPoolOptions>(pool.options);
    }
  }
  throw std::runtime_error("no pool " + name);
}

// Lines 1-4 of most files here.
const std::string kMpiPool = "version: 1\npools:\n  cluster:\n    kind: mpi\n";

const std::string kThreadLocal = R"(version: 1
plugins:
  - path: )" + kPluginPath + R"(
pools:
  cluster:
    kind: mpi
    local:
      kind: thread
      workers: auto
      min_workers: 1
      idle_timeout: 5s
      spin_before_sleep: 0s
      queue_full_policy: caller_runs
      initializer: {task: text.open_dict, args: [dict.txt]}
      finalizer: text.close_dict
    frames_per_worker: 4
    queue_limit: 1000
    queue_full_policy: fail
    startup_timeout: 2m
  io:
    kind: thread
jobs:
  - name: upper
    pool: cluster
    task: text.upper
    inputs: {range: [0, 10]}
    timeout: 30s
)";

const std::string kProcessLocal = R"(version: 1
pools:
  cluster:
    kind: mpi
    local:
      kind: process
      workers: 3
      max_tasks_per_worker: 100
      recycle_jitter: 5
      max_memory_per_worker: 1GiB
      task_timeout: 90s
      on_worker_crash: break
      startup_timeout: 20s
      shutdown_grace: 1s
      max_frame: 8MiB
      crash_storm: {max: 2, within: 30s}
      env: {OMP_NUM_THREADS: "1"}
      queue_limit: 50
      worker_executable: bin/troupe-worker
)";

TEST(MpiPoolConfig, ThreadLocalPoolAndMpiKeysReachTheirOptions) {
  const EngineSpec spec = load_string(kThreadLocal, "/srv/app/troupe.yaml");
  ASSERT_EQ(spec.pools.size(), 2u);
  EXPECT_STREQ(troupe::kind_name(spec.pools[0].options), "mpi");
  const auto& cluster = mpi_pool(spec, "cluster");
  EXPECT_EQ(cluster.name, "cluster");
  EXPECT_EQ(cluster.frames_per_worker, 4u);
  EXPECT_EQ(cluster.queue_limit, 1000u);
  EXPECT_EQ(cluster.queue_full_policy, troupe::QueueFullPolicy::fail);
  EXPECT_EQ(cluster.startup_timeout, 2min);
  ASSERT_TRUE(std::holds_alternative<ThreadPoolOptions>(cluster.local));
  const auto& local = std::get<ThreadPoolOptions>(cluster.local);
  EXPECT_EQ(local.name, "cluster");
  EXPECT_EQ(local.max_workers, 0u);  // auto: on each rank, the node's cores over its ranks
  EXPECT_EQ(local.min_workers, 1u);
  EXPECT_EQ(local.idle_timeout, 5s);
  EXPECT_EQ(local.spin_before_sleep, 0s);
  EXPECT_EQ(local.queue_full_policy, troupe::QueueFullPolicy::caller_runs);
  EXPECT_EQ(local.registry, nullptr);
  ASSERT_TRUE(local.initializer.plugin_call().has_value());
  EXPECT_EQ(local.initializer.plugin_call()->task, "text.open_dict");
  EXPECT_EQ(troupe::Value(local.initializer.plugin_call()->args), troupe::Value::parse(R"(["dict.txt"])"));
  EXPECT_EQ(local.finalizer.plugin_call()->task, "text.close_dict");
  // A job on an mpi pool may have a timeout: an MpiPool takes one per submission.
  ASSERT_EQ(spec.jobs.size(), 1u);
  EXPECT_EQ(spec.jobs[0].pool, "cluster");
  EXPECT_EQ(spec.jobs[0].timeout, 30s);
  // Its hooks are placed where the local pool wrote them, for config::check.
  EXPECT_EQ(spec.sources.at("pools.cluster.local.initializer.args[0]").line, 14);
}

TEST(MpiPoolConfig, ProcessLocalPoolTakesEveryProcessKey) {
  const EngineSpec spec = load_string(kProcessLocal, "/srv/app/troupe.yaml");
  const auto& cluster = mpi_pool(spec, "cluster");
  ASSERT_TRUE(std::holds_alternative<ProcessPoolOptions>(cluster.local));
  const auto& local = std::get<ProcessPoolOptions>(cluster.local);
  EXPECT_EQ(local.name, "cluster");
  EXPECT_EQ(local.max_workers, 3u);
  EXPECT_EQ(local.max_tasks_per_worker, 100u);
  EXPECT_EQ(local.recycle_jitter, 5u);
  EXPECT_EQ(local.max_memory_per_worker, 1u << 30);
  EXPECT_EQ(local.task_timeout, 90s);
  EXPECT_EQ(local.on_worker_crash, troupe::OnWorkerCrash::break_pool);
  EXPECT_EQ(local.startup_timeout, 20s);
  EXPECT_EQ(local.shutdown_grace, 1s);
  EXPECT_EQ(local.max_frame, 8u << 20);
  EXPECT_EQ(local.crash_storm.max, 2u);
  EXPECT_EQ(local.crash_storm.within, 30s);
  EXPECT_EQ(local.env.at("OMP_NUM_THREADS"), "1");
  EXPECT_EQ(local.queue_limit, 50u);
  EXPECT_EQ(local.worker_executable, "/srv/app/bin/troupe-worker");
  // The mpi pool's own startup_timeout and queue are not the local pool's.
  EXPECT_EQ(cluster.startup_timeout, MpiPoolOptions{}.startup_timeout);
  EXPECT_EQ(cluster.queue_limit, std::nullopt);
}

TEST(MpiPoolConfig, MissingLocalIsAProcessPoolWithWorkersAuto) {
  for (const std::string& yaml : {kMpiPool, kMpiPool + "    local:\n"}) {
    const EngineSpec spec = load_string(yaml, kOrigin);
    const auto& cluster = mpi_pool(spec, "cluster");
    ASSERT_TRUE(std::holds_alternative<ProcessPoolOptions>(cluster.local)) << yaml;
    const auto& local = std::get<ProcessPoolOptions>(cluster.local);
    EXPECT_EQ(local.max_workers, 0u);
    EXPECT_EQ(local.name, "cluster");
    EXPECT_EQ(local.startup_timeout, ProcessPoolOptions{}.startup_timeout);
    const MpiPoolOptions defaults;
    EXPECT_EQ(cluster.frames_per_worker, defaults.frames_per_worker);
    EXPECT_EQ(cluster.queue_limit, defaults.queue_limit);
    EXPECT_EQ(cluster.queue_full_policy, defaults.queue_full_policy);
    EXPECT_EQ(cluster.startup_timeout, defaults.startup_timeout);
    EXPECT_TRUE(troupe::validate(cluster).empty());
  }
}

TEST(MpiPoolConfig, WorkersZeroInTheLocalPoolIsAuto) {
  const EngineSpec spec = load_string(kMpiPool + "    local: {kind: thread, workers: 0}\n", kOrigin);
  EXPECT_EQ(std::get<ThreadPoolOptions>(mpi_pool(spec, "cluster").local).max_workers, 0u);
}

struct Malformed {
  const char* name;
  std::string yaml;
  int line;
  int column;
  std::string path;
  std::string message;
  bool whole = true;  // message is the whole message, else a part of it
};

std::vector<Malformed> catalogue() {
  return {
      {"LocalWithoutKind", kMpiPool + "    local:\n      workers: 2\n", 6, 7, "pools.cluster.local.kind",
       "missing key 'kind' (thread or process: the pool each rank runs)"},
      {"LocalOfKindMpi", kMpiPool + "    local:\n      kind: mpi\n", 6, 13, "pools.cluster.local.kind",
       "a pool of kind mpi cannot be another mpi pool's local pool"},
      {"LocalKindTypo", kMpiPool + "    local:\n      kind: proces\n", 6, 13, "pools.cluster.local.kind",
       "expected thread or process, found 'proces'; did you mean 'process'?"},
      {"LocalNotAMap", kMpiPool + "    local: process\n", 5, 12, "pools.cluster.local",
       "expected a map: the pool each rank runs, with kind: thread or process, found 'process'"},
      {"LocalUnknownKeyWithSuggestion", kMpiPool + "    local:\n      kind: process\n      worker: 2\n", 7, 7,
       "pools.cluster.local.worker", "unknown key 'worker'; did you mean 'workers'?"},
      {"ThreadKeyOnProcessLocalPool", kMpiPool + "    local:\n      kind: process\n      spin_before_sleep: 1ms\n", 7,
       7, "pools.cluster.local.spin_before_sleep",
       "'spin_before_sleep' applies to thread pools only; the local pool of 'cluster' is kind: process"},
      {"ProcessKeyOnThreadLocalPoolInFlowStyle", kMpiPool + "    local: {kind: thread, task_timeout: 5s}\n", 5, 27,
       "pools.cluster.local.task_timeout",
       "'task_timeout' applies to process pools only; the local pool of 'cluster' is kind: thread"},
      {"MpiKeyInsideLocalPool", kMpiPool + "    local:\n      kind: thread\n      frames_per_worker: 2\n", 7, 7,
       "pools.cluster.local.frames_per_worker",
       "'frames_per_worker' applies to mpi pools only; the local pool of 'cluster' is kind: thread"},
      {"LocalWorkersNotANumber", kMpiPool + "    local:\n      kind: thread\n      workers: many\n", 7, 16,
       "pools.cluster.local.workers", "expected a whole number from 0 to 18446744073709551615 or auto, found 'many'"},
      {"LocalWorkersOverTheLimitByValidate", kMpiPool + "    local:\n      kind: thread\n      workers: 40000\n", 7, 16,
       "pools.cluster.local.workers", "must be at most 32768 (0: cpu_count() = ", false},
      {"LocalMinWorkersOverMaxByValidate",
       kMpiPool + "    local:\n      kind: process\n      workers: 2\n      min_workers: 3\n", 8, 20,
       "pools.cluster.local.min_workers", "must be at most max_workers (2), found 3"},
      {"LocalCallerRunsOnProcessPool",
       kMpiPool + "    local:\n      kind: process\n      queue_full_policy: caller_runs\n", 7, 26,
       "pools.cluster.local.queue_full_policy", "caller_runs exists only on thread pools", false},
      {"LocalInitializerWithoutPlugin", kMpiPool + "    local:\n      kind: thread\n      initializer: open_dict\n", 7,
       20, "pools.cluster.local.initializer",
       "expected a name 'plugin.name' (the plugin's name, a dot, the registered name), found 'open_dict'"},
      {"WorkersOnMpiPoolBelongUnderLocal", kMpiPool + "    workers: 4\n", 5, 5, "pools.cluster.workers",
       "'workers' is an option of the pool each rank runs: write it under pools.cluster.local (pool 'cluster' is "
       "kind: mpi)"},
      {"TaskTimeoutOnMpiPoolBelongsUnderLocal", kMpiPool + "    task_timeout: 5s\n", 5, 5, "pools.cluster.task_timeout",
       "'task_timeout' is an option of the pool each rank runs: write it under pools.cluster.local (pool 'cluster' "
       "is kind: mpi)"},
      {"UnknownMpiKeyWithSuggestion", kMpiPool + "    frames_per_workr: 2\n", 5, 5, "pools.cluster.frames_per_workr",
       "unknown key 'frames_per_workr'; did you mean 'frames_per_worker'?"},
      {"FramesPerWorkerZero", kMpiPool + "    frames_per_worker: 0\n", 5, 24, "pools.cluster.frames_per_worker",
       "must be between 1 and 1024, found 0"},
      {"FramesPerWorkerOverLimit", kMpiPool + "    frames_per_worker: 1025\n", 5, 24, "pools.cluster.frames_per_worker",
       "must be between 1 and 1024, found 1025"},
      {"FramesPerWorkerAuto", kMpiPool + "    frames_per_worker: auto\n", 5, 24, "pools.cluster.frames_per_worker",
       "expected a whole number from 0 to 18446744073709551615, found 'auto'"},
      {"CallerRunsOnMpiPool", kMpiPool + "    queue_full_policy: caller_runs\n", 5, 24,
       "pools.cluster.queue_full_policy",
       "must be block or fail on an MpiPool: caller_runs exists only on thread pools (rank 0 does not load plugins, "
       "so it cannot run a task itself), found caller_runs"},
      {"PolicyTypoOnMpiPool", kMpiPool + "    queue_full_policy: fial\n", 5, 24, "pools.cluster.queue_full_policy",
       "expected block, fail or caller_runs, found 'fial'; did you mean 'fail'?"},
      {"QueueLimitZeroOnMpiPool", kMpiPool + "    queue_limit: 0\n", 5, 18, "pools.cluster.queue_limit",
       "must be at least 1, or unset for an unbounded queue, found 0"},
      {"StartupTimeoutZeroOnMpiPool", kMpiPool + "    startup_timeout: 0s\n", 5, 22, "pools.cluster.startup_timeout",
       "must be positive, found 0ns"},
      {"SharedOnMpiPool", kMpiPool + "    shared:\n      counters: [hits]\n", 5, 5, "pools.cluster.shared",
       "shared counters and dicts live in one machine's memory: not on a pool of kind mpi"},
      {"SharedInsideLocalPool", kMpiPool + "    local:\n      kind: process\n      shared: {counters: [hits]}\n", 7, 7,
       "pools.cluster.local.shared",
       "shared counters and dicts live in one machine's memory: not on a pool of kind mpi"},
      {"SecondMpiPool", kMpiPool + "  io: {kind: thread}\n  more:\n    kind: mpi\n", 7, 11, "pools.more.kind",
       "only one pool of kind mpi per file (first: 'cluster' at 3:3): every rank but 0 serves that one"},
      {"KindTypoSuggestsMpi", "version: 1\npools:\n  c:\n    kind: mpj\n", 4, 11, "pools.c.kind",
       "expected thread, process or mpi, found 'mpj'; did you mean 'mpi'?"},
      {"MissingKindNamesAllThree", "version: 1\npools:\n  c:\n    local: {kind: thread}\n", 4, 5, "pools.c.kind",
       "missing key 'kind' (thread, process or mpi)"},
      {"LocalOnThreadPool", "version: 1\npools:\n  io:\n    kind: thread\n    local: {kind: process}\n", 5, 5,
       "pools.io.local", "'local' applies to mpi pools only; pool 'io' is kind: thread"},
      {"FramesPerWorkerOnProcessPool", "version: 1\npools:\n  cpu:\n    kind: process\n    frames_per_worker: 2\n", 5,
       5, "pools.cpu.frames_per_worker", "'frames_per_worker' applies to mpi pools only; pool 'cpu' is kind: process"},
      {"StartupTimeoutOnThreadPool", "version: 1\npools:\n  io:\n    kind: thread\n    startup_timeout: 2s\n", 5, 5,
       "pools.io.startup_timeout",
       "'startup_timeout' applies to process and mpi pools only; pool 'io' is kind: thread"},
  };
}

void PrintTo(const Malformed& m, std::ostream* out) {
  *out << m.name;
}

class MalformedMpiPool : public ::testing::TestWithParam<Malformed> {};

TEST_P(MalformedMpiPool, NamesExactPlaceAndFault) {
  const Malformed& m = GetParam();
  const auto problems = problems_of(m.yaml);
  ASSERT_EQ(problems.size(), 1u) << "yaml:\n" << m.yaml << (problems.empty() ? "" : problems[0].to_string());
  const auto& problem = problems.front();
  EXPECT_EQ(problem.origin, kOrigin);
  EXPECT_EQ(problem.line, m.line) << problem.to_string();
  EXPECT_EQ(problem.column, m.column) << problem.to_string();
  EXPECT_EQ(problem.path, m.path) << problem.to_string();
  if (m.whole) {
    EXPECT_EQ(problem.message, m.message) << problem.to_string();
  } else {
    EXPECT_THAT(problem.message, HasSubstr(m.message)) << problem.to_string();
  }
}

INSTANTIATE_TEST_SUITE_P(Catalogue, MalformedMpiPool, ::testing::ValuesIn(catalogue()),
                         [](const auto& entry) { return std::string(entry.param.name); });

TEST(MpiPoolConfig, EveryProblemOfAnMpiPoolAndItsLocalPoolIsReportedAtOnce) {
  const auto problems = problems_of(kMpiPool +
                                    "    local:\n      kind: process\n      workers: x\n      spin_before_sleep: 1ms\n"
                                    "    workers: 2\n    frames_per_worker: y\n    shared: {counters: [a]}\n");
  std::vector<std::string> paths;
  for (const auto& problem : problems) {
    paths.push_back(problem.path);
  }
  EXPECT_THAT(paths, ::testing::UnorderedElementsAre("pools.cluster.local.workers",
                                                     "pools.cluster.local.spin_before_sleep", "pools.cluster.workers",
                                                     "pools.cluster.frames_per_worker", "pools.cluster.shared"));
}

TEST(MpiPoolConfig, ThirdMpiPoolIsRefusedToo) {
  const auto problems = problems_of(kMpiPool + "  b: {kind: mpi}\n  c: {kind: mpi}\n");
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].path, "pools.b.kind");
  EXPECT_EQ(problems[1].path, "pools.c.kind");
  EXPECT_THAT(problems[1].message, HasSubstr("(first: 'cluster' at 3:3)"));
}

TEST(MpiPoolConfig, EmptySharedOnMpiPoolDeclaresNothingAndIsAccepted) {
  const EngineSpec spec = load_string(kMpiPool + "    shared: none\n", kOrigin);
  EXPECT_TRUE(spec.pools[0].shared.empty());
}

TEST(MpiPoolConfig, OverridesReachTheLocalPool) {
  const EngineSpec spec =
      load_string(kMpiPool + "    local:\n      kind: process\n      workers: 2\n", kOrigin,
                  {.overrides = {"pools.cluster.local.workers=6", "pools.cluster.local.task_timeout=1m",
                                 "pools.cluster.frames_per_worker=8"}});
  const auto& cluster = mpi_pool(spec, "cluster");
  const auto& local = std::get<ProcessPoolOptions>(cluster.local);
  EXPECT_EQ(local.max_workers, 6u);
  EXPECT_EQ(local.task_timeout, 1min);
  EXPECT_EQ(cluster.frames_per_worker, 8u);
}

TEST(MpiPoolConfig, OverridesCanMakeAnMpiPoolAndChangeItsLocalKind) {
  const EngineSpec spec = load_string("version: 1\npools:\n  cpu: {kind: process, workers: 2}\n", kOrigin,
                                      {.overrides = {"pools.cluster.kind=mpi", "pools.cluster.local.kind=thread",
                                                     "pools.cluster.local.spin_before_sleep=1ms"}});
  const auto& local = std::get<ThreadPoolOptions>(mpi_pool(spec, "cluster").local);
  EXPECT_EQ(local.spin_before_sleep, 1ms);
}

TEST(MpiPoolConfig, OverrideThatMakesALocalPoolNeedsItsKind) {
  const auto problems = problems_of(kMpiPool, {"pools.cluster.local.workers=4"});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].to_string(),
            "--set pools.cluster.local.workers=4: error: pools.cluster.local.kind: missing key 'kind' (thread or "
            "process: the pool each rank runs)");
  const EngineSpec spec = load_string(
      kMpiPool, kOrigin, {.overrides = {"pools.cluster.local.workers=4", "pools.cluster.local.kind=process"}});
  EXPECT_EQ(std::get<ProcessPoolOptions>(mpi_pool(spec, "cluster").local).max_workers, 4u);
}

TEST(MpiPoolConfig, OverrideProblemsUnderLocalNameTheSetArgument) {
  const auto problems = problems_of(kMpiPool + "    local: {kind: process}\n", {"pools.cluster.local.workers=lots"});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].to_string(),
            "--set pools.cluster.local.workers=lots: error: pools.cluster.local.workers: expected a whole number from "
            "0 to 18446744073709551615 or auto, found 'lots'");
}

TEST(MpiPoolConfig, SecondMpiPoolMadeByAnOverrideIsRefusedThere) {
  const auto problems = problems_of(kMpiPool + "  io: {kind: thread}\n", {"pools.io.kind=mpi"});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].to_string(),
            "--set pools.io.kind=mpi: error: pools.io.kind: only one pool of kind mpi per file (first: 'cluster' at "
            "3:3): every rank but 0 serves that one");
  const auto both_set = problems_of("version: 1\n", {"pools.a.kind=mpi", "pools.b.kind=mpi"});
  ASSERT_EQ(both_set.size(), 1u);
  EXPECT_EQ(both_set[0].to_string(),
            "--set pools.b.kind=mpi: error: pools.b.kind: only one pool of kind mpi per file (first: 'a' at --set "
            "pools.a.kind=mpi): every rank but 0 serves that one");
}

TEST(MpiPoolConfig, ResolvedConfigOfAThreadLocalPoolReloadsToAnEqualSpec) {
  const EngineSpec first = load_string(kThreadLocal, "/srv/app/troupe.yaml");
  const std::string yaml = troupe::config::to_yaml(first);
  const EngineSpec second = load_string(yaml, "/elsewhere/resolved.yaml");
  EXPECT_EQ(troupe::config::to_yaml(second), yaml);
  const auto& cluster = mpi_pool(second, "cluster");
  EXPECT_EQ(cluster.frames_per_worker, 4u);
  EXPECT_EQ(cluster.queue_limit, 1000u);
  EXPECT_EQ(cluster.queue_full_policy, troupe::QueueFullPolicy::fail);
  EXPECT_EQ(cluster.startup_timeout, 2min);
  const auto& local = std::get<ThreadPoolOptions>(cluster.local);
  EXPECT_EQ(local.max_workers, 0u);
  EXPECT_EQ(local.min_workers, 1u);
  EXPECT_EQ(local.idle_timeout, 5s);
  EXPECT_EQ(local.spin_before_sleep, 0s);
  EXPECT_EQ(local.queue_full_policy, troupe::QueueFullPolicy::caller_runs);
  EXPECT_EQ(troupe::Value(local.initializer.plugin_call()->args), troupe::Value::parse(R"(["dict.txt"])"));
  EXPECT_EQ(local.finalizer.plugin_call()->task, "text.close_dict");
  EXPECT_EQ(second.jobs[0].timeout, 30s);
}

TEST(MpiPoolConfig, ResolvedConfigOfAProcessLocalPoolReloadsToAnEqualSpec) {
  const EngineSpec first = load_string(kProcessLocal, "/srv/app/troupe.yaml");
  const std::string yaml = troupe::config::to_yaml(first);
  EXPECT_THAT(yaml, HasSubstr("kind: mpi"));
  const EngineSpec second = load_string(yaml, "/elsewhere/resolved.yaml");
  EXPECT_EQ(troupe::config::to_yaml(second), yaml);
  const auto& local = std::get<ProcessPoolOptions>(mpi_pool(second, "cluster").local);
  EXPECT_EQ(local.max_workers, 3u);
  EXPECT_EQ(local.task_timeout, 90s);
  EXPECT_EQ(local.startup_timeout, 20s);
  EXPECT_EQ(local.max_frame, 8u << 20);
  EXPECT_EQ(local.crash_storm.within, 30s);
  EXPECT_EQ(local.env.at("OMP_NUM_THREADS"), "1");
  EXPECT_EQ(local.worker_executable, "/srv/app/bin/troupe-worker");
  EXPECT_EQ(mpi_pool(second, "cluster").startup_timeout, MpiPoolOptions{}.startup_timeout);
}

TEST(MpiPoolConfig, SpecWithSharedStateOnAnMpiPoolCannotBeWritten) {
  EngineSpec spec;
  spec.pools.push_back({"cluster", MpiPoolOptions{}, troupe::SharedDeclarations{.counters = {"hits"}, .dicts = {}}});
  EXPECT_THROW(troupe::config::to_yaml(spec), troupe::UsageError);
}

TEST(MpiPoolConfig, SpecWithACppHookOnTheLocalPoolCannotBeWritten) {
  EngineSpec spec;
  spec.pools.push_back({"cluster", MpiPoolOptions{.local = ThreadPoolOptions{.initializer = [](troupe::Worker&) {
                                                  }}}});
  EXPECT_THROW(troupe::config::to_yaml(spec), troupe::UsageError);
}

// config::check runs a troupe-worker on the file's plugins: an mpi pool's
// ranks load the same ones.
std::vector<troupe::ConfigProblem> check_problems(const std::string& yaml) {
  const EngineSpec spec = load_string(yaml, kOrigin);
  try {
    troupe::config::check(spec, kOrigin);
  } catch (const troupe::ConfigError& e) {
    return e.problems();
  }
  return {};
}

// Lines 1-6: version, the text plugin, an mpi pool.
const std::string kChecked = "version: 1\nplugins:\n  - path: " + kPluginPath + "\npools:\n  cluster:\n    kind: mpi\n";

TEST(MpiPoolConfig, CheckAcceptsLocalHooksAndJobsThatBind) {
  // Without the job's timeout, which thread ranks cannot enforce (the test below).
  std::string file = kThreadLocal;
  file.erase(file.find("    timeout: 30s\n"), std::string("    timeout: 30s\n").size());
  EXPECT_TRUE(check_problems(file).empty());
}

TEST(MpiPoolConfig, CheckPlacesAMisspeltLocalInitializerAtItsTask) {
  const auto problems = check_problems(kChecked +
                                       "    local:\n      kind: process\n      initializer:\n"
                                       "        task: text.open_dic\n        args: [d.txt]\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].to_string(),
            kOrigin +
                ":10:15: error: pools.cluster.local.initializer.task: no initializer 'text.open_dic' in the plugins; "
                "did you mean 'text.open_dict'?");
}

TEST(MpiPoolConfig, CheckSaysALocalFinalizerNamingAnInitializerIsOne) {
  const auto problems = check_problems(kChecked + "    local:\n      kind: thread\n      finalizer: text.open_dict\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].line, 9);
  EXPECT_EQ(problems[0].column, 18);
  EXPECT_EQ(problems[0].path, "pools.cluster.local.finalizer.task");
  EXPECT_THAT(problems[0].message, HasSubstr("('text.open_dict' is an initializer)"));
}

TEST(MpiPoolConfig, CheckRefusesAnUnknownTaskOfAJobOnAnMpiPoolAtItsLine) {
  const auto problems = check_problems(kChecked +
                                       "jobs:\n  - name: up\n    pool: cluster\n    task: text.uper\n"
                                       "    inputs: {range: [0, 3]}\n    timeout: 10s\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].to_string(), kOrigin +
                                         ":10:11: error: jobs[0].task: job 'up': no task 'text.uper' in the plugins; "
                                         "did you mean 'text.upper'?");
}

TEST(MpiPoolConfig, CheckRefusesAJobTimeoutOnAnMpiPoolWhoseRanksRunThreads) {
  const auto problems = check_problems(kChecked +
                                       "    local: {kind: thread}\n"
                                       "jobs:\n  - name: up\n    pool: cluster\n    task: text.upper\n"
                                       "    inputs: {items: [a]}\n    timeout: 10s\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].line, 13);
  EXPECT_EQ(problems[0].column, 14);
  EXPECT_EQ(problems[0].path, "jobs[0].timeout");
  EXPECT_THAT(problems[0].message, HasSubstr("needs its local pool to be of kind process"));
  // The same job on process ranks is fine.
  EXPECT_TRUE(check_problems(kChecked + "    local: {kind: process}\n"
                                        "jobs:\n  - name: up\n    pool: cluster\n    task: text.upper\n"
                                        "    inputs: {items: [a]}\n    timeout: 10s\n")
                  .empty());
}

}  // namespace
