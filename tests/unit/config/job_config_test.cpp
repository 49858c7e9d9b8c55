// `jobs:` of a config file: every key reaches its JobSpec, defaults, paths
// from the file's folder, --set on a job by name, the places later checks
// use, and a catalogue of malformed jobs each named at its line:col.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "troupe/config.hpp"

namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using troupe::JobInputSpec;
using troupe::JobSpec;
using troupe::Value;

const std::string kOrigin = "/cfg/troupe.yaml";

// Lines 1-5 of every file here; jobs start on line 6.
const std::string kHead = "version: 1\npools:\n  cpu: {kind: process}\n  io: {kind: thread}\njobs:\n";

troupe::EngineSpec load(const std::string& jobs, std::vector<std::string> overrides = {}) {
  return troupe::config::load_string(kHead + jobs, kOrigin, {.overrides = std::move(overrides)});
}

std::vector<troupe::ConfigProblem> problems_of(const std::string& yaml, std::vector<std::string> overrides = {}) {
  try {
    troupe::config::load_string(yaml, kOrigin, {.overrides = std::move(overrides)});
  } catch (const troupe::ConfigError& e) {
    return e.problems();
  }
  return {};
}

const JobSpec& job(const troupe::EngineSpec& spec, const std::string& name) {
  for (const auto& j : spec.jobs) {
    if (j.name == name) {
      return j;
    }
  }
  throw std::runtime_error("no job " + name);
}

const std::string kFullJobs = R"(  - name: count.words-1
    pool: cpu
    task: text.word_counts
    args: [data/extra.txt, 3]
    kwargs: {min_count: 2, label: "x", flag: true}
    inputs:
      jsonl: data/docs.jsonl
      key: id
    chunk_size: 64
    retries: 2
    timeout: 1500ms
    output: results/counts.jsonl
    after: prepare
  - name: prepare
    pool: io
    task: text.upper
    inputs: {range: [10, -10, -3]}
    chunk_size: auto
    timeout: none
  - name: tally
    pool: io
    task: text.tally
    inputs: {from: count.words-1, key: word}
    after: [prepare]
  - name: files
    pool: cpu
    task: text.sha256_file
    inputs: {glob: "corpus/**/*.txt"}
  - name: listed
    pool: cpu
    task: text.upper
    inputs: {lines: /abs/words.txt}
  - name: inline
    pool: io
    task: text.add
    args: [1]
    inputs: {items: [1, "two", {id: 3}, [4], ~, 2.5]}
)";

TEST(JobConfig, EveryKeyReachesTheJobSpec) {
  const auto spec = load(kFullJobs);
  ASSERT_EQ(spec.jobs.size(), 6u);
  const JobSpec& count = spec.jobs[0];
  EXPECT_EQ(count.name, "count.words-1");
  EXPECT_EQ(count.pool, "cpu");
  EXPECT_EQ(count.task, "text.word_counts");
  EXPECT_EQ(Value(count.args), Value::parse(R"(["data/extra.txt", 3])"));
  EXPECT_EQ(Value(count.kwargs), Value::parse(R"({"min_count": 2, "label": "x", "flag": true})"));
  EXPECT_EQ(count.inputs.kind, JobInputSpec::Kind::jsonl);
  EXPECT_EQ(count.inputs.path, "/cfg/data/docs.jsonl");
  EXPECT_EQ(count.inputs.key_field, "id");
  EXPECT_EQ(count.chunk_size, 64u);
  EXPECT_EQ(count.retries, 2u);
  EXPECT_EQ(count.timeout, 1500ms);
  EXPECT_EQ(count.output, "/cfg/results/counts.jsonl");
  EXPECT_THAT(count.after, ElementsAre("prepare"));

  const JobSpec& prepare = job(spec, "prepare");
  EXPECT_EQ(prepare.inputs.kind, JobInputSpec::Kind::range);
  EXPECT_EQ(prepare.inputs.start, 10);
  EXPECT_EQ(prepare.inputs.stop, -10);
  EXPECT_EQ(prepare.inputs.step, -3);
  EXPECT_EQ(prepare.chunk_size, 0u);
  EXPECT_EQ(prepare.timeout, std::nullopt);

  const JobSpec& tally = job(spec, "tally");
  EXPECT_EQ(tally.inputs.kind, JobInputSpec::Kind::from);
  EXPECT_EQ(tally.inputs.from, "count.words-1");
  EXPECT_EQ(tally.inputs.key_field, "word");

  EXPECT_EQ(job(spec, "files").inputs.kind, JobInputSpec::Kind::glob);
  EXPECT_EQ(job(spec, "listed").inputs.kind, JobInputSpec::Kind::lines);
  EXPECT_EQ(job(spec, "listed").inputs.path, "/abs/words.txt");

  const JobSpec& inline_items = job(spec, "inline");
  EXPECT_EQ(inline_items.inputs.kind, JobInputSpec::Kind::items);
  EXPECT_EQ(Value(inline_items.inputs.items), Value::parse(R"([1, "two", {"id": 3}, [4], null, 2.5])"));
}

TEST(JobConfig, UnsetKeysTakeTheirDefaults) {
  const auto spec = load("  - name: up\n    pool: io\n    task: text.upper\n    inputs: {range: [0, 5]}\n");
  ASSERT_EQ(spec.jobs.size(), 1u);
  const JobSpec& up = spec.jobs[0];
  EXPECT_TRUE(up.args.empty());
  EXPECT_TRUE(up.kwargs.empty());
  EXPECT_EQ(up.inputs.step, 1);
  EXPECT_EQ(up.inputs.key_field, std::nullopt);
  EXPECT_EQ(up.chunk_size, 0u);  // automatic
  EXPECT_EQ(up.retries, 0u);
  EXPECT_EQ(up.timeout, std::nullopt);
  EXPECT_EQ(up.output, "/cfg/out/up.jsonl");
  EXPECT_TRUE(up.after.empty());
}

TEST(JobConfig, PathsResolveFromTheFilesFolderButTaskArgumentsStayAsWritten) {
  const auto spec = troupe::config::load_string(
      kHead +
          "  - name: a\n    pool: io\n    task: text.upper\n    args: [../x.txt]\n    inputs: {lines: ../in/a.txt}\n"
          "    output: ./o/../a.jsonl\n"
          "  - name: b\n    pool: io\n    task: text.upper\n    inputs: {glob: \"data/*.txt\"}\n"
          "  - name: c\n    pool: io\n    task: text.upper\n    inputs: {jsonl: /data/c.jsonl}\n"
          "    output: /results/c.jsonl\n",
      "/srv/app/conf/troupe.yaml");
  EXPECT_EQ(spec.jobs[0].inputs.path, "/srv/app/in/a.txt");
  EXPECT_EQ(spec.jobs[0].output, "/srv/app/conf/a.jsonl");
  EXPECT_EQ(Value(spec.jobs[0].args), Value::parse(R"(["../x.txt"])"));
  EXPECT_EQ(spec.jobs[1].inputs.pattern, "/srv/app/conf/data/*.txt");
  EXPECT_EQ(spec.jobs[1].output, "/srv/app/conf/out/b.jsonl");
  EXPECT_EQ(spec.jobs[2].inputs.path, "/data/c.jsonl");
  EXPECT_EQ(spec.jobs[2].output, "/results/c.jsonl");
}

TEST(JobConfig, FromImpliesAfterOnce) {
  const auto spec = load(
      "  - name: a\n    pool: io\n    task: text.upper\n    inputs: {items: [x]}\n"
      "  - name: b\n    pool: io\n    task: text.upper\n    inputs: {items: [x]}\n"
      "  - name: c\n    pool: io\n    task: text.upper\n    inputs: {from: a}\n    after: [b]\n"
      "  - name: d\n    pool: io\n    task: text.upper\n    after: [c, a]\n    inputs: {from: a}\n");
  EXPECT_THAT(job(spec, "c").after, ElementsAre("b", "a"));
  EXPECT_THAT(job(spec, "d").after, ElementsAre("c", "a"));
}

TEST(JobConfig, AfterTakesOneNameOrAList) {
  const auto spec = load(
      "  - name: a\n    pool: io\n    task: text.upper\n    inputs: {items: []}\n"
      "  - name: b\n    pool: io\n    task: text.upper\n    inputs: {items: []}\n    after: a\n");
  EXPECT_THAT(job(spec, "b").after, ElementsAre("a"));
  EXPECT_TRUE(job(spec, "a").inputs.items.empty());
}

TEST(JobConfig, RangeBoundsSpanAllOfInt64) {
  const auto spec = load(
      "  - name: r\n    pool: io\n    task: text.upper\n"
      "    inputs: {range: [-9223372036854775808, 9223372036854775807, 9223372036854775807]}\n");
  EXPECT_EQ(spec.jobs[0].inputs.start, std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(spec.jobs[0].inputs.stop, std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(spec.jobs[0].inputs.step, std::numeric_limits<std::int64_t>::max());
}

TEST(JobConfig, NoJobsIsAnEmptyList) {
  EXPECT_TRUE(load("").jobs.empty());
  EXPECT_TRUE(load("  []\n").jobs.empty());
  EXPECT_TRUE(troupe::config::load_string("version: 1\n", kOrigin).jobs.empty());
}

TEST(JobConfig, SetChangesAJobAddressedByName) {
  const auto spec = load(kFullJobs, {"jobs.prepare.retries=5", "jobs.count.words-1.chunk_size=8",
                                     "jobs.inline.inputs={range: [0, 3]}", "jobs.tally.timeout=2s"});
  EXPECT_EQ(job(spec, "prepare").retries, 5u);
  EXPECT_EQ(job(spec, "count.words-1").chunk_size, 8u);  // a dotted name: the longest name that matches
  EXPECT_EQ(job(spec, "inline").inputs.kind, JobInputSpec::Kind::range);
  EXPECT_EQ(job(spec, "inline").inputs.stop, 3);
  EXPECT_EQ(job(spec, "tally").timeout, 2s);
}

TEST(JobConfig, SetOnAnUnknownJobNamesTheOverride) {
  const auto problems = problems_of(kHead + kFullJobs, {"jobs.prepar.retries=5"});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].origin, "--set jobs.prepar.retries=5");
  EXPECT_EQ(problems[0].line, 0);
  EXPECT_EQ(problems[0].path, "jobs.prepar");
  EXPECT_THAT(problems[0].message, HasSubstr("no job named 'prepar'"));
  EXPECT_THAT(problems[0].message, HasSubstr("did you mean 'prepare'"));
}

TEST(JobConfig, SetOnAFileWithoutJobsSaysSo) {
  const auto problems = problems_of("version: 1\npools: {}\n", {"jobs.a.retries=1"});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].origin, "--set jobs.a.retries=1");
  EXPECT_THAT(problems[0].message, HasSubstr("the file has no jobs"));
}

TEST(JobConfig, SetValueProblemsNameTheOverride) {
  const auto problems = problems_of(kHead + kFullJobs, {"jobs.prepare.chunk_size=0"});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].to_string(),
            "--set jobs.prepare.chunk_size=0: error: jobs[1].chunk_size: must be at least 1 (or auto), found 0");
}

TEST(JobConfig, SetCanReplaceTheWholeJobList) {
  const auto spec = load(kFullJobs, {"jobs=[{name: z, pool: io, task: text.upper, inputs: {items: [1]}}]"});
  ASSERT_EQ(spec.jobs.size(), 1u);
  EXPECT_EQ(spec.jobs[0].name, "z");
}

TEST(JobConfig, EveryKeysPlaceIsRecordedForLaterChecks) {
  const auto spec = load(kFullJobs);
  const auto at = [&](const std::string& path) {
    const auto& place = spec.sources.at(path);
    EXPECT_EQ(place.origin, kOrigin) << path;
    return std::pair{place.line, place.column};
  };
  EXPECT_EQ(at("jobs[0]"), std::pair(6, 5));
  EXPECT_EQ(at("jobs[0].task"), std::pair(8, 11));
  EXPECT_EQ(at("jobs[0].args"), std::pair(9, 11));
  EXPECT_EQ(at("jobs[0].args[1]"), std::pair(9, 28));
  EXPECT_EQ(at("jobs[0].kwargs.label"), std::pair(10, 28));
  EXPECT_EQ(at("jobs[0].inputs.jsonl"), std::pair(12, 14));
  EXPECT_EQ(at("jobs[0].after"), std::pair(18, 12));
  EXPECT_EQ(at("jobs[1].inputs.range"), std::pair(22, 21));
  EXPECT_EQ(at("jobs[2].after[0]"), std::pair(29, 13));
}

TEST(JobConfig, EveryJobProblemIsReportedAtOnce) {
  const auto problems = problems_of(kHead +
                                    "  - name: a\n    pool: cpu\n    task: text.upper\n    inputs: {range: [0, x]}\n"
                                    "    retries: many\n"
                                    "  - name: b\n    pool: gpu\n    task: text.upper\n    inputs: {items: [1]}\n");
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0].path, "jobs[0].inputs.range[1]");
  EXPECT_EQ(problems[1].path, "jobs[0].retries");
  EXPECT_EQ(problems[2].path, "jobs[1].pool");
}

TEST(JobConfig, BrokenJobStillCountsAsExistingForItsDependents) {
  // `a` has a bad chunk_size; `b` naming it must not add "no job named 'a'".
  const auto problems = problems_of(kHead +
                                    "  - name: a\n    pool: cpu\n    task: text.upper\n    inputs: {items: [1]}\n"
                                    "    chunk_size: -1\n"
                                    "  - name: b\n    pool: cpu\n    task: text.upper\n    inputs: {from: a}\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].path, "jobs[0].chunk_size");
}

TEST(JobConfig, BrokenPoolIsNotAlsoAnUnknownPool) {
  const auto problems = problems_of(
      "version: 1\npools:\n  cpu: {kind: proces}\njobs:\n"
      "  - {name: a, pool: cpu, task: text.upper, inputs: {items: [1]}}\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].path, "pools.cpu.kind");
}

TEST(JobConfig, CycleIsNamedInFull) {
  const auto problems = problems_of(kHead +
                                    "  - {name: a, pool: io, task: text.upper, inputs: {from: c}}\n"
                                    "  - {name: b, pool: io, task: text.upper, inputs: {items: [1]}, after: a}\n"
                                    "  - {name: c, pool: io, task: text.upper, inputs: {items: [1]}, after: [x, b]}\n");
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].path, "jobs[2].after[0]");
  EXPECT_THAT(problems[0].message, HasSubstr("no job named 'x'"));
  EXPECT_EQ(problems[1].path, "jobs[1].after");
  EXPECT_EQ(problems[1].line, 7);
  EXPECT_THAT(problems[1].message, HasSubstr("in a cycle: a -> c -> b -> a"));
}

TEST(JobConfig, LongCycleIsFoundWithoutDeepRecursionAndShownByItsEnds) {
  // 20,000 jobs, each after the next, the last after the first.
  constexpr int kJobs = 20'000;
  std::string yaml = kHead;
  for (int i = 0; i < kJobs; ++i) {
    yaml += "  - {name: j" + std::to_string(i) + ", pool: io, task: text.upper, inputs: {items: []}, after: j" +
            std::to_string((i + 1) % kJobs) + "}\n";
  }
  const auto problems = problems_of(yaml);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].path, "jobs[19999].after");
  EXPECT_THAT(problems[0].message,
              HasSubstr("j0 -> j1 -> j2 -> j3 -> ... (19993 more) -> j19997 -> j19998 -> j19999 -> j0"));
}

TEST(JobConfig, DuplicateNameAndSharedOutputNameBothPlaces) {
  const auto problems =
      problems_of(kHead +
                  "  - {name: a, pool: io, task: text.upper, inputs: {items: [1]}}\n"
                  "  - {name: a, pool: io, task: text.upper, inputs: {items: [1]}, output: other.jsonl}\n"
                  "  - {name: b, pool: io, task: text.upper, inputs: {items: [1]}, output: ./out/a.jsonl}\n");
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].to_string(),
            "/cfg/troupe.yaml:7:12: error: jobs[1].name: duplicate job name 'a' (first at line 6, column 12); job "
            "names must be unique");
  EXPECT_EQ(problems[1].to_string(),
            "/cfg/troupe.yaml:8:73: error: jobs[2].output: job 'b' writes /cfg/out/a.jsonl, as job 'a' does (line 6, "
            "column 12); give each job an output of its own");
}

TEST(JobConfig, OutputsThroughALinkedFolderAreTheSameOutput) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / ("troupe-linked-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "out");
  std::filesystem::create_directory_symlink(dir / "out", dir / "outlink");
  const auto problems = problems_of(kHead + "  - {name: a, pool: io, task: text.upper, inputs: {items: [1]}, output: " +
                                    (dir / "out/same.jsonl").string() + "}\n" +
                                    "  - {name: b, pool: io, task: text.upper, inputs: {items: [1]}, output: " +
                                    (dir / "outlink/same.jsonl").string() + "}\n");
  std::filesystem::remove_all(dir);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].path, "jobs[1].output");
  EXPECT_THAT(problems[0].message, HasSubstr("as job 'a' does"));
}

struct Malformed {
  const char* name;
  std::string jobs;  // after kHead: the first job's `- ` is on line 6
  int line;
  int column;
  std::string message;  // a part of the first problem's message that names the fault
};

const std::string kJob = "  - name: a\n    pool: cpu\n    task: text.upper\n";  // lines 6-8

std::vector<Malformed> catalogue() {
  return {
      {"JobsNotAList", "  a: {pool: cpu}\n", 6, 3, "expected a list of jobs"},
      {"JobNotAMap", "  - a\n", 6, 5, "expected a job: a map with name, pool, task and inputs"},
      {"JobNull", "  - ~\n", 6, 5, "expected a job: a map with name, pool, task and inputs, found nothing (null)"},
      {"MissingTask", "  - name: a\n    pool: cpu\n    inputs: {items: [1]}\n", 6, 5, "missing key 'task'"},
      {"MissingName", "  - pool: cpu\n    task: text.upper\n    inputs: {items: [1]}\n", 6, 5, "missing key 'name'"},
      {"MissingInputs", kJob, 6, 5, "missing key 'inputs'"},
      {"UnknownKeyWithSuggestion", kJob + "    taks: text.upper\n    inputs: {items: [1]}\n", 9, 5,
       "unknown key 'taks'; did you mean 'task'"},
      {"NameWithSlash", "  - name: a/b\n    pool: cpu\n    task: text.upper\n    inputs: {items: [1]}\n", 6, 11,
       "a job name is letters, digits, '_', '.' and '-'"},
      {"NameEmpty", "  - name: \"\"\n    pool: cpu\n    task: text.upper\n    inputs: {items: [1]}\n", 6, 11,
       "a job name is letters"},
      {"UnknownPoolWithSuggestion", "  - name: a\n    pool: cpux\n    task: text.upper\n    inputs: {items: [1]}\n", 7,
       11, "no pool 'cpux' under pools:; did you mean 'cpu'"},
      {"TaskWithoutPlugin", "  - name: a\n    pool: cpu\n    task: upper\n    inputs: {items: [1]}\n", 8, 11,
       "a task name 'plugin.name'"},
      {"TaskEmpty", "  - name: a\n    pool: cpu\n    task: ''\n    inputs: {items: [1]}\n", 8, 11,
       "a task name must not be empty"},
      {"ArgsAMap", kJob + "    args: {a: 1}\n    inputs: {items: [1]}\n", 9, 11, "expected a list of positional"},
      {"KwargsAList", kJob + "    kwargs: [1]\n    inputs: {items: [1]}\n", 9, 13, "expected a map of keyword"},
      {"InputsNotAMap", kJob + "    inputs: [1, 2]\n", 9, 13, "expected a map with one of items, range"},
      {"InputsWithoutItems", kJob + "    inputs: {key: id}\n", 9, 13, "no items: give exactly one of"},
      {"InputsWithTwoKinds", kJob + "    inputs:\n      items: [1]\n      range: [0, 3]\n", 11, 7,
       "'range' and 'items' both give the job's items; keep exactly one"},
      {"InputsUnknownKeyWithSuggestion", kJob + "    inputs:\n      item: [1]\n", 10, 7,
       "unknown key 'item'; did you mean 'items'"},
      {"ItemsNotAList", kJob + "    inputs:\n      items: 5\n", 10, 14, "expected a list of items"},
      {"RangeStepZero", kJob + "    inputs:\n      range: [0, 10, 0]\n", 10, 22, "the step of a range must not be 0"},
      {"RangeOfStrings", kJob + "    inputs:\n      range: [a, b]\n", 10, 15, "expected a whole number"},
      {"RangeQuotedNumber", kJob + "    inputs:\n      range: [0, \"5\"]\n", 10, 18, "found '5'"},
      {"RangeFloat", kJob + "    inputs:\n      range: [0, 1.5]\n", 10, 18, "found '1.5'"},
      {"RangeOutOfInt64", kJob + "    inputs:\n      range: [0, 9223372036854775808]\n", 10, 18,
       "found '9223372036854775808'"},
      {"RangeOneNumber", kJob + "    inputs:\n      range: [5]\n", 10, 14,
       "expected [start, stop] or [start, stop, step]"},
      {"RangeScalar", kJob + "    inputs:\n      range: 10\n", 10, 14, "[start, stop]"},
      {"KeyWithRange", kJob + "    inputs:\n      range: [0, 3]\n      key: id\n", 11, 7,
       "key: takes a field of JSON object items (items, jsonl or from); range items are keyed by their index"},
      {"KeyWithLines", kJob + "    inputs:\n      lines: a.txt\n      key: id\n", 11, 7,
       "lines items are keyed by their line number"},
      {"KeyWithGlob", kJob + "    inputs:\n      glob: '*.txt'\n      key: id\n", 11, 7,
       "glob items are keyed by their path"},
      {"KeyEmpty", kJob + "    inputs:\n      jsonl: a.jsonl\n      key: ''\n", 11, 12,
       "the key field must not be empty"},
      {"LinesEmptyPath", kJob + "    inputs:\n      lines: ''\n", 10, 14, "expected a file path"},
      {"GlobAList", kJob + "    inputs:\n      glob: [a]\n", 10, 13, "expected a string"},
      {"ChunkSizeZero", kJob + "    inputs: {items: [1]}\n    chunk_size: 0\n", 10, 17, "must be at least 1 (or auto)"},
      {"ChunkSizeWord", kJob + "    inputs: {items: [1]}\n    chunk_size: big\n", 10, 17, "or auto, found 'big'"},
      {"RetriesNegative", kJob + "    inputs: {items: [1]}\n    retries: -1\n", 10, 14, "found '-1'"},
      {"TimeoutFast", kJob + "    inputs: {items: [1]}\n    timeout: fast\n", 10, 14, "fast"},
      {"TimeoutZero", kJob + "    inputs: {items: [1]}\n    timeout: 0s\n", 10, 14,
       "must be positive, or none for no timeout, found 0s"},
      {"OutputAList", kJob + "    inputs: {items: [1]}\n    output: [a]\n", 10, 13, "expected a file path"},
      {"AfterAMap", kJob + "    inputs: {items: [1]}\n    after: {b: 1}\n", 10, 12,
       "expected a job name or a list of job names"},
      {"AfterNamingItself", kJob + "    inputs: {items: [1]}\n    after: a\n", 10, 12, "job 'a' depends on itself"},
      {"FromItself", kJob + "    inputs: {from: a}\n", 9, 20, "job 'a' depends on itself"},
      {"AfterUnknownJobWithSuggestion",
       kJob + "    inputs: {items: [1]}\n  - name: bb\n    pool: cpu\n    task: text.upper\n    inputs: {items: [1]}\n"
              "    after: [aa]\n",
       14, 13, "no job named 'aa'; did you mean 'a'"},
      {"FromUnknownJob", kJob + "    inputs: {from: nowhere}\n", 9, 20, "no job named 'nowhere'"},
      {"TwoJobCycle",
       kJob + "    inputs: {from: b}\n  - {name: b, pool: cpu, task: text.upper, inputs: {items: [1]}, after: a}\n", 10,
       73, "in a cycle: a -> b -> a"},
      {"ThreeJobCycle",
       "  - {name: a, pool: cpu, task: text.upper, inputs: {items: [1]}, after: b}\n"
       "  - {name: b, pool: cpu, task: text.upper, inputs: {items: [1]}, after: c}\n"
       "  - {name: c, pool: cpu, task: text.upper, inputs: {items: [1]}, after: a}\n",
       8, 73, "in a cycle: a -> b -> c -> a"},
      {"DuplicateNames",
       kJob + "    inputs: {items: [1]}\n  - name: a\n    pool: io\n    task: text.upper\n"
              "    inputs: {items: [2]}\n    output: b.jsonl\n",
       10, 11, "duplicate job name 'a' (first at line 6, column 11)"},
      {"SameOutput",
       kJob + "    inputs: {items: [1]}\n    output: r.jsonl\n  - name: b\n    pool: io\n"
              "    task: text.upper\n    inputs: {items: [2]}\n    output: ./r.jsonl\n",
       15, 13, "job 'b' writes /cfg/r.jsonl, as job 'a' does (line 10, column 13)"},
      {"OutputAFolder", kJob + "    inputs: {items: [1]}\n    output: results/\n", 10, 13,
       "a file path for the records (not a folder)"},
      {"OutputIsItsOwnInput", kJob + "    inputs: {jsonl: data.jsonl}\n    output: ./data.jsonl\n", 10, 13,
       "job 'a' writes /cfg/data.jsonl, which is its own input (line 9, column 21)"},
      {"OutputIsAnotherJobsInput",
       kJob + "    inputs: {items: [1]}\n  - {name: b, pool: io, task: text.upper, inputs: {lines: out/a.jsonl}}\n", 6,
       11, "job 'a' writes /cfg/out/a.jsonl, which is the input of job 'b' (line 10, column 59)"},
  };
}

void PrintTo(const Malformed& m, std::ostream* out) {
  *out << m.name;
}

class MalformedJob : public ::testing::TestWithParam<Malformed> {};

TEST_P(MalformedJob, NamesExactPlaceAndFault) {
  const Malformed& m = GetParam();
  const auto problems = problems_of(kHead + m.jobs);
  ASSERT_FALSE(problems.empty()) << "accepted:\n" << m.jobs;
  const auto& first = problems.front();
  EXPECT_EQ(first.origin, kOrigin);
  EXPECT_EQ(first.line, m.line) << first.to_string();
  EXPECT_EQ(first.column, m.column) << first.to_string();
  EXPECT_THAT(first.message, HasSubstr(m.message)) << first.to_string();
}

INSTANTIATE_TEST_SUITE_P(Catalogue, MalformedJob, ::testing::ValuesIn(catalogue()),
                         [](const auto& entry) { return std::string(entry.param.name); });

TEST(JobConfig, PoolOfAFileWithoutPoolsSaysThereAreNone) {
  const auto problems =
      problems_of("version: 1\njobs:\n  - {name: a, pool: cpu, task: text.upper, inputs: {items: [1]}}\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0].message, HasSubstr("no pool 'cpu' under pools:; the file defines no pools"));
}

// docs/config.md's example of jobs is a file that loads (its plugin path
// is the reader's, so the plugins are set aside).
TEST(JobConfig, DocumentedExampleLoads) {
  std::ifstream in(std::string(TROUPE_SOURCE_DIR) + "/docs/config.md");
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t section = doc.find("\n## Jobs\n");
  ASSERT_NE(section, std::string::npos);
  const std::size_t begin = doc.find("```yaml\n", section) + 8;
  const std::size_t end = doc.find("```", begin);
  const auto spec =
      troupe::config::load_string(doc.substr(begin, end - begin), "/docs/troupe.yaml", {.overrides = {"plugins=[]"}});
  ASSERT_EQ(spec.jobs.size(), 4u);
  EXPECT_EQ(spec.jobs[1].inputs.from, "upper");
  EXPECT_EQ(spec.jobs[1].output, "/docs/results/hash.jsonl");
  EXPECT_EQ(spec.jobs[2].inputs.key_field, "id");
  EXPECT_EQ(spec.jobs[3].inputs.stop, 1000000);
}

TEST(JobConfig, AnIntegerPastSixtyFourBitsIsAProblemAtItsPlaceNotAFloat) {
  const auto problems = problems_of(kHead + R"(  - name: a
    pool: io
    task: text.upper
    args: [18446744073709551616]
    kwargs: {low: -9223372036854775809, fine: 18446744073709551615}
    inputs: {items: [1, 99999999999999999999]}
)");
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0].path, "jobs[0].args[0]");
  EXPECT_EQ(std::pair(problems[0].line, problems[0].column), std::pair(9, 12));
  EXPECT_THAT(problems[0].message,
              HasSubstr("pass it as a string (\"18446744073709551616\"), or as a float written with a decimal "
                        "point or an exponent (18446744073709551616.0)"));
  EXPECT_EQ(problems[1].path, "jobs[0].kwargs.low");
  EXPECT_EQ(std::pair(problems[1].line, problems[1].column), std::pair(10, 19));
  EXPECT_THAT(problems[1].message, HasSubstr("the integer -9223372036854775809 is outside"));
  EXPECT_EQ(problems[2].path, "jobs[0].inputs.items[1]");
  EXPECT_EQ(std::pair(problems[2].line, problems[2].column), std::pair(11, 25));
  EXPECT_THAT(problems[2].message, HasSubstr("the integer 99999999999999999999 is outside -2^63..2^64-1"));
}

TEST(JobConfig, IntegersAtTheSixtyFourBitLimitsStayIntegersAndFloatsStayFloats) {
  const auto spec = load(R"(  - name: a
    pool: io
    task: text.upper
    args: [18446744073709551615, -9223372036854775808, 1e30, 18446744073709551616.0, "18446744073709551616"]
    inputs: {items: [1]}
)");
  const auto& args = job(spec, "a").args;
  ASSERT_EQ(args.size(), 5u);
  EXPECT_TRUE(args[0].is_number_unsigned());
  EXPECT_EQ(args[0].get<std::uint64_t>(), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(args[1].get<std::int64_t>(), std::numeric_limits<std::int64_t>::min());
  EXPECT_TRUE(args[2].is_number_float());
  EXPECT_TRUE(args[3].is_number_float());
  EXPECT_EQ(args[4], "18446744073709551616");
}

}  // namespace
