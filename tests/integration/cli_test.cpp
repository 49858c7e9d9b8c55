// The troupe command's verbs, run as a user runs them.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/paths.hpp"
#include "troupe/sdk/config.hpp"
#include "troupe/sdk/value.hpp"

extern char** environ;

namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using troupe::test::fixture_path;
using troupe::test::plugin_path;

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs bin/troupe with `args`, capturing stdout and stderr through files.
Result troupe(const std::vector<std::string>& args) {
  static int counter = 0;
  const std::string base =
      ::testing::TempDir() + "troupe-cli-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  const std::string out_path = base + ".out";
  const std::string err_path = base + ".err";
  const std::string binary = troupe::test::binary_path("troupe").string();
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const auto& a : args) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  Result result;
  if (rc != 0) {
    result.err = "posix_spawn failed";
    return result;
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = slurp(out_path);
  result.err = slurp(err_path);
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  return result;
}

TEST(Cli, VersionPrintsTheVersion) {
  auto r = troupe({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr(std::string("troupe ") + TROUPE_VERSION_STRING));
}

TEST(Cli, EveryVerbHasHelp) {
  for (const char* verb : {"inspect", "call"}) {
    auto r = troupe({verb, "--help"});
    EXPECT_EQ(r.exit_code, 0) << verb;
    EXPECT_THAT(r.out, HasSubstr("Usage")) << verb;
  }
  auto r = troupe({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, AllOf(HasSubstr("inspect"), HasSubstr("call")));
}

TEST(Cli, NoVerbIsAUsageError) {
  auto r = troupe({});
  EXPECT_EQ(r.exit_code, 2);
}

TEST(Cli, InspectListsTasksWithSignaturesAndDocs) {
  auto r = troupe({"inspect", plugin_path("text").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, AllOf(HasSubstr("plugin text 1.0.0"), HasSubstr("abi " + std::to_string(TROUPE_SDK_ABI_VERSION)),
                           HasSubstr("text.add(a: int, b: int) -> int"), HasSubstr("Add two integers"),
                           HasSubstr("text.word_counts(text: string, min_count: int = 1) -> dict[string, int]"),
                           HasSubstr("initializers (1):"), HasSubstr("text.open_dict(path: string)"),
                           HasSubstr("finalizers (1):"), HasSubstr("text.close_dict()")));
}

TEST(Cli, InspectJsonIsMachineReadable) {
  auto r = troupe({"inspect", "--json", plugin_path("text").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = troupe::Value::parse(r.out);
  EXPECT_EQ(doc["name"], "text");
  EXPECT_EQ(doc["tasks"][0]["name"], "text.add");
  EXPECT_EQ(doc["tasks"][0]["params"][1]["type"], "int");
}

TEST(Cli, InspectShowsTheWorkerClassOfAMethodTask) {
  auto r = troupe({"inspect", fixture_path("grouped_tasks").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("grouped_tasks.predict(x: int) -> int\n      method of Model\n"));
  EXPECT_THAT(r.out, HasSubstr("grouped_tasks.plain(x: int) -> int\n      Returns x\n"));
  r = troupe({"inspect", "--json", fixture_path("grouped_tasks").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = troupe::Value::parse(r.out);
  EXPECT_EQ(doc["tasks"][0]["group"], "Model");
  EXPECT_FALSE(doc["tasks"][1].contains("group"));
}

TEST(Cli, InspectOfABadFileExplainsAndExitsTwo) {
  auto r = troupe({"inspect", fixture_path("not_a_plugin").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, AllOf(HasSubstr("troupe: error:"), HasSubstr("not a troupe plugin")));
  r = troupe({"inspect", fixture_path("wrong_abi").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("Wrong SDK ABI version"));
}

TEST(Cli, CallPrintsTheResultAsJson) {
  auto r = troupe({"call", plugin_path("text").string(), "add", "2", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "5\n");
}

TEST(Cli, CallConvertsAJsonObjectIntoAUserStruct) {
  auto r = troupe({"call", plugin_path("text").string(), "text.words", R"({"id":"d1","text":"to be or not"})"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "4\n");
}

TEST(Cli, CallTakesKeywordArguments) {
  auto r = troupe({"call", plugin_path("text").string(), "word_counts", R"("a b a c a b")", "--kw", "min_count=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"a\":3,\"b\":2}\n");
}

TEST(Cli, CallWithAWrongArgumentNamesTaskAndParameter) {
  auto r = troupe({"call", plugin_path("text").string(), "add", "2", R"("x")"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("task 'text.add': parameter 'b' (position 2) expects int, got string \"x\""));
}

TEST(Cli, CallWithANonJsonArgumentSaysHowToQuote) {
  auto r = troupe({"call", plugin_path("text").string(), "upper", "hello"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, AllOf(HasSubstr("argument 1 'hello' is not a JSON literal"), HasSubstr("'\"hello\"'")));
}

TEST(Cli, CallWithABadKeywordSyntaxIsAUsageError) {
  auto r = troupe({"call", plugin_path("text").string(), "add", "1", "--kw", "b"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("must be name=JSON"));
}

TEST(Cli, CallOfAnUnknownTaskSuggests) {
  auto r = troupe({"call", plugin_path("text").string(), "tokenise", R"("x")"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("did you mean 'text.tokenize'"));
}

TEST(Cli, TaskFailurePrintsTypeMessageAndCausesAndExitsOne) {
  auto r = troupe({"call", plugin_path("testing").string(), "fail", R"("boom")", R"("why")"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, AllOf(HasSubstr("task 'testing.fail' failed: TestingError: boom"),
                           HasSubstr("caused by: std::invalid_argument: why")));
}

TEST(Cli, IsolatedCallRunsInAWorkerProcess) {
  auto r = troupe({"call", "--isolated", plugin_path("testing").string(), "double", "21"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "42\n");
}

TEST(Cli, IsolatedCallPrintsTheRemoteErrorWithCausesAndTrace) {
  auto r = troupe({"call", "--isolated", plugin_path("testing").string(), "fail", R"("boom")", R"("why")"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, AllOf(HasSubstr("task 'testing.fail' failed: TestingError: boom"),
                           HasSubstr("caused by: std::invalid_argument: why"), HasSubstr("remote stack trace:")));
}

TEST(Cli, IsolatedCallSurvivesACrashingTask) {
  auto r = troupe({"call", "--isolated", plugin_path("testing").string(), "segfault"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, AllOf(HasSubstr("task 'testing.segfault' failed"), HasSubstr("SIGSEGV")));
}

TEST(Cli, IsolatedCallTimesOutAHangingTask) {
  auto r = troupe({"call", "--isolated", "--timeout", "300ms", plugin_path("testing").string(), "hang"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("task 'testing.hang' failed"));
}

TEST(Cli, IsolatedCallWithABadArgumentIsAUsageError) {
  auto r = troupe({"call", "--isolated", plugin_path("testing").string(), "double", R"("x")"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("parameter 'x' (position 1) expects int, got string \"x\""));
}

}  // namespace
