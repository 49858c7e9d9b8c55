// A job's JSON Lines output: one record per finished item, each written
// with one write(2) as it finishes, and the scan that --resume and
// --retry-failed start from.
//
// Record: {"key": K, "ok": true, "value": V, "attempts": N, "worker": W, "ms": T}
//     or: {"key": K, "ok": false, "error": {"type", "message", "causes": [{"type", "message"}],
//          "traceback"}, "attempts": N, "worker": W, "ms": T}
// `worker` is null when unknown. Strings that are not valid UTF-8 are
// written with U+FFFD replacements; binary values as {"base64": "..."}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "pipeline/job_key.hpp"
#include "troupe/runner.hpp"

namespace troupe::detail::pipeline {

// The record of one finished item, with its trailing '\n'. Never throws for
// a value that JSON cannot hold as is (invalid UTF-8, binary): it is
// written escaped.
std::string format_record(const JobKey& key, const RunOutcome& outcome);

// The error part of a record (`type`, `message`, `causes`, `traceback`).
Value error_record(const std::exception_ptr& error);

class RecordWriter {
 public:
  enum class Mode { create, append };  // create truncates
  // Throws InputError naming the path and errno's reason.
  RecordWriter(const std::filesystem::path& path, Mode mode, bool fsync);
  ~RecordWriter();
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;
  // One write(2) of the whole line (retried on a short write or EINTR),
  // then fdatasync when asked. Throws InputError naming the path.
  void write(const std::string& line);

 private:
  int fd_ = -1;
  bool fsync_ = false;
  std::filesystem::path path_;
};

// What an existing output holds. A last line without its '\n', or one that
// does not parse, is torn (a crash mid-write): `valid_bytes` ends before
// it, and resume truncates the file there. The sets answer contains(); the
// positions they hold are not the records' (an integer key is kept at its
// own value, so keys finished out of order still close up into runs).
struct OutputScan {
  KeySet ok;      // keys recorded ok
  KeySet failed;  // keys recorded failed (and not ok)
  std::uint64_t ok_count = 0;
  std::uint64_t failed_count = 0;
  std::uint64_t valid_bytes = 0;
  bool torn_tail = false;
};

// Throws InputError naming path:line for a record that parses but has no
// valid key/ok (not a troupe output), and when the file cannot be read.
OutputScan scan_output(const std::filesystem::path& path);

// --retry-failed: writes the ok records of `path` to a temporary file
// beside it and renames it over `path` (a crash never leaves it half
// rewritten); returns the scan of what was kept. A symbolic link is
// followed (the file it names is rewritten, the link stays); anything but
// a regular file is refused.
// The temporary file is locked while it is written, so that
// remove_stale_temporaries() can tell one a crash left from one in use.
OutputScan keep_only_ok(const std::filesystem::path& path);

// Removes the temporaries keep_only_ok left beside `output` (it was killed
// before its rename): files named .NAME.keep-ok-XXXXXX (six letters or
// digits) that are regular, of this user, mode 0600 with one link, and that
// no process holds locked. Every run that opens an output calls it first. Returns how
// many it removed. Best effort, never throws: a folder it cannot list is
// left as it is.
std::size_t remove_stale_temporaries(const std::filesystem::path& output);

}  // namespace troupe::detail::pipeline
