// A catalogue of malformed configuration files: each gets its exact
// line:col and the fault named. Files are written as a user would (block
// style), so the positions are the ones an editor shows.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/paths.hpp"
#include "troupe/config.hpp"

namespace {

using ::testing::HasSubstr;

struct Malformed {
  const char* name;
  std::string yaml;
  int line;
  int column;
  std::string message;  // a part of the first problem's message that names the fault
};

std::vector<troupe::ConfigProblem> problems_of(const std::string& yaml, std::vector<std::string> overrides = {}) {
  try {
    troupe::config::load_string(
        yaml, "/cfg/troupe.yaml",
        {.overrides = std::move(overrides), .environment = [](const std::string& name) -> std::optional<std::string> {
           if (name == "WORKERS") {
             return "4";
           }
           return std::nullopt;
         }});
  } catch (const troupe::ConfigError& e) {
    return e.problems();
  }
  return {};
}

const std::string kPlugin = "plugins:\n  - path: " + troupe::test::plugin_path("text").string() + "\n";

std::vector<Malformed> catalogue() {
  return {
      {"TruncatedFlowMap", "version: 1\npools:\n  cpu: {kind: thread, workers: 2\n", 4, 1, "YAML syntax"},
      {"UnclosedFlowList", "version: 1\npools:\n  cpu:\n    kind: thread\n    workers: [1, 2\n", 6, 1, "YAML syntax"},
      {"QuoteLeftOpenReadsOnAsText", "version: 1\npools:\n  cpu:\n    kind: \"thread\n", 4, 11,
       "found 'thread '; did you mean 'thread'"},
      {"TabIndentation", "version: 1\npools:\n\tcpu: {}\n", 3, 5, "YAML syntax: illegal map value"},
      {"MissingVersion", "pools: {}\n", 1, 1, "missing key 'version'"},
      {"WrongVersion", "version: 2\n", 1, 10, "expected 1"},
      {"TopLevelList", "- version: 1\n", 1, 1, "expected a map with version, plugins, pools and jobs"},
      {"EmptyDocument", "", 1, 1, "expected a map"},
      {"UnknownTopKeyWithSuggestion", "version: 1\npool: {}\n", 2, 1, "did you mean 'pools'"},
      {"JobsNotAList", "version: 1\njobs: {a: 1}\n", 2, 7, "expected a list of jobs"},
      {"DuplicateTopKey", "version: 1\npools: {}\npools: {}\n", 3, 1,
       "duplicate key 'pools' (first at line 2, column 1)"},
      {"DuplicatePoolKey", "version: 1\npools:\n  cpu:\n    kind: thread\n    workers: 2\n    workers: 3\n", 6, 5,
       "duplicate key 'workers'"},
      {"DuplicatePoolName", "version: 1\npools:\n  cpu: {kind: thread}\n  cpu: {kind: process}\n", 4, 3,
       "duplicate key 'cpu'"},
      {"PoolsNotAMap", "version: 1\npools:\n  - cpu\n", 3, 3, "expected a map of pool name -> options"},
      {"PoolNotAMap", "version: 1\npools:\n  cpu: 4\n", 3, 8, "expected a map of pool options"},
      {"MissingKind", "version: 1\npools:\n  cpu:\n    workers: 2\n", 4, 5, "missing key 'kind'"},
      {"UnknownKindWithSuggestion", "version: 1\npools:\n  cpu:\n    kind: proces\n", 4, 11,
       "found 'proces'; did you mean 'process'"},
      {"UnknownPoolKeyWithSuggestion", "version: 1\npools:\n  cpu:\n    kind: thread\n    worker: 2\n", 5, 5,
       "unknown key 'worker'; did you mean 'workers'"},
      {"ProcessOnlyKeyOnThreadPool", "version: 1\npools:\n  io:\n    kind: thread\n    task_timeout: 5s\n", 5, 5,
       "'task_timeout' applies to process pools only; pool 'io' is kind: thread"},
      {"ThreadOnlyKeyOnProcessPool", "version: 1\npools:\n  cpu:\n    kind: process\n    spin_before_sleep: 1ms\n", 5,
       5, "applies to thread pools only"},
      {"WorkersNotANumber", "version: 1\npools:\n  cpu:\n    kind: thread\n    workers: many\n", 5, 14,
       "expected a whole number from 0 to 18446744073709551615 or auto, found 'many'"},
      {"WorkersNegative", "version: 1\npools:\n  cpu:\n    kind: thread\n    workers: -1\n", 5, 14, "found '-1'"},
      {"WorkersHuge", "version: 1\npools:\n  cpu:\n    kind: thread\n    workers: 99999999999999999999999\n", 5, 14,
       "expected a whole number"},
      {"WorkersAList", "version: 1\npools:\n  cpu:\n    kind: thread\n    workers: [1, 2]\n", 5, 14, "found a list"},
      {"DurationUnknownUnit", "version: 1\npools:\n  cpu:\n    kind: thread\n    idle_timeout: 5 parsecs\n", 5, 19,
       "unknown duration unit 'parsecs'"},
      {"DurationNegative", "version: 1\npools:\n  cpu:\n    kind: process\n    task_timeout: -1s\n", 5, 19,
       "got '-1s'"},
      {"TaskTimeoutZeroRefusedByValidate", "version: 1\npools:\n  cpu:\n    kind: process\n    task_timeout: 0s\n", 5,
       19, "must be positive, or unset for no timeout, found 0ns"},
      {"DurationHuge", "version: 1\npools:\n  cpu:\n    kind: process\n    startup_timeout: 999999999999h\n", 5, 22,
       "too long"},
      {"SizeBadUnit", "version: 1\npools:\n  cpu:\n    kind: process\n    max_memory_per_worker: 2 GBs\n", 5, 28,
       "unknown size unit"},
      {"MaxFrameTooSmallRefusedByValidate", "version: 1\npools:\n  cpu:\n    kind: process\n    max_frame: 100\n", 5,
       16, "between 1024 and 4294967295 bytes"},
      {"MinWorkersOverMax", "version: 1\npools:\n  cpu:\n    kind: thread\n    workers: 2\n    min_workers: 3\n", 6, 18,
       "must be at most max_workers (2), found 3"},
      {"QueueLimitZero", "version: 1\npools:\n  cpu:\n    kind: thread\n    queue_limit: 0\n", 5, 18,
       "must be at least 1"},
      {"CallerRunsOnProcessPool", "version: 1\npools:\n  cpu:\n    kind: process\n    queue_full_policy: caller_runs\n",
       5, 24, "caller_runs exists only on thread pools"},
      {"PolicyTypo", "version: 1\npools:\n  cpu:\n    kind: thread\n    queue_full_policy: blok\n", 5, 24,
       "did you mean 'block'"},
      {"CrashStormNestedUnknownKey", "version: 1\npools:\n  cpu:\n    kind: process\n    crash_storm:\n      maxx: 3\n",
       6, 7, "unknown key 'maxx'; did you mean 'max'"},
      {"CrashStormWithinZero",
       "version: 1\npools:\n  cpu:\n    kind: process\n    crash_storm:\n      max: 3\n      within: 0s\n", 7, 15,
       "positive while crash_storm.max > 0"},
      {"OnWorkerCrashTypo", "version: 1\npools:\n  cpu:\n    kind: process\n    on_worker_crash: brake\n", 5, 22,
       "did you mean 'break'"},
      {"InitializerWithoutPlugin", "version: 1\npools:\n  cpu:\n    kind: thread\n    initializer: open_dict\n", 5, 18,
       "a name 'plugin.name'"},
      {"InitializerMapMissingTask", "version: 1\npools:\n  cpu:\n    kind: thread\n    initializer:\n      args: [1]\n",
       6, 7, "missing key 'task'"},
      {"InitializerArgsNotAList",
       "version: 1\npools:\n  cpu:\n    kind: thread\n    initializer:\n      task: text.open_dict\n      args: x\n", 7,
       13, "a list of positional arguments"},
      {"InitializerUnknownNestedKey",
       "version: 1\npools:\n  cpu:\n    kind: thread\n    initializer:\n      task: text.open_dict\n      kwarg: {}\n",
       7, 7, "did you mean 'kwargs'"},
      {"EnvValueNotAString", "version: 1\npools:\n  cpu:\n    kind: process\n    env:\n      A: [1]\n", 6, 10,
       "expected a string value"},
      {"EnvNameWithEquals", "version: 1\npools:\n  cpu:\n    kind: process\n    env:\n      \"A=B\": x\n", 6, 7,
       "variable names that are non-empty, without '='"},
      {"UnsetVariable", "version: 1\npools:\n  cpu:\n    kind: thread\n    workers: ${NOPE}\n", 5, 14,
       "environment variable NOPE is not set"},
      {"UnterminatedVariable", "version: 1\npools:\n  cpu:\n    kind: thread\n    workers: ${WORKERS\n", 5, 14,
       "unterminated '${'"},
      {"BadVariableName", "version: 1\npools:\n  cpu:\n    kind: thread\n    workers: ${1X}\n", 5, 14,
       "is not a variable"},
      {"PluginMissingFile", "version: 1\nplugins:\n  - path: nowhere/libx.so\n", 3, 11,
       "plugin file /cfg/nowhere/libx.so does not exist"},
      {"PluginNotAPathOrMap", "version: 1\nplugins:\n  - [a]\n", 3, 5, "a plugin: a path, or {path"},
      {"PluginsNotAList", "version: 1\nplugins: lib.so\n", 2, 10, "a list of plugins"},
      {"PluginMissingPathKey", "version: 1\nplugins:\n  - sha256: abc\n", 3, 5, "missing key 'path'"},
      {"PluginPinNotHex", kPlugin.substr(0, 0) + "version: 1\n" + kPlugin + "    sha256: xyz\n", 4, 13,
       "64 hex digits"},
      {"PluginPinMismatch", "version: 1\n" + kPlugin + "    sha256: " + std::string(64, '0') + "\n", 4, 13,
       "does not match its sha256 pin"},
      {"PoolNameWithDot", "version: 1\npools:\n  a.b: {kind: thread}\n", 3, 3, "without '.'"},
      {"KeyIsAMap", "version: 1\npools:\n  ? {a: 1}\n  : {kind: thread}\n", 3, 5, "expected a plain key"},
  };
}

void PrintTo(const Malformed& m, std::ostream* out) {
  *out << m.name;
}

class MalformedConfig : public ::testing::TestWithParam<Malformed> {};

TEST_P(MalformedConfig, NamesExactPlaceAndFault) {
  const Malformed& m = GetParam();
  const auto problems = problems_of(m.yaml);
  ASSERT_FALSE(problems.empty()) << "accepted:\n" << m.yaml;
  const auto& first = problems.front();
  EXPECT_EQ(first.origin, "/cfg/troupe.yaml");
  EXPECT_EQ(first.line, m.line) << first.to_string();
  EXPECT_EQ(first.column, m.column) << first.to_string();
  EXPECT_THAT(first.message, HasSubstr(m.message)) << first.to_string();
}

INSTANTIATE_TEST_SUITE_P(Catalogue, MalformedConfig, ::testing::ValuesIn(catalogue()),
                         [](const auto& entry) { return std::string(entry.param.name); });

TEST(ConfigErrors, EveryProblemIsReportedAtOnce) {
  const auto problems = problems_of(
      "version: 1\npools:\n  a:\n    kind: thread\n    workers: x\n  b:\n    kind: proces\n  c:\n    kind: "
      "thread\n    idle_timeout: soon\n");
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0].path, "pools.a.workers");
  EXPECT_EQ(problems[1].path, "pools.b.kind");
  EXPECT_EQ(problems[2].path, "pools.c.idle_timeout");
}

TEST(ConfigErrors, ProblemsPrintGccStyle) {
  const auto problems = problems_of("version: 1\npools:\n  cpu:\n    kind: thread\n    workers: x\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].to_string(),
            "/cfg/troupe.yaml:5:14: error: pools.cpu.workers: expected a whole number from 0 to 18446744073709551615 "
            "or auto, found 'x'");
}

TEST(ConfigErrors, OverrideProblemsNameTheSetArgument) {
  const auto problems = problems_of("version: 1\npools:\n  cpu:\n    kind: thread\n", {"pools.cpu.workers=lots"});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].origin, "--set pools.cpu.workers=lots");
  EXPECT_EQ(problems[0].line, 0);
  EXPECT_EQ(problems[0].to_string(),
            "--set pools.cpu.workers=lots: error: pools.cpu.workers: expected a whole number from 0 to "
            "18446744073709551615 or auto, found 'lots'");
}

TEST(ConfigErrors, MalformedOverridesAreRefused) {
  for (const char* bad : {"pools.cpu.workers", "=3", "pools..workers=3", "pools.cpu.workers=[1,"}) {
    const auto problems = problems_of("version: 1\npools:\n  cpu:\n    kind: thread\n", {bad});
    ASSERT_EQ(problems.size(), 1u) << bad;
    EXPECT_EQ(problems[0].origin, std::string("--set ") + bad);
    EXPECT_EQ(problems[0].line, 0) << bad;
  }
}

TEST(ConfigErrors, OverrideUnderAScalarIsRefused) {
  const auto problems = problems_of("version: 1\npools:\n  cpu:\n    kind: thread\n", {"version.x=1"});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0].message, HasSubstr("cannot set a key under a scalar value"));
}

TEST(ConfigErrors, DeepNestingIsRefusedNotACrash) {
  const std::string deep = "version: 1\npools: " + std::string(100000, '[') + std::string(100000, ']') + "\n";
  const auto problems = problems_of(deep);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0].message, HasSubstr("nesting too deep"));
}

TEST(ConfigErrors, AliasBombIsRefusedNotExpanded) {
  std::string yaml = "version: 1\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    yaml += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) {
      yaml += std::string(j == 0 ? "" : ", ") + "*a" + std::to_string(i - 1);
    }
    yaml += "]\n";
  }
  const auto problems = problems_of(yaml);
  ASSERT_FALSE(problems.empty());
  EXPECT_THAT(problems[0].message, HasSubstr("refusing to expand it"));
}

// yaml-cpp builds a node that contains itself; following it for ever
// overflowed the stack (a crash, not a ConfigError).
TEST(ConfigErrors, AliasInsideTheNodeItNamesIsRefusedNotACrash) {
  for (const char* yaml :
       {"version: 1\npools: &c\n  a: *c\n", "version: 1\npools:\n  cluster: &c\n    kind: mpi\n    local: *c\n",
        "version: 1\npools:\n  io:\n    kind: thread\n    initializer: &i {task: a.b, args: [*i]}\n"}) {
    const auto problems = problems_of(yaml);
    ASSERT_EQ(problems.size(), 1u) << yaml;
    EXPECT_THAT(problems[0].message, HasSubstr("nests deeper than 512 levels (an alias inside the node it names?)"))
        << yaml;
    EXPECT_LE(problems[0].path.size(), 103u) << yaml;
  }
}

// The parser refuses about 500 levels written out; an alias of a deep node
// placed deep goes further without any cycle.
TEST(ConfigErrors, DeepAliasOfADeepNodeIsRefusedNotACrash) {
  const auto nested = [](int levels, const std::string& inside) {
    return std::string(levels, '[') + inside + std::string(levels, ']');
  };
  const auto args = [&](int levels) {
    return "version: 1\npools:\n  io:\n    kind: thread\n    initializer: {task: a.b, args: [&a " + nested(levels, "") +
           ", " + nested(levels, "*a") + "]}\n";
  };
  EXPECT_TRUE(problems_of(args(200)).empty());
  const auto problems = problems_of(args(300));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0].message, HasSubstr("nests deeper than 512 levels"));
}

TEST(ConfigErrors, MissingFileIsAConfigError) {
  try {
    troupe::config::load_file("/nonexistent/troupe.yaml");
    FAIL() << "no ConfigError";
  } catch (const troupe::ConfigError& e) {
    ASSERT_EQ(e.problems().size(), 1u);
    EXPECT_EQ(e.problems()[0].to_string(), "/nonexistent/troupe.yaml: error: configuration file not found");
  }
}

TEST(ConfigErrors, DirectoryIsAConfigError) {
  EXPECT_THROW(troupe::config::load_file("/tmp"), troupe::ConfigError);
}

}  // namespace
