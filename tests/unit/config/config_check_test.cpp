// config::check: hooks checked against the task table a troupe-worker
// reports, each problem at the line:col of its key, without running any
// hook; plugins that do not load are named, never a crash of the checker.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/paths.hpp"
#include "troupe/config.hpp"

namespace {

using ::testing::HasSubstr;

const std::string kOrigin = "/cfg/troupe.yaml";

// Lines 1-5 of every file here: version, the text and testing plugins, pools.
std::string with_plugins(const std::string& pools) {
  return "version: 1\nplugins:\n  - path: " + troupe::test::plugin_path("text").string() +
         "\n  - path: " + troupe::test::plugin_path("testing").string() + "\npools:\n" + pools;
}

std::vector<troupe::ConfigProblem> check_problems(const std::string& yaml, std::vector<std::string> overrides = {}) {
  const troupe::EngineSpec spec = troupe::config::load_string(yaml, kOrigin, {.overrides = std::move(overrides)});
  try {
    troupe::config::check(spec, kOrigin);
  } catch (const troupe::ConfigError& e) {
    return e.problems();
  }
  return {};
}

void expect_at(const troupe::ConfigProblem& problem, int line, int column, const std::string& path,
               const std::string& message) {
  EXPECT_EQ(problem.origin, kOrigin) << problem.to_string();
  EXPECT_EQ(problem.line, line) << problem.to_string();
  EXPECT_EQ(problem.column, column) << problem.to_string();
  EXPECT_EQ(problem.path, path) << problem.to_string();
  EXPECT_THAT(problem.message, HasSubstr(message)) << problem.to_string();
}

TEST(ConfigCheck, HooksThatBindAreAcceptedWithoutRunningThem) {
  // crash_init aborts its worker when it runs: the check must not run it.
  EXPECT_TRUE(check_problems(with_plugins("  cpu:\n    kind: process\n    initializer: testing.crash_init\n"
                                          "    finalizer: {task: testing.write_file, kwargs: {path: /tmp/x}}\n"
                                          "  io:\n    kind: thread\n    initializer:\n      task: text.open_dict\n"
                                          "      args: [words.txt]\n    finalizer: text.close_dict\n"))
                  .empty());
}

TEST(ConfigCheck, MisspeltInitializerIsPlacedAtItsTaskWithASuggestion) {
  const auto problems = check_problems(
      with_plugins("  cpu:\n    kind: process\n    initializer:\n      task: text.open_dic\n      args: [d.txt]\n"));
  ASSERT_EQ(problems.size(), 1u);
  expect_at(problems[0], 9, 13, "pools.cpu.initializer.task",
            "no initializer 'text.open_dic' in the plugins; did you mean 'text.open_dict'?");
}

TEST(ConfigCheck, MisspeltShortFormInitializerIsPlacedAtTheName) {
  const auto problems =
      check_problems(with_plugins("  io:\n    kind: thread\n    initializer: testing.start_countr\n"));
  ASSERT_EQ(problems.size(), 1u);
  expect_at(problems[0], 8, 18, "pools.io.initializer.task", "did you mean 'testing.start_counter'?");
}

TEST(ConfigCheck, TaskNamedAsInitializerSaysItIsATask) {
  const auto problems = check_problems(with_plugins("  io:\n    kind: thread\n    initializer: text.upper\n"));
  ASSERT_EQ(problems.size(), 1u);
  expect_at(problems[0], 8, 18, "pools.io.initializer.task",
            "no initializer 'text.upper' in the plugins ('text.upper' is a task)");
}

TEST(ConfigCheck, TooManyArgumentsArePlacedAtTheFirstExtraOne) {
  const auto problems = check_problems(with_plugins(
      "  cpu:\n    kind: process\n    initializer:\n      task: text.open_dict\n      args: [a.txt, b.txt]\n"));
  ASSERT_EQ(problems.size(), 1u);
  expect_at(problems[0], 10, 21, "pools.cpu.initializer.args[1]",
            "text.open_dict(path: string) takes 1 argument but 2 were given");
}

TEST(ConfigCheck, MissingArgumentIsPlacedAtTheHook) {
  const auto problems = check_problems(with_plugins("  cpu:\n    kind: process\n    initializer: text.open_dict\n"));
  ASSERT_EQ(problems.size(), 1u);
  expect_at(problems[0], 8, 5, "pools.cpu.initializer", "missing argument 'path' (position 1, string)");
}

TEST(ConfigCheck, UnknownKeywordIsPlacedAtItsKeyWithASuggestion) {
  const auto problems = check_problems(with_plugins(
      "  io:\n    kind: thread\n    initializer:\n      task: text.open_dict\n      kwargs: {paht: d.txt}\n"));
  ASSERT_EQ(problems.size(), 2u);
  expect_at(problems[0], 10, 16, "pools.io.initializer.kwargs.paht",
            "unexpected keyword argument 'paht' for text.open_dict(path: string); did you mean 'path'?");
  expect_at(problems[1], 8, 5, "pools.io.initializer", "missing argument 'path'");
}

TEST(ConfigCheck, KeywordGivenAlsoByPositionIsRefused) {
  const auto problems = check_problems(
      with_plugins("  io:\n    kind: thread\n    initializer:\n      task: text.open_dict\n      args: [a.txt]\n"
                   "      kwargs:\n        path: b.txt\n"));
  ASSERT_EQ(problems.size(), 1u);
  expect_at(problems[0], 12, 9, "pools.io.initializer.kwargs.path", "given both by position and by keyword");
}

TEST(ConfigCheck, ArgumentOfTheWrongTypeIsPlacedAtItsValue) {
  const auto problems = check_problems(
      with_plugins("  cpu:\n    kind: process\n    initializer: {task: testing.slow_init, args: [soon]}\n"));
  ASSERT_EQ(problems.size(), 1u);
  expect_at(problems[0], 8, 51, "pools.cpu.initializer.args[0]",
            "parameter 'ms' of testing.slow_init(ms: int) expects int, found \"soon\"");
}

TEST(ConfigCheck, WholeFloatsPassForIntegersAsTheWorkerAcceptsThem) {
  EXPECT_TRUE(check_problems(
                  with_plugins("  cpu:\n    kind: process\n    initializer: {task: testing.slow_init, args: [5.0]}\n"))
                  .empty());
  const auto problems = check_problems(
      with_plugins("  cpu:\n    kind: process\n    initializer: {task: testing.slow_init, args: [5.5]}\n"));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0].message, HasSubstr("expects int, found 5.5"));
}

TEST(ConfigCheck, FinalizerProblemsArePlacedLikeInitializers) {
  const auto problems = check_problems(
      with_plugins("  cpu:\n    kind: process\n    finalizer: testing.stop_countr\n  io:\n    kind: thread\n"
                   "    finalizer:\n      task: testing.write_file\n      args: [7]\n"));
  ASSERT_EQ(problems.size(), 2u);
  expect_at(problems[0], 8, 16, "pools.cpu.finalizer.task",
            "no finalizer 'testing.stop_countr' in the plugins; did you mean 'testing.stop_counter'?");
  expect_at(problems[1], 13, 14, "pools.io.finalizer.args[0]", "expects string, found 7");
}

TEST(ConfigCheck, InitializerNamedAsFinalizerIsRefused) {
  const auto problems = check_problems(with_plugins("  io:\n    kind: thread\n    finalizer: text.open_dict\n"));
  ASSERT_EQ(problems.size(), 1u);
  expect_at(problems[0], 8, 16, "pools.io.finalizer.task", "('text.open_dict' is an initializer)");
}

TEST(ConfigCheck, EveryPoolsProblemsAreReportedAtOnce) {
  const auto problems = check_problems(with_plugins(
      "  a:\n    kind: thread\n    initializer: text.nope\n  b:\n    kind: process\n    initializer: text.open_dict\n"
      "    finalizer: {task: text.close_dict, args: [1]}\n"));
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0].path, "pools.a.initializer.task");
  EXPECT_EQ(problems[1].path, "pools.b.initializer");
  EXPECT_EQ(problems[2].path, "pools.b.finalizer.args[0]");
  EXPECT_THAT(problems[2].message, HasSubstr("takes 0 arguments but 1 were given"));
}

TEST(ConfigCheck, HookSetByOverrideNamesTheSetArgument) {
  const std::string set = "pools.io.initializer={task: text.open_dict, kwargs: {file: x}}";
  const auto problems = check_problems(with_plugins("  io:\n    kind: thread\n"), {set});
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].origin, "--set " + set);
  EXPECT_EQ(problems[0].line, 0);
  EXPECT_EQ(problems[0].path, "pools.io.initializer.kwargs.file");
  EXPECT_THAT(problems[0].to_string(), HasSubstr("--set " + set + ": error: pools.io.initializer.kwargs.file: "));
}

TEST(ConfigCheck, PluginThatCrashesWhileLoadingIsNamedAtItsPath) {
  const std::string crashing = troupe::test::fixture_path("registration_crashes").string();
  const auto problems = check_problems("version: 1\nplugins:\n  - path: " + troupe::test::plugin_path("text").string() +
                                       "\n  - " + crashing + "\npools:\n  io:\n    kind: thread\n");
  ASSERT_EQ(problems.size(), 1u);
  expect_at(problems[0], 4, 5, "plugins[1].path", "plugin " + crashing + " does not load: ");
  EXPECT_THAT(problems[0].message, HasSubstr("the worker loading the plugins crashed: worker 0 (pid "));
  EXPECT_THAT(problems[0].message, HasSubstr("was killed by SIGSEGV"));
}

TEST(ConfigCheck, FileThatIsNotAPluginGetsTheLoadersReasonAtItsPath) {
  const std::string fake = troupe::test::fixture_path("not_a_plugin").string();
  const auto problems = check_problems("version: 1\nplugins:\n  - path: " + fake + "\n");
  ASSERT_EQ(problems.size(), 1u);
  expect_at(problems[0], 3, 11, "plugins[0].path", "plugin " + fake + " does not load: ");
}

// Lines 1-8: version, plugins, pools cpu and io, `jobs:`; the job's `- ` is
// on line 9 and `task:` on line 11.
std::string with_job(const std::string& task, const std::string& rest = "") {
  return with_plugins("  cpu: {kind: process}\n  io: {kind: thread}\n") +
         "jobs:\n  - name: a\n    pool: io\n    task: " + task + "\n    inputs: {items: [x]}\n" + rest;
}

TEST(ConfigCheck, JobsWhoseTasksTakeTheItemAndBoundArgumentsAreAccepted) {
  EXPECT_TRUE(check_problems(with_job("text.add", "    args: [1]\n") +
                             "  - {name: b, pool: cpu, task: text.word_counts, kwargs: {min_count: 2}, "
                             "inputs: {range: [0, 3]}}\n"
                             "  - {name: c, pool: cpu, task: text.tally, args: [words], kwargs: {dict: d}, "
                             "inputs: {from: b}}\n"
                             "  - {name: d, pool: cpu, task: text.upper, inputs: {from: c}}\n")
                  .empty());
}

TEST(ConfigCheck, MisspeltJobTaskIsPlacedAtItsTaskWithASuggestion) {
  const auto problems = check_problems(with_job("text.uper"));
  ASSERT_EQ(problems.size(), 1u);
  expect_at(problems[0], 11, 11, "jobs[0].task",
            "job 'a': no task 'text.uper' in the plugins; did you mean 'text.upper'?");
}

TEST(ConfigCheck, JobNamingAnInitializerSaysItIsOne) {
  const auto problems = check_problems(with_job("text.open_dict"));
  ASSERT_EQ(problems.size(), 1u);
  expect_at(problems[0], 11, 11, "jobs[0].task", "('text.open_dict' is an initializer)");
}

TEST(ConfigCheck, JobBoundArgumentBeyondTheSignatureIsPlacedAtIt) {
  const auto problems = check_problems(with_job("text.upper", "    args: [1, 2]\n"));
  ASSERT_EQ(problems.size(), 1u);
  expect_at(problems[0], 13, 12, "jobs[0].args[0]",
            "text.upper(text: string) -> string takes 1 argument but the item and 2 arguments make 3");
}

TEST(ConfigCheck, JobTaskWithoutParametersCannotTakeTheItem) {
  const auto problems = check_problems(with_job("testing.pid"));
  ASSERT_EQ(problems.size(), 1u);
  expect_at(problems[0], 11, 11, "jobs[0].task", "testing.pid() -> int takes no arguments, so it cannot take the item");
}

TEST(ConfigCheck, JobMissingArgumentIsPlacedAtItsTask) {
  const auto problems = check_problems(with_job("text.add"));
  ASSERT_EQ(problems.size(), 1u);
  expect_at(problems[0], 11, 11, "jobs[0].task", "missing argument 'b' (position 2, int) of text.add(a: int, b: int)");
}

TEST(ConfigCheck, JobKeywordArgumentsBindByName) {
  const auto problems =
      check_problems(with_job("text.add", "    args: [1]\n    kwargs:\n      b: 2\n      a: 3\n      c: 4\n"));
  ASSERT_EQ(problems.size(), 3u);  // in the order of the keyword names
  expect_at(problems[0], 16, 7, "jobs[0].kwargs.a",
            "argument 'a' of text.add(a: int, b: int) -> int is the item (each item is passed first)");
  expect_at(problems[1], 15, 7, "jobs[0].kwargs.b", "argument 'b' of text.add(a: int, b: int) -> int is given both");
  expect_at(problems[2], 17, 7, "jobs[0].kwargs.c", "unexpected keyword argument 'c'");
}

TEST(ConfigCheck, JobKeywordTypoGetsASuggestion) {
  const auto problems = check_problems(with_job("text.word_counts", "    kwargs: {min_cont: 2}\n"));
  ASSERT_EQ(problems.size(), 1u);
  expect_at(problems[0], 13, 14, "jobs[0].kwargs.min_cont", "did you mean 'min_count'?");
}

TEST(ConfigCheck, JobBoundArgumentOfTheWrongTypeIsPlacedAtItsValue) {
  const auto problems =
      check_problems(with_job("text.add", "    args: [\"1\"]\n") +
                     "  - {name: b, pool: cpu, task: text.word_counts, kwargs: {min_count: [2]}, inputs: {from: a}}\n");
  ASSERT_EQ(problems.size(), 2u);
  expect_at(problems[0], 13, 12, "jobs[0].args[0]", "parameter 'b' of text.add(a: int, b: int) -> int expects int");
  EXPECT_EQ(problems[1].path, "jobs[1].kwargs.min_count");
  EXPECT_THAT(problems[1].message, HasSubstr("job 'b': parameter 'min_count'"));
}

TEST(ConfigCheck, JobTaskSetByOverrideNamesTheSetArgument) {
  const auto problems = check_problems(with_job("text.upper"), {"jobs.a.task=text.nope"});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].origin, "--set jobs.a.task=text.nope");
  EXPECT_EQ(problems[0].line, 0);
  EXPECT_EQ(problems[0].path, "jobs[0].task");
}

TEST(ConfigCheck, SpecWrittenInCppIsCheckedWithoutPlaces) {
  troupe::EngineSpec spec{
      .plugins = {{.path = troupe::test::plugin_path("text")}},
      .pools = {{"io", troupe::ThreadPoolOptions{.initializer = troupe::Call{"text.open_dct", {}, {}}}}}};
  try {
    troupe::config::check(spec, "my spec");
    FAIL() << "accepted a misspelt initializer";
  } catch (const troupe::ConfigError& e) {
    ASSERT_EQ(e.problems().size(), 1u);
    EXPECT_EQ(e.problems()[0].origin, "my spec");
    EXPECT_EQ(e.problems()[0].line, 0);
    EXPECT_EQ(e.problems()[0].path, "pools.io.initializer.task");
    EXPECT_THAT(e.problems()[0].message, HasSubstr("did you mean 'text.open_dict'?"));
  }
}

}  // namespace
