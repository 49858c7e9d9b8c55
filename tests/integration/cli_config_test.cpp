// troupe validate, troupe config and troupe call --config, run as a user
// runs them, on files like the example in docs/config.md.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "support/cli_runner.hpp"
#include "support/paths.hpp"

namespace {

using ::testing::HasSubstr;
using troupe::test::run_troupe;

// A scratch folder with a dictionary and a config file beside it, as a
// user would lay them out (relative paths from the file's folder).
class CliConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("troupe-cli-config-" + std::to_string(getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "dict.txt") << "alpha beta\ngamma\n";
    std::filesystem::copy_file(troupe::test::plugin_path("text"), dir_ / "libtroupe_text.so",
                               std::filesystem::copy_options::overwrite_existing);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& yaml, const std::string& name = "troupe.yaml") {
    std::ofstream(dir_ / name) << yaml;
    return (dir_ / name).string();
  }

  std::string example() {
    return write(R"(version: 1
plugins:
  - path: libtroupe_text.so
pools:
  cpu:
    kind: process
    workers: 2
    task_timeout: 30s
    initializer: {task: text.open_dict, args: [)" +
                 (dir_ / "dict.txt").string() + R"(]}
  io:
    kind: thread
    workers: 4
    idle_timeout: 10s
    initializer:
      task: text.open_dict
      args: [)" + (dir_ / "dict.txt").string() +
                 R"(]
)");
  }

  std::filesystem::path dir_;
};

TEST_F(CliConfig, ValidateAcceptsTheExampleWithASummary) {
  auto r = run_troupe({"validate", example()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(": ok: 1 plugin, 2 pools: cpu (process), io (thread)"));
}

TEST_F(CliConfig, ValidateReportsEveryProblemWithExitTwo) {
  auto file = write("version: 1\npools:\n  cpu:\n    kind: proces\n  io:\n    kind: thread\n    worker: 2\n");
  auto r = run_troupe({"validate", file});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(file + ":4:11: error: pools.cpu.kind: expected thread, process or mpi, found 'proces'; "
                                      "did you mean 'process'?"));
  EXPECT_THAT(r.err, HasSubstr(file + ":7:5: error: pools.io.worker: unknown key 'worker'; did you mean 'workers'?"));
  EXPECT_THAT(r.err, HasSubstr("troupe: error: 2 problems in the configuration"));
}

TEST_F(CliConfig, ValidateSetErrorsNameTheSetArgument) {
  auto r = run_troupe({"validate", example(), "--set", "pools.cpu.workers=-3"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--set pools.cpu.workers=-3: error: pools.cpu.workers: expected a whole number"));
}

TEST_F(CliConfig, ValidatePlacesEveryHookProblemAndExitsTwo) {
  auto file = write(
      "version: 1\nplugins:\n  - path: libtroupe_text.so\npools:\n  io:\n    kind: thread\n"
      "    initializer:\n      task: text.open_dic\n  cpu:\n    kind: process\n"
      "    initializer: {task: text.open_dict, args: [a.txt, b.txt]}\n  batch:\n    kind: process\n"
      "    initializer:\n      task: text.open_dict\n      kwargs: {paht: a.txt}\n    finalizer: text.open_dict\n");
  auto r = run_troupe({"validate", file});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr(file + ":8:13: error: pools.io.initializer.task: no initializer 'text.open_dic' in the "
                                      "plugins; did you mean 'text.open_dict'?"));
  EXPECT_THAT(r.err, HasSubstr(file + ":11:55: error: pools.cpu.initializer.args[1]: text.open_dict(path: string) "
                                      "takes 1 argument but 2 were given"));
  EXPECT_THAT(r.err, HasSubstr(file + ":16:16: error: pools.batch.initializer.kwargs.paht: unexpected keyword "
                                      "argument 'paht' for text.open_dict(path: string); did you mean 'path'?"));
  EXPECT_THAT(r.err, HasSubstr(file + ":14:5: error: pools.batch.initializer: missing argument 'path'"));
  EXPECT_THAT(r.err, HasSubstr(file + ":17:16: error: pools.batch.finalizer.task: no finalizer 'text.open_dict' in "
                                      "the plugins ('text.open_dict' is an initializer)"));
  EXPECT_THAT(r.err, HasSubstr("troupe: error: 5 problems in the configuration"));
}

TEST_F(CliConfig, ValidateRunsNoHook) {
  // crash_init aborts the worker that runs it; validate reads signatures only.
  auto file = write("version: 1\nplugins:\n  - path: " + troupe::test::plugin_path("testing").string() +
                    "\npools:\n  p:\n    kind: process\n    initializer: testing.crash_init\n");
  auto r = run_troupe({"validate", file});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(": ok: 1 plugin, 1 pool: p (process)"));
}

TEST_F(CliConfig, ValidateReportsAFileThatIsNotAPluginWithTheLoadersReason) {
  std::ofstream(dir_ / "libfake.so") << "not an ELF file";
  auto file = write("version: 1\nplugins:\n  - path: libfake.so\npools: {}\n");
  auto r = run_troupe({"validate", file});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(file + ":3:11: error: plugins[0].path: plugin " + (dir_ / "libfake.so").string() +
                               " does not load: "));
}

TEST_F(CliConfig, ValidateNamesAPluginThatCrashesWhileLoading) {
  const std::string crashing = troupe::test::fixture_path("registration_crashes").string();
  auto file = write("version: 1\nplugins:\n  - libtroupe_text.so\n  - " + crashing + "\npools: {}\n");
  auto r = run_troupe({"validate", file});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr(file + ":4:5: error: plugins[1].path: plugin " + crashing + " does not load: "));
  EXPECT_THAT(r.err, HasSubstr("the worker loading the plugins crashed: "));
  EXPECT_THAT(r.err, HasSubstr("was killed by SIGSEGV"));
  EXPECT_THAT(r.err, HasSubstr("troupe: error: 1 problem in the configuration"));
}

TEST_F(CliConfig, ValidateNeverCrashesOnGarbage) {
  for (const std::string& text : {std::string("\xff\xfe\x00garbage", 10), std::string(5000, '['), std::string("{{{"),
                                  std::string("version: 1\npools: *nope\n"), std::string(":\n- :\n  ? ?")}) {
    auto r = run_troupe({"validate", write(text, "garbage.yaml")});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.err, HasSubstr("error:"));
  }
}

TEST_F(CliConfig, ConfigPrintsAResolvedFileThatValidates) {
  auto r = run_troupe({"config", example(), "--set", "pools.io.workers=3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("path: \"" + (dir_ / "libtroupe_text.so").string() + "\""));
  EXPECT_THAT(r.out, HasSubstr("workers: 3"));
  EXPECT_THAT(r.out, HasSubstr("startup_timeout: 10s"));  // defaults filled in
  auto again = run_troupe({"config", write(r.out, "resolved.yaml")});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, r.out);
}

TEST_F(CliConfig, CallOnAThreadPoolUsesItsInitializersWorkerState) {
  auto r = run_troupe({"call", "--config", example(), "--pool", "io", "text.known_words", "\"alpha omega\""});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"known\":1,\"unknown\":1}\n");
}

TEST_F(CliConfig, CallOnAProcessPoolUsesItsInitializersWorkerState) {
  auto r = run_troupe({"call", "--config", example(), "--pool", "cpu", "text.known_words", "\"beta gamma delta\""});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"known\":2,\"unknown\":1}\n");
}

TEST_F(CliConfig, CallOnAnUnknownPoolSuggestsOne) {
  auto r = run_troupe({"call", "--config", example(), "--pool", "ioo", "text.upper", "\"x\""});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("no pool named 'ioo'; did you mean 'io'?"));
}

TEST_F(CliConfig, CallWhoseInitializerFailsReportsABrokenPool) {
  auto r = run_troupe({"call", "--config", example(), "--pool", "io", "--set",
                       "pools.io.initializer={task: text.open_dict, args: [nowhere.txt]}", "text.upper", "\"x\""});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("cannot open dictionary 'nowhere.txt'"));
}

}  // namespace
