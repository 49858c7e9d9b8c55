// open_input (engine/src/pipeline/job_input.cpp and the glob walk and line
// reader under it): every input kind, its keys, and its edge cases.
#include "pipeline/job_input.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "pipeline/job_key.hpp"
#include "scratch_dir.hpp"
#include "troupe/errors.hpp"

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using troupe::InputError;
using troupe::JobInputSpec;
using troupe::Value;
using troupe::detail::pipeline::InputItem;
using troupe::detail::pipeline::JobKey;
using troupe::detail::pipeline::open_input;
using troupe::test::ScratchDir;
using Kind = JobInputSpec::Kind;

constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

std::vector<InputItem> read_all(const JobInputSpec& spec, const std::filesystem::path& upstream = {}) {
  auto input = open_input(spec, upstream);
  std::vector<InputItem> items;
  while (auto item = input->next()) {
    items.push_back(std::move(*item));
  }
  return items;
}

std::vector<Value> values(const std::vector<InputItem>& items) {
  std::vector<Value> out;
  for (const auto& item : items) {
    out.push_back(item.value);
  }
  return out;
}

std::vector<JobKey> keys(const std::vector<InputItem>& items) {
  std::vector<JobKey> out;
  for (const auto& item : items) {
    out.push_back(item.key);
  }
  return out;
}

JobKey key(std::int64_t k) {
  return JobKey(k);
}
JobKey key(const std::string& k) {
  return JobKey(k);
}

std::string error_text(const InputItem& item) {
  if (!item.error) {
    return "no error";
  }
  try {
    std::rethrow_exception(item.error);
  } catch (const InputError& e) {
    return e.what();
  } catch (...) {
    return "not an InputError";
  }
}

JobInputSpec range(std::int64_t start, std::int64_t stop, std::int64_t step) {
  JobInputSpec spec;
  spec.kind = Kind::range;
  spec.start = start;
  spec.stop = stop;
  spec.step = step;
  return spec;
}

JobInputSpec file_spec(Kind kind, const std::filesystem::path& path) {
  JobInputSpec spec;
  spec.kind = kind;
  spec.path = path;
  return spec;
}

JobInputSpec glob(const std::filesystem::path& pattern) {
  JobInputSpec spec;
  spec.kind = Kind::glob;
  spec.pattern = pattern.string();
  return spec;
}

// ---- items

TEST(ItemsInput, KeysAreIndexesAndValuesTheItems) {
  JobInputSpec spec;
  spec.items = {Value("a"), Value(2), Value::object({{"x", 1}})};
  const auto items = read_all(spec);
  EXPECT_THAT(keys(items), ElementsAre(key(0), key(1), key(2)));
  EXPECT_THAT(values(items), ElementsAre(Value("a"), Value(2), Value::object({{"x", 1}})));
  EXPECT_EQ(items[2].position, 2U);
}

TEST(ItemsInput, EmptyListHasNoItems) {
  EXPECT_TRUE(read_all(JobInputSpec{}).empty());
}

TEST(ItemsInput, KeyFieldTakesTheFieldOfEachObject) {
  JobInputSpec spec;
  spec.items = {Value{{"id", "a"}, {"n", 1}}, Value{{"id", 7}}};
  spec.key_field = "id";
  const auto items = read_all(spec);
  EXPECT_THAT(keys(items), ElementsAre(key("a"), key(7)));
  EXPECT_FALSE(items[0].error);
  EXPECT_EQ(items[0].value, (Value{{"id", "a"}, {"n", 1}}));
}

TEST(ItemsInput, StringKeyFieldIsKeptAsARecordWritesIt) {
  JobInputSpec spec;
  spec.items = {Value{{"id", "a\xFF"}}};
  spec.key_field = "id";
  EXPECT_THAT(keys(read_all(spec)), ElementsAre(key("a\xEF\xBF\xBD")));
}

TEST(ItemsInput, MissingOrWrongKeyFieldIsAnItemErrorKeyedByIndex) {
  JobInputSpec spec;
  spec.items = {Value{{"name", "a"}}, Value{{"id", 1.5}}, Value("plain"), Value::array()};
  spec.key_field = "id";
  const auto items = read_all(spec);
  ASSERT_EQ(items.size(), 4U);
  EXPECT_THAT(keys(items), ElementsAre(key(0), key(1), key(2), key(3)));
  EXPECT_EQ(error_text(items[0]), "items[0]: the key field 'id' is missing");
  EXPECT_EQ(error_text(items[1]), "items[1]: the key field 'id' must be a string or an integer, not number");
  EXPECT_EQ(error_text(items[2]), "items[2]: the item is a string, not an object with the key field 'id'");
  EXPECT_EQ(error_text(items[3]), "items[3]: the item is an array, not an object with the key field 'id'");
}

// ---- range

TEST(RangeInput, IsHalfOpenLikePython) {
  const auto items = read_all(range(2, 6, 1));
  EXPECT_THAT(values(items), ElementsAre(Value(2), Value(3), Value(4), Value(5)));
  EXPECT_THAT(keys(items), ElementsAre(key(0), key(1), key(2), key(3)));
  EXPECT_THAT(values(read_all(range(0, 10, 4))), ElementsAre(Value(0), Value(4), Value(8)));
}

TEST(RangeInput, NegativeStepCountsDown) {
  EXPECT_THAT(values(read_all(range(5, 0, -2))), ElementsAre(Value(5), Value(3), Value(1)));
  EXPECT_THAT(values(read_all(range(-1, -4, -1))), ElementsAre(Value(-1), Value(-2), Value(-3)));
}

TEST(RangeInput, EmptyWhenStopIsNotAheadOfStart) {
  EXPECT_TRUE(read_all(range(5, 5, 1)).empty());
  EXPECT_TRUE(read_all(range(5, 0, 1)).empty());
  EXPECT_TRUE(read_all(range(0, 5, -1)).empty());
}

TEST(RangeInput, HugeRangeStreamsWithoutAllocating) {
  auto input = open_input(range(0, kMax, 1));
  for (std::int64_t i = 0; i < 1000; ++i) {
    auto item = input->next();
    ASSERT_TRUE(item);
    ASSERT_EQ(item->value, Value(i));
  }
}

TEST(RangeInput, EndsAtTheIntegerLimitsInsteadOfWrapping) {
  EXPECT_THAT(values(read_all(range(kMax - 2, kMax, 1))), ElementsAre(Value(kMax - 2), Value(kMax - 1)));
  EXPECT_THAT(values(read_all(range(kMax - 1, kMax, 5))), ElementsAre(Value(kMax - 1)));
  EXPECT_THAT(values(read_all(range(kMin + 1, kMin, -1))), ElementsAre(Value(kMin + 1)));
  EXPECT_THAT(values(read_all(range(kMin, kMax, kMax))), ElementsAre(Value(kMin), Value(-1), Value(kMax - 1)));
  EXPECT_THAT(values(read_all(range(kMax, kMin, kMin))), ElementsAre(Value(kMax), Value(-1)));
}

TEST(RangeInput, ZeroStepIsRefused) {
  try {
    open_input(range(0, 10, 0));
    FAIL() << "a zero step was accepted";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("the step must not be 0"));
  }
}

// ---- lines

TEST(LinesInput, KeysAreLineNumbersAndValuesTheLinesWithoutTheirEnd) {
  ScratchDir dir;
  const auto items = read_all(file_spec(Kind::lines, dir.write("in.txt", "alpha\nbeta\ngamma\n")));
  EXPECT_THAT(values(items), ElementsAre(Value("alpha"), Value("beta"), Value("gamma")));
  EXPECT_THAT(keys(items), ElementsAre(key(1), key(2), key(3)));
  EXPECT_EQ(items[2].position, 2U);
}

TEST(LinesInput, LastLineWithoutNewlineIsAnItem) {
  ScratchDir dir;
  EXPECT_THAT(values(read_all(file_spec(Kind::lines, dir.write("in.txt", "a\nb")))),
              ElementsAre(Value("a"), Value("b")));
}

TEST(LinesInput, CrLfEndingsAreStripped) {
  ScratchDir dir;
  EXPECT_THAT(values(read_all(file_spec(Kind::lines, dir.write("in.txt", "a\r\nb\r\nc\r")))),
              ElementsAre(Value("a"), Value("b"), Value("c")));
}

TEST(LinesInput, EmptyFileHasNoItemsAndEmptyLinesAreItems) {
  ScratchDir dir;
  EXPECT_TRUE(read_all(file_spec(Kind::lines, dir.write("empty.txt", ""))).empty());
  const auto items = read_all(file_spec(Kind::lines, dir.write("in.txt", "\n\nx\n")));
  EXPECT_THAT(values(items), ElementsAre(Value(""), Value(""), Value("x")));
  EXPECT_THAT(keys(items), ElementsAre(key(1), key(2), key(3)));
}

TEST(LinesInput, InvalidUtf8BecomesReplacementCharacters) {
  ScratchDir dir;
  const auto items = read_all(file_spec(Kind::lines, dir.write("in.txt", "ok \xC3\xA9\nbad \xFF\xFE end\n\xE2\x82\n")));
  EXPECT_THAT(values(items),
              ElementsAre(Value("ok \xC3\xA9"), Value("bad \xEF\xBF\xBD\xEF\xBF\xBD end"), Value("\xEF\xBF\xBD")));
}

TEST(LinesInput, ByteOrderMarkIsNotPartOfTheFirstLine) {
  ScratchDir dir;
  EXPECT_THAT(values(read_all(file_spec(Kind::lines, dir.write("in.txt", "\xEF\xBB\xBFhead\nx\n")))),
              ElementsAre(Value("head"), Value("x")));
}

TEST(LinesInput, LinesLongerThanTheReadBufferStayWhole) {
  ScratchDir dir;
  const std::string longer(300'000, 'q');
  const auto items = read_all(file_spec(Kind::lines, dir.write("in.txt", "a\n" + longer + "\nb")));
  EXPECT_THAT(values(items), ElementsAre(Value("a"), Value(longer), Value("b")));
}

TEST(LinesInput, MissingFileNamesThePathAndReason) {
  ScratchDir dir;
  try {
    open_input(file_spec(Kind::lines, dir.path() / "absent.txt"));
    FAIL() << "a missing file opened";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              "lines input '" + (dir.path() / "absent.txt").string() + "': cannot open: No such file or directory");
  }
}

TEST(LinesInput, UnreadableFileNamesThePathAndReason) {
  ScratchDir dir;
  std::filesystem::create_directory(dir.path() / "folder");
  try {
    read_all(file_spec(Kind::lines, dir.path() / "folder"));
    FAIL() << "a directory read as lines";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              "lines input '" + (dir.path() / "folder").string() + "': cannot read: Is a directory");
  }
}

// ---- jsonl

TEST(JsonlInput, ParsesEachLineWithLineNumberKeys) {
  ScratchDir dir;
  const auto items = read_all(file_spec(Kind::jsonl, dir.write("in.jsonl", "{\"a\":1}\n[1,2]\n\"s\"\n3\r\n")));
  EXPECT_THAT(values(items), ElementsAre(Value{{"a", 1}}, Value{1, 2}, Value("s"), Value(3)));
  EXPECT_THAT(keys(items), ElementsAre(key(1), key(2), key(3), key(4)));
}

TEST(JsonlInput, BlankLinesAreSkippedAndLineNumbersKept) {
  ScratchDir dir;
  const auto items = read_all(file_spec(Kind::jsonl, dir.write("in.jsonl", "1\n\n  \t\n2\n\r\n3")));
  EXPECT_THAT(values(items), ElementsAre(Value(1), Value(2), Value(3)));
  EXPECT_THAT(keys(items), ElementsAre(key(1), key(4), key(6)));
  EXPECT_EQ(items[2].position, 2U);
}

TEST(JsonlInput, LineThatDoesNotParseIsAnItemErrorNamingFileAndLine) {
  ScratchDir dir;
  const auto path = dir.write("in.jsonl", "1\n{\"a\": \n3\n\"\xFF\"\n");
  const auto items = read_all(file_spec(Kind::jsonl, path));
  ASSERT_EQ(items.size(), 4U);
  EXPECT_FALSE(items[0].error);
  EXPECT_EQ(items[1].key, key(2));
  EXPECT_THAT(error_text(items[1]), HasSubstr(path.string() + ":2: not JSON: "));
  EXPECT_THAT(error_text(items[1]), Not(HasSubstr("[json.exception")));
  EXPECT_EQ(items[2].value, Value(3));
  EXPECT_THAT(error_text(items[3]), HasSubstr(path.string() + ":4: not JSON: "));
}

// Refused for a field that is not its key, a line keeps the key it names.
TEST(JsonlInput, ALineRefusedForAWideIntegerKeepsItsKeyField) {
  ScratchDir dir;
  const auto path = dir.write("in.jsonl", "{\"id\": \"a\", \"v\": 18446744073709551616}\n");
  auto spec = file_spec(Kind::jsonl, path);
  spec.key_field = "id";
  const auto items = read_all(spec);
  ASSERT_EQ(items.size(), 1U);
  EXPECT_THAT(error_text(items[0]), HasSubstr(":1: the integer 18446744073709551616 is outside"));
  EXPECT_THAT(keys(items), ElementsAre(key("a")));
}

TEST(JsonlInput, ALineWithAnIntegerPastSixtyFourBitsIsThatLinesErrorAtItsPlace) {
  ScratchDir dir;
  const auto path = dir.write("in.jsonl",
                              "{\"id\": 1, \"n\": 18446744073709551616}\n{\"id\": 18446744073709551616}\n"
                              "{\"id\": 2, \"n\": 1e30}\n{\"id\": 3, \"n\": -9223372036854775808}\n");
  for (const bool keyed : {false, true}) {
    auto spec = file_spec(Kind::jsonl, path);
    if (keyed) {
      spec.key_field = "id";
    }
    const auto items = read_all(spec);
    ASSERT_EQ(items.size(), 4U);
    EXPECT_EQ(error_text(items[0]), path.string() +
                                        ":1: the integer 18446744073709551616 is outside -2^63..2^64-1, "
                                        "which no integer type holds; pass it as a string "
                                        "(\"18446744073709551616\"), or as a float written with a decimal "
                                        "point or an exponent (18446744073709551616.0) if losing its low "
                                        "digits is fine");
    EXPECT_THAT(error_text(items[1]), HasSubstr(":2: the integer 18446744073709551616 is outside"));
    EXPECT_FALSE(items[2].error);
    EXPECT_TRUE(items[2].value["n"].is_number_float());
    EXPECT_FALSE(items[3].error);
    if (keyed) {
      // Lines without their key are keyed by line number (docs/pipelines.md), here one a real key equals.
      EXPECT_THAT(keys(items), ElementsAre(key(1), key(2), key(2), key(3)));
    } else {
      EXPECT_THAT(keys(items), ElementsAre(key(1), key(2), key(3), key(4)));
    }
  }
}

TEST(JsonlInput, KeyFieldMustBeAStringOrIntegerOfAnObject) {
  ScratchDir dir;
  const auto path = dir.write(
      "in.jsonl", "{\"id\":\"a\"}\n{\"id\":5}\n{\"id\":null}\n{\"x\":1}\n[1]\n{\"id\":18446744073709551615}\n");
  auto spec = file_spec(Kind::jsonl, path);
  spec.key_field = "id";
  const auto items = read_all(spec);
  ASSERT_EQ(items.size(), 6U);
  EXPECT_THAT(keys(items), ElementsAre(key("a"), key(5), key(3), key(4), key(5), key(6)));
  EXPECT_FALSE(items[0].error);
  EXPECT_FALSE(items[1].error);
  EXPECT_EQ(error_text(items[2]), path.string() + ":3: the key field 'id' must be a string or an integer, not null");
  EXPECT_EQ(error_text(items[3]), path.string() + ":4: the key field 'id' is missing");
  EXPECT_EQ(error_text(items[4]), path.string() + ":5: the item is an array, not an object with the key field 'id'");
  EXPECT_EQ(error_text(items[5]),
            path.string() + ":6: the key field 'id' must be a string or an integer, not an integer past 2^63-1");
}

TEST(JsonlInput, ValueNestedTooDeepIsAnItemError) {
  ScratchDir dir;
  const std::string deep(200'000, '[');
  const std::string fits = std::string(512, '[') + std::string(512, ']');
  const std::string over = std::string(513, '[') + std::string(513, ']');
  const auto path = dir.write("in.jsonl", deep + "\n" + fits + "\n\"[[[[\"\n" + over + "\n");
  const auto items = read_all(file_spec(Kind::jsonl, path));
  ASSERT_EQ(items.size(), 4U);
  EXPECT_EQ(error_text(items[0]), path.string() + ":1: the value is nested deeper than 512 levels");
  EXPECT_FALSE(items[1].error);
  EXPECT_EQ(items[2].value, Value("[[[["));  // brackets in a string do not count
  EXPECT_EQ(error_text(items[3]), path.string() + ":4: the value is nested deeper than 512 levels");
}

TEST(JsonlInput, EmptyFileHasNoItems) {
  ScratchDir dir;
  EXPECT_TRUE(read_all(file_spec(Kind::jsonl, dir.write("in.jsonl", ""))).empty());
}

TEST(JsonlInput, MissingFileNamesThePath) {
  ScratchDir dir;
  EXPECT_THROW(
      {
        try {
          open_input(file_spec(Kind::jsonl, dir.path() / "none.jsonl"));
        } catch (const InputError& e) {
          EXPECT_THAT(e.what(), HasSubstr("jsonl input '" + (dir.path() / "none.jsonl").string() + "': cannot open"));
          throw;
        }
      },
      InputError);
}

// ---- glob

std::vector<std::string> glob_paths(const ScratchDir& dir, const std::string& pattern) {
  std::vector<std::string> out;
  for (const auto& item : read_all(glob((dir.path() / pattern)))) {
    EXPECT_EQ(item.key, JobKey(item.value.get<std::string>()));
    out.push_back(std::filesystem::path(item.value.get<std::string>()).lexically_relative(dir.path()).string());
  }
  return out;
}

TEST(GlobInput, StarMatchesWithinOneDirectorySorted) {
  ScratchDir dir;
  for (const char* name : {"c.txt", "a.txt", "b.log", "B.txt", "ab.txt"}) {
    dir.write(name, "x");
  }
  std::filesystem::create_directory(dir.path() / "d.txt");  // directories are never items
  EXPECT_THAT(glob_paths(dir, "*.txt"), ElementsAre("B.txt", "a.txt", "ab.txt", "c.txt"));
  EXPECT_THAT(glob_paths(dir, "?.txt"), ElementsAre("B.txt", "a.txt", "c.txt"));
  EXPECT_THAT(glob_paths(dir, "[ab]*"), ElementsAre("a.txt", "ab.txt", "b.log"));
}

TEST(GlobInput, DoubleStarMatchesAnyDepthIncludingNone) {
  ScratchDir dir;
  for (const char* name : {"top.txt", "a/one.txt", "a/b/two.txt", "a/b/c/three.txt", "a/b/c/skip.log", "z/four.txt"}) {
    dir.write(name, "x");
  }
  EXPECT_THAT(glob_paths(dir, "**/*.txt"),
              ElementsAre("a/b/c/three.txt", "a/b/two.txt", "a/one.txt", "top.txt", "z/four.txt"));
  EXPECT_THAT(glob_paths(dir, "a/**/two.txt"), ElementsAre("a/b/two.txt"));
  EXPECT_THAT(glob_paths(dir, "a/**"), ElementsAre("a/b/c/skip.log", "a/b/c/three.txt", "a/b/two.txt", "a/one.txt"));
}

TEST(GlobInput, RepeatedDoubleStarsGiveEachPathOnce) {
  ScratchDir dir;
  dir.write("a/b/x.txt", "x");
  EXPECT_THAT(glob_paths(dir, "**/**/*.txt"), ElementsAre("a/b/x.txt"));
  EXPECT_THAT(glob_paths(dir, "**/b/**/x.txt"), ElementsAre("a/b/x.txt"));
}

TEST(GlobInput, WildcardsInDirectoryComponents) {
  ScratchDir dir;
  for (const char* name : {"2024-01/a.csv", "2024-02/b.csv", "2023-12/c.csv", "2024-03/sub/d.csv"}) {
    dir.write(name, "x");
  }
  EXPECT_THAT(glob_paths(dir, "2024-*/*.csv"), ElementsAre("2024-01/a.csv", "2024-02/b.csv"));
}

TEST(GlobInput, HiddenEntriesNeedAnExplicitDot) {
  ScratchDir dir;
  for (const char* name : {".hidden.txt", "shown.txt", ".git/config.txt", "a/.cache/x.txt"}) {
    dir.write(name, "x");
  }
  EXPECT_THAT(glob_paths(dir, "*.txt"), ElementsAre("shown.txt"));
  EXPECT_THAT(glob_paths(dir, "**/*.txt"), ElementsAre("shown.txt"));
  EXPECT_THAT(glob_paths(dir, ".*.txt"), ElementsAre(".hidden.txt"));
}

TEST(GlobInput, NoMatchIsZeroItems) {
  ScratchDir dir;
  dir.write("a.txt", "x");
  EXPECT_TRUE(glob_paths(dir, "*.csv").empty());
  EXPECT_TRUE(glob_paths(dir, "missing/**/*.txt").empty());
  EXPECT_TRUE(glob_paths(dir, "a.txt/*").empty());
}

TEST(GlobInput, PatternWithoutWildcardsNamesOneFile) {
  ScratchDir dir;
  dir.write("a/b.txt", "x");
  EXPECT_THAT(glob_paths(dir, "a/b.txt"), ElementsAre("a/b.txt"));
  EXPECT_TRUE(glob_paths(dir, "a/c.txt").empty());
  EXPECT_TRUE(glob_paths(dir, "a").empty());
}

TEST(GlobInput, SymbolicLinksToDirectoriesAreNotFollowed) {
  ScratchDir dir;
  dir.write("real/x.txt", "x");
  std::filesystem::create_directory_symlink(dir.path() / "real", dir.path() / "link");
  std::filesystem::create_symlink(dir.path() / "real" / "x.txt", dir.path() / "file-link.txt");
  EXPECT_THAT(glob_paths(dir, "**/*.txt"), ElementsAre("file-link.txt", "real/x.txt"));
  EXPECT_THAT(glob_paths(dir, "link/*.txt"), ElementsAre("link/x.txt"));  // a literal prefix is a path
}

TEST(GlobInput, PathThatIsNotUtf8KeepsItsBytesAndGetsAWritableKey) {
  ScratchDir dir;
  const auto path = dir.write("caf\xFF.txt", "x");
  const auto items = read_all(glob(dir.path() / "*.txt"));
  ASSERT_EQ(items.size(), 1U);
  EXPECT_EQ(items[0].value, Value(path.string()));
  EXPECT_EQ(items[0].key, JobKey((dir.path() / "caf\xEF\xBF\xBD.txt").string()));
}

TEST(GlobInput, RootAloneOrAnUnclosedBracketMatchesNoFile) {
  ScratchDir dir;
  dir.write("[abc", "x");
  EXPECT_TRUE(read_all(glob("/")).empty());
  EXPECT_THAT(glob_paths(dir, "[abc"), ElementsAre("[abc"));  // no wildcard closes: a literal name
  EXPECT_THAT(glob_paths(dir, "*[abc"), ElementsAre("[abc"));
}

TEST(GlobInput, RelativePatternIsRefused) {
  JobInputSpec spec;
  spec.kind = Kind::glob;
  spec.pattern = "data/*.txt";
  EXPECT_THROW(open_input(spec), InputError);
}

TEST(GlobInput, DirectoryThatVanishesMidWalkIsAnInputError) {
  ScratchDir dir;
  dir.write("a/x.txt", "x");
  dir.write("b/y.txt", "y");
  auto input = open_input(glob(dir.path() / "*" / "*.txt"));
  std::filesystem::remove_all(dir.path() / "a");
  try {
    input->next();
    FAIL() << "a vanished directory went unnoticed";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("cannot read directory '" + (dir.path() / "a").string() + "': No such file or directory"));
  }
}

TEST(GlobInput, ManyFilesInManyDirectoriesStreamInOrder) {
  ScratchDir dir;
  std::vector<std::string> expected;
  for (int d = 0; d < 20; ++d) {
    for (int f = 0; f < 50; ++f) {
      char name[32];
      std::snprintf(name, sizeof(name), "d%02d/f%03d.dat", d, f);
      dir.write(name, "");
      expected.push_back(name);
    }
  }
  EXPECT_EQ(glob_paths(dir, "**/*.dat"), expected);
}

// ---- from

TEST(FromInput, ReadsOkRecordsWithTheirUpstreamKeys) {
  ScratchDir dir;
  const auto upstream = dir.write(
      "up.jsonl",
      "{\"key\":3,\"ok\":true,\"value\":{\"n\":9},\"attempts\":1,\"worker\":0,\"ms\":1}\n"
      "{\"key\":\"b\",\"ok\":false,\"error\":{\"type\":\"E\",\"message\":\"m\",\"causes\":[],\"traceback\":\"\"}}\n"
      "\n"
      "{\"key\":\"c\",\"ok\":true,\"value\":\"v\"}\n");
  JobInputSpec spec;
  spec.kind = Kind::from;
  spec.from = "up";
  const auto items = read_all(spec, upstream);
  EXPECT_THAT(keys(items), ElementsAre(key(3), key("c")));
  EXPECT_THAT(values(items), ElementsAre(Value{{"n", 9}}, Value("v")));
  EXPECT_EQ(items[1].position, 1U);
}

TEST(FromInput, TornLastLineIsIgnored) {
  ScratchDir dir;
  JobInputSpec spec;
  spec.kind = Kind::from;
  spec.from = "up";
  EXPECT_THAT(keys(read_all(spec, dir.write("a.jsonl", "{\"key\":1,\"ok\":true,\"value\":1}\n{\"key\":2,\"ok\":tr"))),
              ElementsAre(key(1)));
  // Whole but without its newline: the crash came before the '\n'.
  EXPECT_THAT(
      keys(read_all(spec, dir.write("b.jsonl", "{\"key\":1,\"ok\":true,\"value\":1}\n{\"key\":2,\"ok\":true}"))),
      ElementsAre(key(1)));
  EXPECT_THAT(keys(read_all(spec, dir.write("c.jsonl", "{\"key\":1,\"ok\":true,\"value\":1}\n{\"key\":2,\n"))),
              ElementsAre(key(1)));
}

TEST(FromInput, GarbageBeforeTheLastLineNamesFileAndLine) {
  ScratchDir dir;
  JobInputSpec spec;
  spec.kind = Kind::from;
  spec.from = "up";
  const auto path = dir.write("a.jsonl", "{\"key\":1,\"ok\":true,\"value\":1}\nnot json\n{\"key\":2,\"ok\":true}\n");
  auto input = open_input(spec, path);
  EXPECT_TRUE(input->next());
  try {
    input->next();
    FAIL() << "garbage went unnoticed";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr(path.string() + ":2: not JSON"));
  }
  const auto no_key = dir.write("b.jsonl", "{\"ok\":true}\n{\"key\":2,\"ok\":true}\n");
  EXPECT_THROW(read_all(spec, no_key), InputError);
}

TEST(FromInput, KeyFieldTakesAFieldOfTheUpstreamValue) {
  ScratchDir dir;
  JobInputSpec spec;
  spec.kind = Kind::from;
  spec.from = "up";
  spec.key_field = "name";
  const auto path =
      dir.write("a.jsonl", "{\"key\":1,\"ok\":true,\"value\":{\"name\":\"x\"}}\n{\"key\":2,\"ok\":true,\"value\":5}\n");
  const auto items = read_all(spec, path);
  ASSERT_EQ(items.size(), 2U);
  EXPECT_EQ(items[0].key, key("x"));
  EXPECT_EQ(items[1].key, key(2));
  EXPECT_EQ(error_text(items[1]), path.string() + ":2: the item is a number, not an object with the key field 'name'");
}

TEST(FromInput, WithoutTheUpstreamOutputIsAnInputError) {
  JobInputSpec spec;
  spec.kind = Kind::from;
  spec.from = "up";
  EXPECT_THROW(open_input(spec), InputError);
  ScratchDir dir;
  EXPECT_THROW(open_input(spec, dir.path() / "never-written.jsonl"), InputError);
}

TEST(OpenInput, KeyFieldOnAKindWithoutFieldsIsRefused) {
  ScratchDir dir;
  auto spec = file_spec(Kind::lines, dir.write("in.txt", "a\n"));
  spec.key_field = "id";
  try {
    open_input(spec);
    FAIL() << "key_field on lines was accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              "key: id applies to items, jsonl and from inputs only; a lines input is keyed by its line number");
  }
  auto numbers = range(0, 3, 1);
  numbers.key_field = "id";
  EXPECT_THROW(open_input(numbers), InputError);
  auto paths = glob(dir.path() / "*");
  paths.key_field = "id";
  EXPECT_THROW(open_input(paths), InputError);
}

// ---- bounded memory

// Sanitizer allocators keep freed blocks (ASan's quarantine holds up to
// 256 MiB) or shadow them, so there resident memory measures the
// allocator, not what the reader holds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kResidentMemoryMeasuresTheReader = false;
#else
constexpr bool kResidentMemoryMeasuresTheReader = true;
#endif

std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size = 0;
  std::size_t resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

TEST(LinesInput, MillionsOfLinesStreamInFlatMemory) {
  ScratchDir dir;
  constexpr std::int64_t kLines = 3'000'000;
  {
    std::ofstream out(dir.path() / "big.txt", std::ios::binary);
    for (std::int64_t i = 0; i < kLines; ++i) {
      out << "line number " << i << " of the generated input\n";
    }
  }
  const auto file_bytes = std::filesystem::file_size(dir.path() / "big.txt");
  ASSERT_GT(file_bytes, 100U << 20);
  const std::size_t before = resident_bytes();
  std::size_t peak = before;
  troupe::detail::pipeline::KeySet seen;
  auto input = open_input(file_spec(Kind::lines, dir.path() / "big.txt"));
  std::int64_t count = 0;
  while (auto item = input->next()) {
    ASSERT_FALSE(seen.insert(item->key, item->position));
    if (++count % 100'000 == 0) {
      peak = std::max(peak, resident_bytes());
    }
  }
  EXPECT_EQ(count, kLines);
  EXPECT_LT(seen.memory_bytes(), 4096U);
  // The file is over 100 MiB; reading it may cost the read buffer, not the file.
  if (kResidentMemoryMeasuresTheReader) {
    EXPECT_LT(peak - before, 8U << 20) << "resident memory grew from " << before << " to " << peak;
  }
}

}  // namespace
