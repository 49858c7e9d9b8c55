// The troupe command's verbs, run as a user runs them.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
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
  bool timed_out = false;
  std::string out;
  std::string err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string slurp_binary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs bin/troupe with `args` (and `env` added to this environment),
// capturing stdout and stderr through files. A run past `limit` is killed
// and reported, so a regression that hangs fails instead.
Result troupe(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
              std::chrono::seconds limit = std::chrono::seconds(60)) {
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
  std::vector<char*> envp;
  for (const auto& e : env) {
    envp.push_back(const_cast<char*>(e.c_str()));
  }
  for (char** e = environ; *e != nullptr; ++e) {
    envp.push_back(*e);
  }
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  Result result;
  if (rc != 0) {
    result.err = "posix_spawn failed";
    return result;
  }
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  pollfd exited{pidfd, POLLIN, 0};
  if (pidfd >= 0 && ::poll(&exited, 1, static_cast<int>(limit.count() * 1000)) == 0) {
    ::kill(pid, SIGKILL);
    result.timed_out = true;
  }
  if (pidfd >= 0) {
    ::close(pidfd);
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
                           HasSubstr("initializers (2):"), HasSubstr("text.open_dict(path: string)"),
                           HasSubstr("finalizers (2):"), HasSubstr("text.close_dict()")));
}

TEST(Cli, InspectShowsEachWorkerClassWithItsConstructorAndMethods) {
  auto r = troupe({"inspect", plugin_path("text").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, AllOf(HasSubstr("worker classes (1):\n"
                                     "  text.speller(path: string = \"/usr/share/dict/words\")\n"
                                     "      methods: text.spell_check text.is_word\n"
                                     "      A word list loaded once per worker"),
                           HasSubstr("text.spell_check(text: string) -> KnownWords\n      method of speller\n"),
                           HasSubstr("text.speller()\n      worker class speller\n")));
  r = troupe({"inspect", "--json", fixture_path("worker_objects").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doc = troupe::Value::parse(r.out);
  ASSERT_EQ(doc["classes"].size(), 5U);
  const auto& counter = doc["classes"][0];
  EXPECT_EQ(counter["name"], "worker_objects.counter");
  EXPECT_EQ(counter["class"], "counter");
  EXPECT_EQ(counter["constructor"], "worker_objects.counter(tag: string = \"lazy\")");
  EXPECT_EQ(counter["params"][0]["name"], "tag");
  EXPECT_EQ(counter["params"][0]["default"], "lazy");
  EXPECT_EQ(counter["methods"], troupe::Value::array({"worker_objects.count", "worker_objects.where"}));
  EXPECT_EQ(doc["classes"][1]["methods"], troupe::Value::array({"worker_objects.second_worker"}));
  EXPECT_EQ(doc["initializers"][0]["group"], "counter");
  EXPECT_EQ(doc["finalizers"][0]["group"], "counter");
  EXPECT_EQ(doc["tasks"][1]["group"], "counter");
  EXPECT_FALSE(doc["tasks"][0].contains("group"));  // ping, a plain task
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

TEST(Cli, InspectOfAFifoOrATruncatedFileIsRefusedNotAHangOrACrash) {
  const std::string base = ::testing::TempDir() + "troupe-cli-bad-file-" + std::to_string(getpid());
  const std::string fifo = base + ".fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto r = troupe({"inspect", fifo}, {}, std::chrono::seconds(20));
  std::remove(fifo.c_str());
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("is a FIFO, not a regular file"));

  const std::string cut = base + ".so";
  const std::string bytes = slurp_binary(plugin_path("testing").string());
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, 8192);
  r = troupe({"inspect", cut});
  std::remove(cut.c_str());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("is truncated or damaged"));
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

TEST(Cli, HelpListsTheExitCodes) {
  auto r = troupe({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, AllOf(HasSubstr("Exit codes: 0 ok; 1 the task failed"), HasSubstr("2 usage, argument or plugin"),
                           HasSubstr("3 the worker pool broke")));
}

TEST(Cli, JsonArrayArgumentIsOneList) {
  // CLI11 reads '[a,b]' as a list of option values; a task argument is JSON, taken as written.
  const std::string testing = plugin_path("testing").string();
  auto r = troupe({"call", testing, "echo", R"(["x"])"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[\"x\"]\n");
  r = troupe({"call", testing, "echo", "[1,2]"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[1,2]\n");
  r = troupe({"call", testing, "echo", "[]"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[]\n");
  r = troupe({"call", "--isolated", testing, "echo", "[1,[2]]"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[1,[2]]\n");
}

TEST(Cli, NegativeNumberIsAnArgumentAndUnknownOptionIsRefused) {
  auto r = troupe({"call", plugin_path("testing").string(), "double", "-21"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "-42\n");
  r = troupe({"call", plugin_path("testing").string(), "double", "--bogus", "2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "troupe: error: call: unknown option '--bogus' (see troupe call --help)\n");
}

// After `--` every word is a task argument, one JSON value each, even one
// that looks like an option (CLI11 alone called `--kw` an unknown option
// and refused `-5` there).
TEST(Cli, EveryWordAfterTheSeparatorIsATaskArgument) {
  const std::string testing = plugin_path("testing").string();
  auto r = troupe({"call", testing, "double", "--", "-21"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "-42\n");
  r = troupe({"call", testing, "echo", "--", "--kw"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("argument 1 '--kw' is not a JSON literal"));
  r = troupe({"call", testing, "echo", "--", "[1,\"--\"]"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[1,\"--\"]\n");
  r = troupe({"call", "--isolated", testing, "double", "--", "-21"});  // options before the separator still apply
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "-42\n");
  r = troupe({"call", testing, "echo", "1", "--", "2"});  // arguments on both sides of it count
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("takes 1 argument (value) but 2 were given"));
  r = troupe({"call", testing, "echo", "--"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("missing argument 'value'"));
  // PLUGIN and TASK may follow it too, with options before it taking their values.
  r = troupe({"call", "--", testing, "double", "-21"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "-42\n");
  r = troupe({"call", "--timeout", "5s", "--isolated", testing, "--", "double", "-21"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "-42\n");
  r = troupe({"call", "--isolated", "--timeout", "--", testing, "double", "-21"});  // not PLUGIN as its value
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--timeout"));
}

TEST(Cli, AMissingArgumentNamesItAndTheSubcommandsHelp) {
  auto r = troupe({"run"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "troupe: error: run: the FILE argument (the YAML configuration file) is missing (see troupe run --help)\n");
  r = troupe({"inspect"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("troupe: error: inspect: the PLUGIN argument"));
  EXPECT_THAT(r.err, HasSubstr("(see troupe inspect --help)"));
}

TEST(Cli, AnUnknownOptionOfASubcommandIsNamedWithTheSubcommand) {
  auto r = troupe({"run", "--bogus", "x.yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "troupe: error: run: unknown option '--bogus' (see troupe run --help)\n");
  r = troupe({"run", "x.yaml", "--resum"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("run: unknown option '--resum'; did you mean '--resume'?"));
  r = troupe({"run", "a.yaml", "b.yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "troupe: error: run: unexpected argument 'b.yaml' (see troupe run --help)\n");
}

TEST(Cli, AnUnknownCommandIsNamedWithTheCommandsThereAre) {
  auto r = troupe({"frob"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "troupe: error: unknown command 'frob'; the commands are inspect, call, validate, config, run "
            "(see troupe --help)\n");
  r = troupe({"rnu", "x.yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown command 'rnu'; the commands are "));
  EXPECT_THAT(r.err, HasSubstr("did you mean 'run'?"));
  r = troupe({});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("troupe: error: no command given; the commands are inspect, call"));
}

TEST(Cli, ABadOptionValueSaysWhatItTakes) {
  auto r = troupe({"run", "x.yaml", "--progress", "sometimes"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "troupe: error: run: --progress 'sometimes' must be one of auto, always, never "
            "(see troupe run --help)\n");
  r = troupe({"run", "x.yaml", "--job"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "troupe: error: run: --job needs a value (see troupe run --help)\n");
  r = troupe({"run", "x.yaml", "--resume", "--overwrite"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("run: --resume and --overwrite exclude each other"));
  r = troupe({"run", "x.yaml", "--fsync=maybe"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "troupe: error: run: --fsync does not take the value 'maybe' (it is a flag: give it alone, or =true or "
            "=false) (see troupe run --help)\n");
}

// From a review: the bad option is named even when the FILE is missing too,
// an option given twice says so, no "did you mean" of the name itself or of
// a two-character one, a missing TASK reads like every other parse error,
// and a long name is cut between characters.
TEST(Cli, ParseErrorsNameTheRealMistake) {
  auto r = troupe({"run", "--jbo"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "troupe: error: run: unknown option '--jbo'; did you mean '--job'? (see troupe run --help)\n");
  r = troupe({"run", "--version"});
  EXPECT_EQ(r.err, "troupe: error: run: unknown option '--version' (see troupe run --help)\n");
  r = troupe({"run", "x.yaml", "--job", "a", "--job", "b"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "troupe: error: run: --job is given 2 times; give it once (see troupe run --help)\n");
  r = troupe({"run", "x.yaml", "-j"});
  EXPECT_EQ(r.err, "troupe: error: run: unknown option '-j' (see troupe run --help)\n");
  r = troupe({"call", "a"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "troupe: error: call: the TASK argument is missing: troupe call PLUGIN TASK [ARGS...] "
            "(see troupe call --help)\n");
  r = troupe({std::string(59, 'a') + "\xc3\xa9\xc3\xa9"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown command '" + std::string(59, 'a') + "...'"));
}

TEST(Cli, EveryParseErrorHasTheHousePrefixAndHelpStillExitsZero) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{{"run"},
                                                                                    {"frob"},
                                                                                    {"--bogus"},
                                                                                    {"validate"},
                                                                                    {"config", "a", "b"},
                                                                                    {"call"},
                                                                                    {"inspect", "--json"},
                                                                                    {"run", "x.yaml", "--set"},
                                                                                    {"run", "x.yaml", "--progress"}}) {
    const auto r = troupe(args);
    EXPECT_EQ(r.exit_code, 2) << args.front();
    EXPECT_TRUE(r.err.starts_with("troupe: error: ")) << r.err;
    EXPECT_THAT(r.err, HasSubstr("--help)\n")) << r.err;
    EXPECT_EQ(r.out, "") << args.front();
  }
  for (const char* verb : {"run", "validate", "config"}) {
    const auto r = troupe({verb, "--help"});
    EXPECT_EQ(r.exit_code, 0) << verb;
    EXPECT_THAT(r.out, HasSubstr("Usage")) << verb;
  }
}

TEST(Cli, AnIntegerPastSixtyFourBitsIsRefusedNotRounded) {
  const std::string testing = plugin_path("testing").string();
  auto r = troupe({"call", testing, "echo", "18446744073709551616"});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, AllOf(HasSubstr("troupe: error: argument 1 '18446744073709551616': the integer "
                                     "18446744073709551616 is outside -2^63..2^64-1"),
                           HasSubstr("pass it as a string (\"18446744073709551616\")"),
                           HasSubstr("decimal point or an exponent (18446744073709551616.0)")));
  r = troupe({"call", testing, "echo", "1", R"({"ids":[1,-9223372036854775809]})"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("argument 2 '{\"ids\":[1,-9223372036854775809]}': the integer -9223372036854775809"));
  r = troupe({"call", testing, "echo", "--kw", "x=99999999999999999999"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--kw x '99999999999999999999': the integer 99999999999999999999 is outside"));
  r = troupe({"call", testing, "echo", std::string(100, '9')});  // a double holds it, roughly
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("(100 characters) is outside -2^63..2^64-1"));
}

TEST(Cli, IntegersAtTheSixtyFourBitLimitsAndExplicitFloatsPass) {
  const std::string testing = plugin_path("testing").string();
  for (const std::string& text : {std::string("18446744073709551615"), std::string("-9223372036854775808"),
                                  std::string("1e30"), std::string("1.5"), std::string("18446744073709551616.0"),
                                  std::string("\"18446744073709551616\""), std::string("[\"99999999999999999999\"]")}) {
    const auto r = troupe({"call", testing, "echo", text});
    ASSERT_EQ(r.exit_code, 0) << text << ": " << r.err;
    EXPECT_EQ(troupe::Value::parse(r.out), troupe::Value::parse(text)) << text;
  }
}

TEST(Cli, TimeoutWithoutIsolatedIsAUsageError) {
  auto r = troupe({"call", "--timeout", "1s", plugin_path("testing").string(), "double", "2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--timeout needs --isolated"));
  EXPECT_EQ(r.out, "");
}

TEST(Cli, ZeroOrBadTimeoutIsAUsageError) {
  auto r = troupe({"call", "--isolated", "--timeout", "0", plugin_path("testing").string(), "double", "2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--timeout '0' must be longer than 0"));
  r = troupe({"call", "--isolated", "--timeout", "soon", plugin_path("testing").string(), "double", "2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--timeout:"));
}

TEST(Cli, FloatOutOfRangeIsAnArgumentError) {
  for (const bool isolated : {false, true}) {
    std::vector<std::string> args = {"call", fixture_path("numbers").string(), "half", "1e300"};
    if (isolated) {
      args.insert(args.begin() + 1, "--isolated");
    }
    auto r = troupe(args);
    EXPECT_EQ(r.exit_code, 2) << isolated;
    EXPECT_THAT(r.err, AllOf(HasSubstr("parameter 'x'"), HasSubstr("out of range"))) << isolated;
  }
}

TEST(Cli, NumberJsonCannotHoldIsAUsageError) {
  auto r = troupe({"call", plugin_path("testing").string(), "echo", "1e999"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("argument 1 '1e999' holds a number too large for JSON"));
}

TEST(Cli, DeeplyNestedArgumentIsRefusedWithoutACrash) {
  const std::string deep = std::string(60000, '[') + std::string(60000, ']');
  for (const char* where : {"positional", "keyword", "isolated"}) {
    std::vector<std::string> args = {"call", plugin_path("testing").string(), "echo"};
    if (std::string(where) == "keyword") {
      args.insert(args.end(), {"--kw", "value=" + deep});
    } else {
      args.push_back(deep);
    }
    if (std::string(where) == "isolated") {
      args.insert(args.begin() + 1, "--isolated");
    }
    auto r = troupe(args);
    EXPECT_EQ(r.exit_code, 2) << where;
    EXPECT_THAT(r.err, HasSubstr("nests deeper than 256 levels")) << where;
  }
}

TEST(Cli, ArgumentsNestUpTo256Levels) {
  auto nested = [](int levels) {
    return std::string(levels, '[') + std::string(levels, ']');
  };
  auto r = troupe({"call", plugin_path("testing").string(), "echo", nested(256)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, nested(256) + "\n");
  const std::string with_values = std::string(254, '[') + R"({"k": [1]})" + std::string(254, ']');  // 256 deep
  r = troupe({"call", plugin_path("testing").string(), "echo", with_values});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = troupe({"call", plugin_path("testing").string(), "echo", nested(257)});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("nests deeper than 256 levels"));
}

TEST(Cli, NotExecutableWorkerIsAUsageErrorNamingIt) {
  const std::string not_executable = ::testing::TempDir() + "troupe-cli-not-a-worker-" + std::to_string(getpid());
  std::ofstream(not_executable) << "#!/bin/sh\n";  // mode 0644
  auto r = troupe({"call", "--isolated", plugin_path("testing").string(), "double", "2"},
                  {"TROUPE_WORKER=" + not_executable});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, AllOf(HasSubstr("$TROUPE_WORKER"), HasSubstr(not_executable)));
  std::remove(not_executable.c_str());
}

TEST(Cli, IsolatedCallNeverLoadsThePluginInTheCli) {
  // The plugin crashes while registering: that kills a worker, which is a
  // start-up failure (exit 3, cause printed), not a crash of the CLI.
  auto r = troupe({"call", "--isolated", fixture_path("registration_crashes").string(), "never"});
  ASSERT_FALSE(r.timed_out) << r.err;
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_THAT(r.err,
              AllOf(HasSubstr("the worker process could not start"), HasSubstr("fail to start"), HasSubstr("SIGSEGV")));
}

TEST(Cli, IsolatedWorkerThatCannotStartIsExitThree) {
  // An executable that is not a troupe-worker: it exits before it is ready.
  auto r = troupe({"call", "--isolated", plugin_path("testing").string(), "double", "2"}, {"TROUPE_WORKER=/bin/true"},
                  std::chrono::seconds(30));
  ASSERT_FALSE(r.timed_out) << r.err;
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("fail to start"));
}

TEST(Cli, IsolatedPluginErrorInTheWorkerIsExitTwo) {
  auto r = troupe({"call", "--isolated", fixture_path("registration_throws").string(), "fine"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, AllOf(HasSubstr("could not be loaded in the worker process"),
                           HasSubstr("failed to register: cannot find model weights")));
}

}  // namespace
