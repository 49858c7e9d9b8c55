// Plugin loading against real library files the test build produces: every
// PluginError case, name lookup, residency and cross-library exceptions.
#include "troupe/registry.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "support/paths.hpp"

namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using troupe::test::fixture_path;
using troupe::test::plugin_path;

std::string load_error(const std::filesystem::path& path) {
  try {
    troupe::Registry registry;
    registry.load(path);
  } catch (const troupe::PluginError& e) {
    return e.what();
  }
  return "(no PluginError)";
}

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("troupe-registry-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

TEST(PluginLoading, LoadsBundledPluginWithItsTasks) {
  troupe::Registry registry;
  const troupe::Plugin& plugin = registry.load(plugin_path("text"));
  EXPECT_EQ(plugin.name(), "text");
  EXPECT_EQ(plugin.version(), "1.0.0");
  EXPECT_EQ(plugin.abi_version(), static_cast<unsigned>(TROUPE_SDK_ABI_VERSION));
  EXPECT_EQ(plugin.build_key(), troupe::engine_build_key());
  EXPECT_NE(plugin.find_task("words"), nullptr);
  EXPECT_NE(plugin.find_initializer("open_dict"), nullptr);
  EXPECT_NE(plugin.find_finalizer("close_dict"), nullptr);
}

TEST(PluginLoading, MissingFileNamesThePath) {
  EXPECT_THAT(load_error("/nonexistent/libnothing.so"),
              AllOf(HasSubstr("'/nonexistent/libnothing.so' does not exist"), HasSubstr("check the path")));
}

TEST(PluginLoading, DirectoryIsRejected) {
  TempDir dir;
  EXPECT_THAT(load_error(dir.path()), HasSubstr("is a directory"));
}

TEST(PluginLoading, TextFileNamedSoIsNotASharedLibrary) {
  TempDir dir;
  auto path = dir.path() / "libfake.so";
  std::ofstream(path) << "this is not an ELF file\n";
  EXPECT_THAT(load_error(path), AllOf(HasSubstr(path.string()), HasSubstr("is not a shared library")));
}

TEST(PluginLoading, UnresolvedSymbolNamesTheSymbol) {
  EXPECT_THAT(load_error(fixture_path("unresolved_symbol")),
              AllOf(HasSubstr("libfixture_unresolved_symbol.so"), HasSubstr("could not be loaded"),
                    HasSubstr("undefined symbol: troupe_fixture_symbol_nobody_defines")));
}

TEST(PluginLoading, PluginNameMustBeACIdentifier) {
  EXPECT_THAT(load_error(fixture_path("bad_plugin_name")),
              AllOf(HasSubstr("libfixture_bad_plugin_name.so"), HasSubstr("named 'my.plugin'"),
                    HasSubstr("not a C identifier")));
}

TEST(PluginLoading, DefaultThatDoesNotFitItsTypeIsAPluginError) {
  EXPECT_THAT(load_error(fixture_path("bad_default")),
              AllOf(HasSubstr("libfixture_bad_default.so"),
                    HasSubstr("default value \"wide\" of parameter 'width' does not fit its type int")));
}

TEST(PluginLoading, UnreadableFileSaysSo) {
  if (::geteuid() == 0) {
    GTEST_SKIP() << "root reads every file";
  }
  TempDir dir;
  auto path = dir.path() / "libsecret.so";
  std::ofstream(path) << "x";
  std::filesystem::permissions(path, std::filesystem::perms::none);
  EXPECT_THAT(load_error(path), HasSubstr("cannot be read"));
}

TEST(PluginLoading, SharedLibraryWithoutEntryPointIsNotAPlugin) {
  EXPECT_THAT(load_error(fixture_path("not_a_plugin")),
              AllOf(HasSubstr("libfixture_not_a_plugin.so"), HasSubstr("not a troupe plugin"),
                    HasSubstr("troupe_add_plugin()")));
}

TEST(PluginLoading, WrongAbiVersionIsRefusedBeforeRegistration) {
  // The fixture's describe() aborts: reaching it would kill the test.
  EXPECT_THAT(load_error(fixture_path("wrong_abi")),
              AllOf(HasSubstr("Wrong SDK ABI version on plugin 'wrong_abi'"), HasSubstr("libfixture_wrong_abi.so"),
                    HasSubstr("Got version 999, supported version is " + std::to_string(TROUPE_SDK_ABI_VERSION)),
                    HasSubstr("built against a newer troupe SDK"), HasSubstr("Rebuild the plugin")));
}

TEST(PluginLoading, PluginOfThePreviousAbiIsRefusedBeforeRegistration) {
  // Built by this very toolchain but against SDK ABI 1: the header is read
  // and refused, its describe() (which aborts) never runs.
  EXPECT_THAT(load_error(fixture_path("old_abi")),
              AllOf(HasSubstr("Wrong SDK ABI version on plugin 'old_abi'"), HasSubstr("libfixture_old_abi.so"),
                    HasSubstr("Got version 1, supported version is " + std::to_string(TROUPE_SDK_ABI_VERSION)),
                    HasSubstr("built against an older troupe SDK"), HasSubstr("Rebuild the plugin against troupe")));
}

TEST(PluginLoading, TaskGroupCrossesTheBoundary) {
  troupe::Registry registry;
  registry.load(fixture_path("grouped_tasks"));
  EXPECT_EQ(registry.task("grouped_tasks.predict").group, "Model");
  EXPECT_EQ(registry.task("grouped_tasks.plain").group, "");
}

TEST(PluginLoading, WrongBuildKeyIsRefusedBeforeRegistration) {
  EXPECT_THAT(load_error(fixture_path("wrong_build_key")),
              AllOf(HasSubstr("plugin 'wrong_build_key'"), HasSubstr("libfixture_wrong_build_key.so"),
                    HasSubstr("was built for 'clang-99;"), HasSubstr("first difference: 'clang-99'"),
                    HasSubstr("rebuild the plugin")));
}

TEST(PluginLoading, RegistrationThatThrowsIsAPluginError) {
  EXPECT_THAT(load_error(fixture_path("registration_throws")),
              AllOf(HasSubstr("plugin 'registration_throws'"), HasSubstr("libfixture_registration_throws.so"),
                    HasSubstr("failed to register: cannot find model weights at /nonexistent")));
}

TEST(PluginLoading, DuplicateTaskNameIsAPluginError) {
  EXPECT_THAT(load_error(fixture_path("duplicate_task")),
              AllOf(HasSubstr("libfixture_duplicate_task.so"), HasSubstr("duplicate task name 'duplicate_task.same'")));
}

TEST(PluginLoading, MismatchedArgNamesIsAPluginError) {
  EXPECT_THAT(
      load_error(fixture_path("bad_arg_names")),
      AllOf(HasSubstr("libfixture_bad_arg_names.so"), HasSubstr("1 troupe::arg() names given for 2 parameters")));
}

TEST(PluginLoading, DuplicatePluginNameInOneRegistryIsAPluginError) {
  troupe::Registry registry;
  registry.load(fixture_path("duplicate_name_a"));
  try {
    registry.load(fixture_path("duplicate_name_b"));
    FAIL() << "expected PluginError";
  } catch (const troupe::PluginError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("plugin name 'dup'"), HasSubstr("libfixture_duplicate_name_b.so"),
                                HasSubstr("already used by"), HasSubstr("libfixture_duplicate_name_a.so")));
  }
  EXPECT_EQ(registry.find_plugin("dup")->path().filename(), "libfixture_duplicate_name_a.so");
}

TEST(PluginLoading, SameNameInSeparateRegistriesIsFine) {
  troupe::Registry a;
  troupe::Registry b;
  a.load(fixture_path("duplicate_name_a"));
  b.load(fixture_path("duplicate_name_b"));
  troupe::Worker worker(0);
  troupe::TaskContext ctx("dup.which", worker);
  EXPECT_EQ(a.task("dup.which").invoke(ctx, {}, {}), "a");
  EXPECT_EQ(b.task("dup.which").invoke(ctx, {}, {}), "b");
}

TEST(PluginLoading, LoadingTheSameFileTwiceReturnsTheLoadedPlugin) {
  troupe::Registry registry;
  const troupe::Plugin& first = registry.load(plugin_path("text"));
  // Another spelling of the same file.
  auto other = plugin_path("text").parent_path() / "." / plugin_path("text").filename();
  const troupe::Plugin& second = registry.load(other);
  EXPECT_EQ(&first, &second);
  troupe::Registry another;
  EXPECT_EQ(&another.load(plugin_path("text")), &first);
}

TEST(PluginLoading, ConcurrentLoadsOfOneFileYieldOnePlugin) {
  std::vector<const troupe::Plugin*> seen(8);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&, i] { seen[i] = &troupe::load_plugin(plugin_path("testing")); });
  }
  for (auto& t : threads) {
    t.join();
  }
  for (const auto* p : seen) {
    EXPECT_EQ(p, seen.front());
  }
}

TEST(Registry, UnknownTaskSuggestsTheClosestName) {
  troupe::Registry registry;
  registry.load(plugin_path("text"));
  try {
    registry.task("text.wrds");
    FAIL() << "expected UnknownTaskError";
  } catch (const troupe::UnknownTaskError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("no task named 'text.wrds'"), HasSubstr("did you mean 'text.words'")));
  }
}

TEST(Registry, UnqualifiedNameExplainsQualification) {
  troupe::Registry registry;
  registry.load(plugin_path("text"));
  try {
    registry.task("tokenize");
    FAIL() << "expected UnknownTaskError";
  } catch (const troupe::UnknownTaskError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("names are qualified"), HasSubstr("'text.tokenize'")));
  }
}

TEST(Registry, UnknownPluginIsNamed) {
  troupe::Registry registry;
  registry.load(plugin_path("text"));
  EXPECT_THROW(
      {
        try {
          registry.task("image.resize");
        } catch (const troupe::UnknownTaskError& e) {
          EXPECT_THAT(e.what(), HasSubstr("no plugin 'image' is loaded"));
          throw;
        }
      },
      troupe::UnknownTaskError);
}

TEST(Registry, FindsHooksByQualifiedName) {
  troupe::Registry registry;
  registry.load(plugin_path("text"));
  EXPECT_EQ(registry.initializer("text.open_dict").name, "open_dict");
  EXPECT_EQ(registry.finalizer("text.close_dict").name, "close_dict");
  EXPECT_THROW(registry.initializer("text.close_dict"), troupe::UnknownTaskError);
}

TEST(Registry, PluginTasksRunThroughTheirSignatures) {
  troupe::Registry registry;
  registry.load(plugin_path("text"));
  troupe::Worker worker(0);
  troupe::TaskContext ctx("text.words", worker);
  EXPECT_EQ(registry.task("text.words").invoke(ctx, {troupe::Value{{"id", "d1"}, {"text", "one two three"}}}, {}), 3);
  EXPECT_EQ(registry.task("text.sha256").invoke(ctx, {"abc"}, {}),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Registry, ErrorsThrownInsideAPluginAreCaughtByTheirTroupeType) {
  // The adapter throws troupe::ArgumentError from the plugin's own code; the
  // host must catch it by type across the library boundary.
  troupe::Registry registry;
  registry.load(plugin_path("text"));
  troupe::Worker worker(0);
  troupe::TaskContext ctx("text.add", worker);
  EXPECT_THROW(registry.task("text.add").invoke(ctx, {1, "two"}, {}), troupe::ArgumentError);
  EXPECT_THROW(registry.task("text.add").invoke(ctx, {1}, {}), troupe::Error);
}

TEST(Registry, AnonymousStateTypesOfTwoPluginsStayApart) {
  // Both plugins keep a `namespace { struct State }` of different layouts.
  troupe::Registry registry;
  registry.load(fixture_path("anon_state_a"));
  registry.load(fixture_path("anon_state_b"));
  troupe::Worker worker(0);
  registry.initializer("anon_state_a.put").invoke(worker, {}, {});
  troupe::TaskContext ctx("x", worker);
  EXPECT_EQ(registry.task("anon_state_a.has").invoke(ctx, {}, {}), true);
  EXPECT_EQ(registry.task("anon_state_b.has").invoke(ctx, {}, {}), false);
}

TEST(Registry, WorkerStateFromAnInitializerReachesTasks) {
  TempDir dir;
  std::ofstream(dir.path() / "dict.txt") << "alpha beta\ngamma\n";
  troupe::Registry registry;
  registry.load(plugin_path("text"));
  troupe::Worker worker(1);
  registry.initializer("text.open_dict").invoke(worker, {(dir.path() / "dict.txt").string()}, {});
  troupe::TaskContext ctx("text.known_words", worker);
  EXPECT_EQ(registry.task("text.known_words").invoke(ctx, {"Alpha and gamma"}, {}),
            (troupe::Value{{"known", 2}, {"unknown", 1}}));
  registry.finalizer("text.close_dict").invoke(worker, {}, {});
  EXPECT_THROW(registry.task("text.known_words").invoke(ctx, {"x"}, {}), troupe::Error);
}

}  // namespace
