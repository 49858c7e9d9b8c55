// Records, RecordWriter, scan_output and keep_only_ok
// (engine/src/pipeline/job_output.cpp).
#include "pipeline/job_output.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include "scratch_dir.hpp"
#include "troupe/errors.hpp"
#include "troupe/process_errors.hpp"

namespace {

using ::testing::HasSubstr;
using troupe::InputError;
using troupe::RunOutcome;
using troupe::Value;
using troupe::detail::pipeline::error_record;
using troupe::detail::pipeline::format_record;
using troupe::detail::pipeline::JobKey;
using troupe::detail::pipeline::keep_only_ok;
using troupe::detail::pipeline::OutputScan;
using troupe::detail::pipeline::RecordWriter;
using troupe::detail::pipeline::remove_stale_temporaries;
using troupe::detail::pipeline::scan_output;
using troupe::test::ScratchDir;
using namespace std::chrono_literals;

template <class Throw>
std::exception_ptr caught(Throw&& fn) {
  try {
    fn();
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

RunOutcome ok_outcome(Value value, std::size_t attempts = 1, std::optional<std::size_t> worker = 2,
                      std::chrono::nanoseconds elapsed = 1'234'567ns) {
  RunOutcome outcome;
  outcome.value = std::move(value);
  outcome.attempts = attempts;
  outcome.worker = worker;
  outcome.elapsed = elapsed;
  return outcome;
}

RunOutcome failed_outcome(std::exception_ptr error) {
  RunOutcome outcome;
  outcome.error = std::move(error);
  outcome.attempts = 3;
  outcome.elapsed = 2ms;
  return outcome;
}

std::string ok_line(const JobKey& key) {
  return format_record(key, ok_outcome(Value(1)));
}

std::string failed_line(const JobKey& key) {
  return format_record(key, failed_outcome(std::make_exception_ptr(std::runtime_error("no"))));
}

JobKey key(std::int64_t k) {
  return JobKey(k);
}
JobKey key(const std::string& k) {
  return JobKey(k);
}

// ---- records

TEST(JobRecord, OkRecordHasItsFieldsInOrderOnOneLine) {
  EXPECT_EQ(format_record(key(7), ok_outcome(Value{{"n", 1}})),
            "{\"key\":7,\"ok\":true,\"value\":{\"n\":1},\"attempts\":1,\"worker\":2,\"ms\":1.235}\n");
  EXPECT_EQ(format_record(key("a/b.txt"), ok_outcome(Value("x"), 2, std::nullopt, 3ms)),
            "{\"key\":\"a/b.txt\",\"ok\":true,\"value\":\"x\",\"attempts\":2,\"worker\":null,\"ms\":3}\n");
}

TEST(JobRecord, MillisecondsHaveAtMostThreeDecimals) {
  const auto ms = [](std::chrono::nanoseconds elapsed) {
    return Value::parse(format_record(key(0), ok_outcome(Value(), 1, 0, elapsed)))["ms"].dump();
  };
  EXPECT_EQ(ms(0ns), "0");
  EXPECT_EQ(ms(499ns), "0");
  EXPECT_EQ(ms(500ns), "0.001");
  EXPECT_EQ(ms(1'500'000ns), "1.5");
  EXPECT_EQ(ms(12'340'000ns), "12.34");
  EXPECT_EQ(ms(-5ms), "0");
  EXPECT_EQ(ms(3600s), "3600000");
}

TEST(JobRecord, ErrorRecordCarriesTypeMessageCausesAndEmptyTraceback) {
  auto error = caught([] {
    try {
      throw std::invalid_argument("bad row");
    } catch (...) {
      std::throw_with_nested(troupe::InputError("reading part 3"));
    }
  });
  const std::string line = format_record(key(4), failed_outcome(error));
  EXPECT_EQ(line,
            "{\"key\":4,\"ok\":false,\"error\":{\"type\":\"troupe::InputError\",\"message\":\"reading part 3\","
            "\"causes\":[{\"type\":\"std::invalid_argument\",\"message\":\"bad row\"}],\"traceback\":\"\"},"
            "\"attempts\":3,\"worker\":null,\"ms\":2}\n");
  EXPECT_EQ(error_record(error)["causes"].size(), 1U);
}

TEST(JobRecord, RemoteErrorsGiveTheirRemoteTypesAndTrace) {
  auto error = caught([] {
    try {
      throw troupe::RemoteError("std::out_of_range", "index 9", "");
    } catch (...) {
      std::throw_with_nested(troupe::RemoteError("ValueError", "bad input", "#0 task at plugin.cpp:12"));
    }
  });
  const Value record = error_record(error);
  EXPECT_EQ(record["type"], "ValueError");
  EXPECT_EQ(record["message"], "bad input");
  EXPECT_EQ(record["causes"], (Value::array({Value{{"type", "std::out_of_range"}, {"message", "index 9"}}})));
  EXPECT_EQ(record["traceback"], "#0 task at plugin.cpp:12");
}

TEST(JobRecord, InvalidUtf8IsWrittenWithReplacementCharacters) {
  const std::string line = format_record(key("k\xFF"), ok_outcome(Value("caf\xC3\xA9 \xC3\x28")));
  const Value parsed = Value::parse(line);
  EXPECT_EQ(parsed["key"], "k\xEF\xBF\xBD");
  EXPECT_EQ(parsed["value"], "caf\xC3\xA9 \xEF\xBF\xBD(");
  const std::string failed =
      format_record(key(1), failed_outcome(std::make_exception_ptr(std::runtime_error("bad \xFE byte"))));
  EXPECT_EQ(Value::parse(failed)["error"]["message"], "bad \xEF\xBF\xBD byte");
}

TEST(JobRecord, BinaryValuesAreWrittenAsBase64) {
  EXPECT_THAT(format_record(key(1), ok_outcome(troupe::binary({'M', 'a', 'n'}))),
              HasSubstr("\"value\":{\"base64\":\"TWFu\"}"));
  EXPECT_THAT(
      format_record(key(1), ok_outcome(Value{{"b", troupe::binary({0xFF, 0x00})}, {"n", {troupe::binary({})}}})),
      HasSubstr("\"value\":{\"b\":{\"base64\":\"/wA=\"},\"n\":[{\"base64\":\"\"}]}"));
  EXPECT_THAT(format_record(key(1), ok_outcome(troupe::binary({'M'}))), HasSubstr("{\"base64\":\"TQ==\"}"));
}

TEST(JobRecord, EveryRecordIsOneLineOfJson) {
  const std::string line = format_record(key("multi\nline"), ok_outcome(Value("a\nb\r\n")));
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  EXPECT_EQ(Value::parse(line)["value"], "a\nb\r\n");
}

// ---- writer

TEST(RecordWriter, CreateTruncatesAndAppendAppends) {
  ScratchDir dir;
  const auto path = dir.write("out.jsonl", "old\n");
  {
    RecordWriter writer(path, RecordWriter::Mode::create, false);
    writer.write(ok_line(key(1)));
  }
  {
    RecordWriter writer(path, RecordWriter::Mode::append, true);
    writer.write(ok_line(key(2)));
  }
  EXPECT_EQ(dir.read("out.jsonl"), ok_line(key(1)) + ok_line(key(2)));
}

TEST(RecordWriter, LargeRecordIsWrittenWhole) {
  ScratchDir dir;
  const auto path = dir.path() / "out.jsonl";
  const std::string big = format_record(key(1), ok_outcome(Value(std::string(5'000'000, 'z'))));
  RecordWriter(path, RecordWriter::Mode::create, false).write(big);
  EXPECT_EQ(dir.read("out.jsonl"), big);
}

TEST(RecordWriter, UnopenablePathNamesItAndTheReason) {
  ScratchDir dir;
  try {
    RecordWriter writer(dir.path() / "no" / "such" / "out.jsonl", RecordWriter::Mode::create, false);
    FAIL() << "opened a file in a missing folder";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), "output '" + (dir.path() / "no/such/out.jsonl").string() +
                                         "': cannot open for writing: No such file or directory");
  }
}

TEST(RecordWriter, DirectoryCannotBeOpened) {
  ScratchDir dir;
  EXPECT_THROW(RecordWriter(dir.path(), RecordWriter::Mode::append, false), InputError);
}

TEST(RecordWriter, FailedWriteNamesThePathAndReason) {
  RecordWriter writer("/dev/full", RecordWriter::Mode::append, false);
  try {
    writer.write(ok_line(key(1)));
    FAIL() << "a write to /dev/full succeeded";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), "output '/dev/full': cannot write: No space left on device");
  }
}

// ---- scan

TEST(OutputScan, CountsOkAndFailedKeys) {
  ScratchDir dir;
  const std::string text = ok_line(key(1)) + failed_line(key(2)) + ok_line(key("a")) + failed_line(key("b"));
  const auto scan = scan_output(dir.write("out.jsonl", text));
  EXPECT_EQ(scan.ok_count, 2U);
  EXPECT_EQ(scan.failed_count, 2U);
  EXPECT_TRUE(scan.ok.contains(key(1)));
  EXPECT_TRUE(scan.ok.contains(key("a")));
  EXPECT_TRUE(scan.failed.contains(key(2)));
  EXPECT_TRUE(scan.failed.contains(key("b")));
  EXPECT_FALSE(scan.ok.contains(key(2)));
  EXPECT_EQ(scan.valid_bytes, text.size());
  EXPECT_FALSE(scan.torn_tail);
}

TEST(OutputScan, EmptyFileIsAnEmptyScan) {
  ScratchDir dir;
  const auto scan = scan_output(dir.write("out.jsonl", ""));
  EXPECT_EQ(scan.ok_count + scan.failed_count + scan.valid_bytes, 0U);
  EXPECT_FALSE(scan.torn_tail);
}

TEST(OutputScan, KeyRecordedOkAfterFailingIsNotFailed) {
  ScratchDir dir;
  const auto scan = scan_output(dir.write("out.jsonl", failed_line(key(5)) + ok_line(key(5)) + failed_line(key(6)) +
                                                           failed_line(key(7)) + ok_line(key(7)) + failed_line(key(8)) +
                                                           ok_line(key(8)) + failed_line(key(5))));
  EXPECT_EQ(scan.ok_count, 3U);
  EXPECT_EQ(scan.failed_count, 1U);
  EXPECT_TRUE(scan.failed.contains(key(6)));
  EXPECT_FALSE(scan.failed.contains(key(5)));
  EXPECT_FALSE(scan.failed.contains(key(7)));
}

TEST(OutputScan, LastLineWithoutNewlineIsTorn) {
  ScratchDir dir;
  const std::string whole = ok_line(key(1)) + ok_line(key(2));
  const std::string torn = ok_line(key(3)).substr(0, 10);
  const auto scan = scan_output(dir.write("out.jsonl", whole + torn));
  EXPECT_TRUE(scan.torn_tail);
  EXPECT_EQ(scan.valid_bytes, whole.size());
  EXPECT_EQ(scan.ok_count, 2U);
  EXPECT_FALSE(scan.ok.contains(key(3)));
  // A whole record without its '\n' is torn too: appending after it would join two lines.
  std::string unterminated = ok_line(key(3));
  unterminated.pop_back();
  const auto scan2 = scan_output(dir.write("out2.jsonl", whole + unterminated));
  EXPECT_TRUE(scan2.torn_tail);
  EXPECT_EQ(scan2.valid_bytes, whole.size());
  EXPECT_FALSE(scan2.ok.contains(key(3)));
}

TEST(OutputScan, LastLineThatIsNotJsonIsTorn) {
  ScratchDir dir;
  const std::string whole = ok_line(key(1));
  const auto scan = scan_output(dir.write("out.jsonl", whole + "{\"key\":2,\"ok\":tr\n"));
  EXPECT_TRUE(scan.torn_tail);
  EXPECT_EQ(scan.valid_bytes, whole.size());
}

TEST(OutputScan, GarbageInTheMiddleNamesPathAndLine) {
  ScratchDir dir;
  const auto path = dir.write("out.jsonl", ok_line(key(1)) + "{\"key\":2,\"ok\":tr\n" + ok_line(key(3)));
  try {
    scan_output(path);
    FAIL() << "garbage went unnoticed";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr(path.string() + ":2: not JSON: "));
    EXPECT_THAT(e.what(), HasSubstr("(not a troupe output record)"));
  }
}

TEST(OutputScan, RecordWithoutKeyOrOkIsNotATroupeOutput) {
  ScratchDir dir;
  const auto path = dir.write("a.jsonl", ok_line(key(1)) + "{\"ok\":true}\n");
  try {
    scan_output(path);
    FAIL() << "a record without a key was accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), path.string() +
                                         ":2: a record needs a \"key\" that is a string or an integer "
                                         "(not a troupe output record)");
  }
  EXPECT_THROW(scan_output(dir.write("b.jsonl", "{\"key\":1,\"ok\":\"yes\"}\n")), InputError);
  EXPECT_THROW(scan_output(dir.write("c.jsonl", "{\"key\":1.5,\"ok\":true}\n")), InputError);
  EXPECT_THROW(scan_output(dir.write("d.jsonl", "[1,2]\n")), InputError);
}

TEST(OutputScan, MissingFileNamesThePath) {
  ScratchDir dir;
  try {
    scan_output(dir.path() / "none.jsonl");
    FAIL() << "a missing output scanned";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("output '" + (dir.path() / "none.jsonl").string() + "': cannot open"));
  }
}

TEST(OutputScan, IntegerKeysInCompletionOrderStaySmall) {
  ScratchDir dir;
  constexpr std::int64_t kKeys = 200'000;
  {
    RecordWriter writer(dir.path() / "out.jsonl", RecordWriter::Mode::create, false);
    std::string batch;
    // Completion order: each block of 64 keys finishes back to front.
    for (std::int64_t block = 0; block < kKeys; block += 64) {
      for (std::int64_t k = block + 63; k >= block; --k) {
        batch += "{\"key\":" + std::to_string(k) + (k % 1000 == 0 ? ",\"ok\":false" : ",\"ok\":true") + "}\n";
      }
      if (batch.size() > (1 << 20)) {
        writer.write(batch);
        batch.clear();
      }
    }
    writer.write(batch);
  }
  const auto scan = scan_output(dir.path() / "out.jsonl");
  EXPECT_EQ(scan.ok_count, static_cast<std::uint64_t>(kKeys - kKeys / 1000));
  EXPECT_EQ(scan.failed_count, static_cast<std::uint64_t>(kKeys / 1000));
  // About a bit a key: far under 16 bytes each.
  EXPECT_LT(scan.ok.memory_bytes() + scan.failed.memory_bytes(), 128U << 10);
  EXPECT_TRUE(scan.ok.contains(key(199'999)));
  EXPECT_TRUE(scan.failed.contains(key(199'000)));
  EXPECT_FALSE(scan.ok.contains(key(199'000)));
}

TEST(OutputScan, DirectoryIsNotAnOutput) {
  ScratchDir dir;
  try {
    scan_output(dir.path());
    FAIL() << "a directory scanned";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), "output '" + dir.path().string() + "': cannot read: Is a directory");
  }
}

TEST(OutputScan, OnlyATornLineLeavesNothingValid) {
  ScratchDir dir;
  const auto scan = scan_output(dir.write("out.jsonl", "{\"key\":1,\"o"));
  EXPECT_TRUE(scan.torn_tail);
  EXPECT_EQ(scan.valid_bytes, 0U);
  EXPECT_EQ(scan.ok_count, 0U);
}

TEST(OutputScan, BlankLinesAreSkippedAndCountAsValid) {
  ScratchDir dir;
  const std::string text = "\n" + ok_line(key(1)) + "  \n" + ok_line(key(2)) + "\n";
  const auto scan = scan_output(dir.write("out.jsonl", text));
  EXPECT_FALSE(scan.torn_tail);
  EXPECT_EQ(scan.valid_bytes, text.size());
  EXPECT_EQ(scan.ok_count, 2U);
}

TEST(OutputScan, RecordsRoundTripThroughTheWriter) {
  ScratchDir dir;
  const auto path = dir.path() / "out.jsonl";
  {
    RecordWriter writer(path, RecordWriter::Mode::create, false);
    writer.write(format_record(key("caf\xFF"), ok_outcome(troupe::binary({1, 2, 3}))));
    writer.write(format_record(key(-3), failed_outcome(std::make_exception_ptr(std::runtime_error("x")))));
  }
  const auto scan = scan_output(path);
  EXPECT_TRUE(scan.ok.contains(key("caf\xEF\xBF\xBD")));  // as written: with U+FFFD
  EXPECT_TRUE(scan.failed.contains(key(-3)));
}

// ---- keep_only_ok

TEST(KeepOnlyOk, RewritesTheOutputWithItsOkRecords) {
  ScratchDir dir;
  const std::string kept = ok_line(key(1)) + ok_line(key("x"));
  const auto path = dir.write("out.jsonl", ok_line(key(1)) + failed_line(key(2)) + "\n" + ok_line(key("x")) +
                                               failed_line(key("y")) + "{\"key\":9,\"ok\":tr");
  ::chmod(path.c_str(), 0640);
  const OutputScan scan = keep_only_ok(path);
  EXPECT_EQ(dir.read("out.jsonl"), kept);
  EXPECT_EQ(scan.ok_count, 2U);
  EXPECT_EQ(scan.failed_count, 0U);
  EXPECT_TRUE(scan.ok.contains(key("x")));
  EXPECT_FALSE(scan.torn_tail);
  EXPECT_EQ(scan.valid_bytes, kept.size());
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0640U);
  // Nothing is left beside it.
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    ++entries;
  }
  EXPECT_EQ(entries, 1U);
}

TEST(KeepOnlyOk, ThroughASymbolicLinkTheFileItNamesIsRewrittenAndTheLinkStays) {
  ScratchDir dir;
  const auto real = dir.write("real.jsonl", ok_line(key(1)) + failed_line(key(2)));
  const auto link = dir.path() / "link.jsonl";
  std::filesystem::create_symlink(real, link);
  const OutputScan scan = keep_only_ok(link);
  EXPECT_EQ(scan.ok_count, 1U);
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_EQ(dir.read("real.jsonl"), ok_line(key(1)));
}

TEST(KeepOnlyOk, AnOutputThatIsNotARegularFileIsRefusedAndLeftAlone) {
  ScratchDir dir;
  const auto fifo = dir.path() / "fifo.jsonl";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  try {
    keep_only_ok(fifo);
    FAIL() << "a FIFO was rewritten";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("fifo.jsonl"));
    EXPECT_THAT(e.what(), HasSubstr("must be a regular file"));
  }
  EXPECT_FALSE(std::filesystem::is_regular_file(fifo));
  const auto dangling = dir.path() / "dangling.jsonl";
  std::filesystem::create_symlink(dir.path() / "nowhere.jsonl", dangling);
  EXPECT_THROW(keep_only_ok(dangling), InputError);
  EXPECT_TRUE(std::filesystem::is_symlink(dangling));
}

TEST(KeepOnlyOk, BadOutputIsLeftAsItWas) {
  ScratchDir dir;
  const std::string text = ok_line(key(1)) + "garbage\n" + ok_line(key(2));
  const auto path = dir.write("out.jsonl", text);
  EXPECT_THROW(keep_only_ok(path), InputError);
  EXPECT_EQ(dir.read("out.jsonl"), text);
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    ++entries;
  }
  EXPECT_EQ(entries, 1U);
}

TEST(KeepOnlyOk, AllFailedLeavesAnEmptyFile) {
  ScratchDir dir;
  const auto path = dir.write("out.jsonl", failed_line(key(1)) + failed_line(key(2)));
  const auto scan = keep_only_ok(path);
  EXPECT_EQ(dir.read("out.jsonl"), "");
  EXPECT_EQ(scan.ok_count, 0U);
}

TEST(KeepOnlyOk, OnlyATornLineLeavesAnEmptyFile) {
  ScratchDir dir;
  const auto path = dir.write("out.jsonl", "{\"key\":1,\"ok\":tr");
  const auto scan = keep_only_ok(path);
  EXPECT_EQ(dir.read("out.jsonl"), "");
  EXPECT_EQ(scan.valid_bytes, 0U);
}

// As mkostemp makes a temporary: mode 0600.
std::filesystem::path write_temporary(ScratchDir& dir, const std::string& name, const std::string& text) {
  const auto path = dir.write(name, text);
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return path;
}

TEST(RemoveStaleTemporaries, RemovesUnlockedTemporariesOfItsOutputOnly) {
  ScratchDir dir;
  const auto output = dir.write("out.jsonl", ok_line(key(1)));
  write_temporary(dir, ".out.jsonl.keep-ok-a1B2c3", "stale");
  write_temporary(dir, ".out.jsonl.keep-ok-zzzzzz", "stale too");
  write_temporary(dir, ".out.jsonl.keep-ok-short", "not its naming");
  write_temporary(dir, ".out.jsonl.keep-ok-a-b_c.", "not mkostemp's characters");
  write_temporary(dir, ".other.jsonl.keep-ok-a1B2c3", "another output's");
  dir.write(".out.jsonl.keep-ok-result", "another job's output, named like a temporary (mode 0644)");
  const auto linked = write_temporary(dir, ".out.jsonl.keep-ok-HARDLN", "a second name of a file");
  std::filesystem::create_hard_link(linked, dir.path() / "kept-elsewhere");
  dir.write(".out.jsonl.keep-ok-held/inner", "a folder");
  std::filesystem::create_symlink(output, dir.path() / ".out.jsonl.keep-ok-linked");
  // One that a live run holds locked, as keep_only_ok holds its own.
  const auto held = write_temporary(dir, ".out.jsonl.keep-ok-LIVE00", "in use");
  const int fd = ::open(held.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  EXPECT_EQ(remove_stale_temporaries(output), 2U);
  ::close(fd);
  std::set<std::string> left;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    left.insert(entry.path().filename().string());
  }
  EXPECT_EQ(left, (std::set<std::string>{"out.jsonl", ".out.jsonl.keep-ok-short", ".out.jsonl.keep-ok-a-b_c.",
                                         ".other.jsonl.keep-ok-a1B2c3", ".out.jsonl.keep-ok-result",
                                         ".out.jsonl.keep-ok-HARDLN", "kept-elsewhere", ".out.jsonl.keep-ok-held",
                                         ".out.jsonl.keep-ok-linked", ".out.jsonl.keep-ok-LIVE00"}));
  EXPECT_EQ(dir.read("out.jsonl"), ok_line(key(1)));
  EXPECT_EQ(remove_stale_temporaries(output), 1U);  // unlocked now: its run is gone
}

TEST(RemoveStaleTemporaries, ThroughALinkItCleansBesideTheFileTheLinkNames) {
  ScratchDir dir;
  const auto real = dir.write("data/real.jsonl", ok_line(key(1)));
  write_temporary(dir, "data/.real.jsonl.keep-ok-Abc123", "stale");
  const auto link = dir.path() / "link.jsonl";
  std::filesystem::create_symlink(real, link);
  EXPECT_EQ(remove_stale_temporaries(link), 1U);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "data/.real.jsonl.keep-ok-Abc123"));
}

TEST(RemoveStaleTemporaries, NoFolderYetOrOneItCannotListIsNothingToRemove) {
  ScratchDir dir;
  EXPECT_EQ(remove_stale_temporaries(dir.path() / "not/yet/out.jsonl"), 0U);
  EXPECT_EQ(remove_stale_temporaries(dir.write("file", "x") / "out.jsonl"), 0U);  // its "folder" is a file
}

TEST(KeepOnlyOk, ItsOwnTemporaryIsLockedSoACleanerLeavesItAlone) {
  // A retry-failed run and a cleaner at once: the cleaner may take a
  // temporary only before it is locked, and the run then makes another.
  ScratchDir dir;
  std::string lines;
  for (int i = 0; i < 20000; ++i) {
    lines += ok_line(key(i));
  }
  const auto path = dir.write("out.jsonl", lines);
  std::atomic<bool> done{false};
  std::atomic<std::size_t> removed{0};
  std::thread cleaner([&] {
    while (!done.load()) {
      removed += remove_stale_temporaries(path);
    }
  });
  std::optional<OutputScan> scan;
  std::string error;
  try {
    scan = keep_only_ok(path);
  } catch (const std::exception& e) {
    error = e.what();
  }
  done = true;
  cleaner.join();
  ASSERT_TRUE(scan.has_value()) << error;
  EXPECT_EQ(scan->ok_count, 20000U);
  EXPECT_EQ(dir.read("out.jsonl"), lines);
}

}  // namespace
