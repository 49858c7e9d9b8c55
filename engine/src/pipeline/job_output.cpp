// Records, the writer that appends them one write(2) each, and the scan of
// an existing output that --resume and --retry-failed start from.
#include "pipeline/job_output.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "pipeline/line_reader.hpp"
#include "process/error_record.hpp"
#include "troupe/errors.hpp"

namespace troupe::detail::pipeline {
namespace {

std::string base64(const std::vector<std::uint8_t>& bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t group = (std::uint32_t{bytes[i]} << 16) | (std::uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    out += kAlphabet[(group >> 18) & 63];
    out += kAlphabet[(group >> 12) & 63];
    out += kAlphabet[(group >> 6) & 63];
    out += kAlphabet[group & 63];
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    const std::uint32_t group = (std::uint32_t{bytes[i]} << 16) | (rest == 2 ? std::uint32_t{bytes[i + 1]} << 8 : 0);
    out += kAlphabet[(group >> 18) & 63];
    out += kAlphabet[(group >> 12) & 63];
    out += rest == 2 ? kAlphabet[(group >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

bool has_binary(const Value& value) {
  if (value.is_binary()) {
    return true;
  }
  if (value.is_structured()) {
    for (const auto& child : value) {
      if (has_binary(child)) {
        return true;
      }
    }
  }
  return false;
}

// `value` with each binary as {"base64": "..."}.
Value without_binary(const Value& value) {
  if (value.is_binary()) {
    return Value{{"base64", base64(value.get_binary())}};
  }
  if (value.is_object()) {
    Value out = Value::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      out[it.key()] = without_binary(it.value());
    }
    return out;
  }
  if (value.is_array()) {
    Value out = Value::array();
    for (const auto& child : value) {
      out.push_back(without_binary(child));
    }
    return out;
  }
  return value;
}

// One line of JSON whatever the value holds: U+FFFD for invalid UTF-8.
std::string json_text(const Value& value) {
  if (has_binary(value)) {
    return without_binary(value).dump(-1, ' ', false, Value::error_handler_t::replace);
  }
  return value.dump(-1, ' ', false, Value::error_handler_t::replace);
}

// Milliseconds with at most 3 decimals, trailing zeros dropped: "12", "0.5", "3.142".
std::string milliseconds_text(std::chrono::nanoseconds elapsed) {
  const std::int64_t micros = elapsed.count() <= 0 ? 0 : (elapsed.count() + 500) / 1000;
  std::string text = std::to_string(micros / 1000);
  if (std::int64_t fraction = micros % 1000; fraction != 0) {
    std::string digits = std::to_string(fraction);
    digits.insert(0, 3 - digits.size(), '0');
    while (digits.back() == '0') {
      digits.pop_back();
    }
    text += "." + digits;
  }
  return text;
}

std::string system_reason(int error) {
  return std::strerror(error);
}

// What a line of an output holds, when it is a record.
struct Record {
  JobKey key;
  bool ok = false;
};

// Reads a record's top-level "key" and "ok" while checking the whole line
// is JSON, without building the document: a resume reads every record.
class RecordReader final : public nlohmann::json_sax<Value> {
 public:
  bool null() override { return depth_ > 1 || scalar(Value()); }
  bool boolean(bool value) override { return depth_ > 1 || scalar(Value(value)); }
  bool number_integer(number_integer_t value) override { return depth_ > 1 || scalar(Value(value)); }
  bool number_unsigned(number_unsigned_t value) override { return depth_ > 1 || scalar(Value(value)); }
  bool number_float(number_float_t value, const string_t&) override { return depth_ > 1 || scalar(Value(value)); }
  bool string(string_t& value) override { return depth_ > 1 || scalar(Value(std::move(value))); }
  bool binary(binary_t&) override { return depth_ > 1 || scalar(Value()); }
  bool start_object(std::size_t) override { return open(true); }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(false); }
  bool end_array() override { return close(); }
  bool key(string_t& name) override {
    if (depth_ == 1) {
      field_ = std::move(name);
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error_ = e.what();
    return false;
  }

  std::variant<Record, std::string> result(bool parsed) {
    if (!parsed) {
      if (auto close = error_.find("] "); !error_.empty() && error_.front() == '[' && close != std::string::npos) {
        error_.erase(0, close + 2);
      }
      return "not JSON: " + error_;
    }
    if (!top_type_.empty()) {
      return "a JSON " + top_type_ + ", not a record object";
    }
    if (!key_) {
      return "a record needs a \"key\" that is a string or an integer";
    }
    if (!ok_) {
      return "a record needs an \"ok\" that is true or false";
    }
    return Record{std::move(*key_), *ok_};
  }

 private:
  // A value at the top level (not an object) or of a top-level field.
  bool scalar(const Value& value) {
    if (depth_ == 0) {
      top_type_ = value.type_name();
    } else if (depth_ == 1) {
      field_value(&value);
    }
    return true;
  }
  bool open(bool object) {
    if (depth_ == 0 && !object) {
      top_type_ = "array";
    } else if (depth_ == 1) {
      field_value(nullptr);
    }
    ++depth_;
    return true;
  }
  bool close() {
    --depth_;
    return true;
  }
  // A later "key" or "ok" replaces an earlier one, as a parsed object would.
  void field_value(const Value* value) {
    if (field_ == "key") {
      key_ = value != nullptr ? key_from_json(*value) : std::nullopt;
    } else if (field_ == "ok") {
      ok_ = value != nullptr && value->is_boolean() ? std::optional<bool>(value->get<bool>()) : std::nullopt;
    }
  }

  int depth_ = 0;
  std::string field_;
  std::string top_type_;
  std::string error_;
  std::optional<JobKey> key_;
  std::optional<bool> ok_;
};

// The record on `text`, or the reason it is not one.
std::variant<Record, std::string> read_record(std::string_view text) {
  RecordReader reader;
  const bool parsed = Value::sax_parse(text, &reader);
  return reader.result(parsed);
}

bool blank(std::string_view text) {
  return text.find_first_not_of(" \t\r") == std::string_view::npos;
}

// The sets in a scan only answer "was this key recorded?", and records come
// in completion order: giving an integer key its own value as position
// lets every run of consecutive keys close up into one whatever order they
// finished in (about a bit a key), where the record's index would leave one
// entry per key.
void insert_recorded(KeySet& keys, const JobKey& key, std::uint64_t record_index) {
  if (const auto* number = std::get_if<std::int64_t>(&key)) {
    keys.insert(key, static_cast<std::uint64_t>(*number));
  } else {
    keys.insert(key, record_index);
  }
}

// Calls `fn(line, record)` for each record of `path` before `limit` bytes
// (blank lines skipped); a line that is not a record throws InputError.
void for_each_record(const std::filesystem::path& path, std::uint64_t limit,
                     const std::function<void(const Line&, const Record&)>& fn) {
  LineReader reader(path, "output");
  while (auto line = reader.next()) {
    if (line->offset >= limit) {
      return;
    }
    if (blank(line->text)) {
      continue;
    }
    auto record = read_record(line->text);
    if (auto* problem = std::get_if<std::string>(&record)) {
      throw InputError(path.string() + ":" + std::to_string(line->number) + ": " + *problem +
                       " (not a troupe output record)");
    }
    fn(*line, std::get<Record>(record));
  }
}

// What --retry-failed writes through: `path`, or the file its link names
// (the rename replaces a name, and must replace the file's, not the link).
std::filesystem::path rewritten_path(const std::filesystem::path& output) {
  std::error_code ec;
  std::filesystem::path path =
      std::filesystem::is_symlink(output, ec) ? std::filesystem::canonical(output, ec) : output;
  if (ec) {
    throw InputError("output '" + output.string() + "': cannot follow its link: " + ec.message());
  }
  return path;
}

constexpr std::string_view kTemporaryTag = ".keep-ok-";
constexpr std::size_t kTemporarySuffix = 6;  // mkostemp's XXXXXX

// .NAME.keep-ok- for the output NAME.
std::string temporary_prefix(const std::filesystem::path& output) {
  return "." + output.filename().string() + std::string(kTemporaryTag);
}

// Closes an fd and removes a temporary file unless told to keep it. The
// file is locked (flock) while open: a lock outlives no process, so a
// temporary nobody holds locked is one a crash left (or one being made:
// the constructor checks it still has its name once locked).
class TemporaryFile {
 public:
  explicit TemporaryFile(const std::filesystem::path& beside) {
    // A cleaner may take a new file before it is locked (it cannot tell it
    // from a stale one then): once locked, a file still under its name is
    // ours to keep; one a cleaner removed is made again.
    constexpr int kAttempts = 100;
    for (int attempt = 1;; ++attempt) {
      std::string name = (beside.parent_path() / (temporary_prefix(beside) + "XXXXXX")).string();
      fd_ = ::mkostemp(name.data(), O_CLOEXEC);
      if (fd_ < 0) {
        const int error = errno;  // before building the message can change it
        throw InputError("output '" + beside.string() +
                         "': cannot create a temporary file beside it: " + system_reason(error));
      }
      path_ = name;
      int locked = 0;
      do {
        locked = ::flock(fd_, LOCK_EX);
      } while (locked != 0 && errno == EINTR);
      if (locked != 0) {
        const int error = errno;  // before building the message can change it
        close();
        ::unlink(path_.c_str());
        throw InputError("output '" + beside.string() + "': cannot lock the temporary file '" + path_.string() +
                         "': " + system_reason(error));
      }
      struct stat by_fd {};
      struct stat by_name {};
      if (::fstat(fd_, &by_fd) == 0 && ::stat(path_.c_str(), &by_name) == 0 && by_fd.st_dev == by_name.st_dev &&
          by_fd.st_ino == by_name.st_ino) {
        return;
      }
      close();
      if (attempt == kAttempts) {
        throw InputError("output '" + beside.string() + "': each temporary file made beside it was removed by " +
                         "another troupe run before it could be locked; is another run cleaning this folder?");
      }
    }
  }
  ~TemporaryFile() {
    close();
    if (!kept_) {
      ::unlink(path_.c_str());
    }
  }
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;

  int fd() const noexcept { return fd_; }
  const std::filesystem::path& path() const noexcept { return path_; }
  void close() noexcept {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  void keep() noexcept { kept_ = true; }

 private:
  int fd_ = -1;
  std::filesystem::path path_;
  bool kept_ = false;
};

void write_all(int fd, std::string_view bytes, const std::filesystem::path& path) {
  while (!bytes.empty()) {
    const ssize_t wrote = ::write(fd, bytes.data(), bytes.size());
    if (wrote < 0) {
      if (errno == EINTR) {
        continue;
      }
      const int error = errno;  // before building the message can change it
      throw InputError("output '" + path.string() + "': cannot write: " + system_reason(error));
    }
    if (wrote == 0) {
      throw InputError("output '" + path.string() + "': cannot write: the write wrote nothing");
    }
    bytes.remove_prefix(static_cast<std::size_t>(wrote));
  }
}

void sync(int fd, const std::filesystem::path& path, bool data_only) {
  int result = 0;
  do {
    result = data_only ? ::fdatasync(fd) : ::fsync(fd);
  } while (result < 0 && errno == EINTR);
  if (result < 0) {
    const int error = errno;  // before building the message can change it
    throw InputError("output '" + path.string() + "': cannot sync: " + system_reason(error));
  }
}

}  // namespace

Value error_record(const std::exception_ptr& error) {
  const auto chain = exception_chain(error);
  Value causes = Value::array();
  for (std::size_t i = 1; i < chain.size(); ++i) {
    causes.push_back(Value{{"type", chain[i].type}, {"message", chain[i].message}});
  }
  return Value{{"type", chain.empty() ? std::string() : chain.front().type},
               {"message", chain.empty() ? std::string("no error") : chain.front().message},
               {"causes", std::move(causes)},
               {"traceback", process::remote_stack_trace(error)}};
}

std::string format_record(const JobKey& key, const RunOutcome& outcome) {
  std::string line = "{\"key\":" + json_text(key_to_json(key));
  if (outcome.ok()) {
    line += ",\"ok\":true,\"value\":" + json_text(outcome.value);
  } else {
    const Value error = error_record(outcome.error);
    // type, message, causes, traceback: in the order a reader looks for them.
    line += ",\"ok\":false,\"error\":{\"type\":" + json_text(error["type"]) +
            ",\"message\":" + json_text(error["message"]) + ",\"causes\":[";
    for (std::size_t i = 0; i < error["causes"].size(); ++i) {
      const Value& cause = error["causes"][i];
      line += (i == 0 ? "{\"type\":" : ",{\"type\":") + json_text(cause["type"]) +
              ",\"message\":" + json_text(cause["message"]) + "}";
    }
    line += "],\"traceback\":" + json_text(error["traceback"]) + "}";
  }
  line += ",\"attempts\":" + std::to_string(outcome.attempts);
  line += ",\"worker\":" + (outcome.worker ? std::to_string(*outcome.worker) : std::string("null"));
  line += ",\"ms\":" + milliseconds_text(outcome.elapsed) + "}\n";
  return line;
}

RecordWriter::RecordWriter(const std::filesystem::path& path, Mode mode, bool fsync) : fsync_(fsync), path_(path) {
  const int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (mode == Mode::create ? O_TRUNC : 0);
  do {
    fd_ = ::open(path.c_str(), flags, 0644);
  } while (fd_ < 0 && errno == EINTR);
  if (fd_ < 0) {
    const int error = errno;  // before building the message can change it
    throw InputError("output '" + path.string() + "': cannot open for writing: " + system_reason(error));
  }
}

RecordWriter::~RecordWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

void RecordWriter::write(const std::string& line) {
  write_all(fd_, line, path_);
  if (fsync_) {
    sync(fd_, path_, true);
  }
}

OutputScan scan_output(const std::filesystem::path& path) {
  OutputScan scan;
  bool failed_then_ok = false;
  std::uint64_t record_index = 0;
  LineReader reader(path, "output");
  while (auto line = reader.next()) {
    if (!line->terminated) {
      scan.torn_tail = true;  // a crash mid-write: whatever it holds is not a whole record
      break;
    }
    const std::uint64_t end = line->offset + line->text.size() + 1;
    if (blank(line->text)) {
      scan.valid_bytes = end;
      continue;
    }
    auto record = read_record(line->text);
    if (auto* problem = std::get_if<std::string>(&record)) {
      const std::string where = path.string() + ":" + std::to_string(line->number);
      if (std::get<std::string>(record).starts_with("not JSON") && !reader.next()) {
        scan.torn_tail = true;
        break;
      }
      throw InputError(where + ": " + *problem + " (not a troupe output record)");
    }
    const auto& [key, ok] = std::get<Record>(record);
    if (ok) {
      failed_then_ok = failed_then_ok || scan.failed.contains(key);
      insert_recorded(scan.ok, key, record_index);
    } else if (!scan.ok.contains(key)) {
      insert_recorded(scan.failed, key, record_index);
    }
    ++record_index;
    scan.valid_bytes = end;
  }
  if (failed_then_ok) {
    // A key that failed and was later recorded ok is not failed: collect
    // the failed set again now that every ok key is known.
    scan.failed = KeySet();
    std::uint64_t index = 0;
    for_each_record(path, scan.valid_bytes, [&](const Line&, const Record& record) {
      if (!record.ok && !scan.ok.contains(record.key)) {
        insert_recorded(scan.failed, record.key, index);
      }
      ++index;
    });
  }
  scan.ok_count = scan.ok.size();
  scan.failed_count = scan.failed.size();
  return scan;
}

OutputScan keep_only_ok(const std::filesystem::path& output) {
  // Only a regular file can be rewritten through a rename.
  const std::filesystem::path path = rewritten_path(output);
  struct stat original {};
  if (::stat(path.c_str(), &original) != 0) {
    const int error = errno;  // before building the message can change it
    throw InputError("output '" + path.string() + "': cannot read its mode: " + system_reason(error));
  }
  if (!S_ISREG(original.st_mode)) {
    throw InputError("output '" + output.string() +
                     "': --retry-failed rewrites the output through a temporary file and a rename, so it must be a "
                     "regular file, and this is not one");
  }
  OutputScan scan = scan_output(path);
  TemporaryFile temporary(path);
  constexpr std::size_t kFlushAt = 1 << 20;
  std::string pending;
  std::uint64_t kept_bytes = 0;
  for_each_record(path, scan.valid_bytes, [&](const Line& line, const Record& record) {
    if (!record.ok) {
      return;
    }
    pending.append(line.text);
    pending += '\n';
    kept_bytes += line.text.size() + 1;
    if (pending.size() >= kFlushAt) {
      write_all(temporary.fd(), pending, temporary.path());
      pending.clear();
    }
  });
  write_all(temporary.fd(), pending, temporary.path());
  // The output's mode only now: until the rename nears, the temporary keeps
  // mkostemp's 0600, which is how remove_stale_temporaries() knows one.
  if (::fchmod(temporary.fd(), original.st_mode & 07777) != 0) {
    const int error = errno;  // before building the message can change it
    throw InputError("output '" + temporary.path().string() + "': cannot set its mode: " + system_reason(error));
  }
  sync(temporary.fd(), temporary.path(), false);
  // Renamed while still open, so still locked: a cleaner never takes it between the close and the rename.
  if (::rename(temporary.path().c_str(), path.c_str()) != 0) {
    const int error = errno;  // before building the message can change it
    throw InputError("output '" + path.string() + "': cannot replace it with '" + temporary.path().string() +
                     "': " + system_reason(error));
  }
  temporary.keep();
  temporary.close();
  const std::filesystem::path directory = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) {
    const int error = errno;  // before building the message can change it
    throw InputError("output '" + path.string() +
                     "': cannot open its directory to sync the rename: " + system_reason(error));
  }
  const int synced = ::fsync(dir_fd);
  const int sync_error = errno;
  ::close(dir_fd);
  if (synced != 0) {
    throw InputError("output '" + path.string() + "': cannot sync its directory: " + system_reason(sync_error));
  }
  OutputScan kept;
  kept.ok = std::move(scan.ok);
  kept.ok_count = scan.ok_count;
  kept.valid_bytes = kept_bytes;
  return kept;
}

std::size_t remove_stale_temporaries(const std::filesystem::path& output) {
  // A link that cannot be followed has no temporary beside its file; the run reports the link itself.
  std::error_code ec;
  const std::filesystem::path linked =
      std::filesystem::is_symlink(output, ec) ? std::filesystem::canonical(output, ec) : output;
  const std::filesystem::path path = ec ? output : linked;
  const std::filesystem::path directory = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  const std::string prefix = temporary_prefix(path);
  struct DirCloser {
    void operator()(DIR* dir) const noexcept { ::closedir(dir); }
  };
  std::unique_ptr<DIR, DirCloser> dir(::opendir(directory.c_str()));
  if (!dir) {
    // No folder yet (no output, no temporary), or one that may be written but not listed: the
    // temporaries stay, and the job goes on; opening the output reports a folder it cannot use.
    return 0;
  }
  // mkostemp's six characters are letters and digits.
  const auto made_by_mkostemp = [&](std::string_view name) {
    return name.size() == prefix.size() + kTemporarySuffix && name.starts_with(prefix) &&
           std::all_of(name.begin() + static_cast<std::ptrdiff_t>(prefix.size()), name.end(), [](char c) {
             return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
           });
  };
  std::vector<std::string> stale;
  while (const dirent* entry = ::readdir(dir.get())) {
    if (made_by_mkostemp(entry->d_name)) {
      stale.emplace_back(entry->d_name);
    }
  }
  std::size_t removed = 0;
  for (const std::string& name : stale) {
    const std::filesystem::path candidate = directory / name;
    // Only what mkostemp makes: a regular file of ours, mode 0600, one link
    // (never another job's output that happens to share the pattern, nor a
    // second name of some file), looked at before it is opened.
    struct stat before {};
    if (::lstat(candidate.c_str(), &before) != 0 || !S_ISREG(before.st_mode) || before.st_nlink != 1 ||
        before.st_uid != ::geteuid() || (before.st_mode & 07777) != 0600) {
      continue;
    }
    const int fd = ::open(candidate.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      continue;  // gone already
    }
    struct stat info {};
    // The same file, and unlocked: its writer is gone (a lock held by a live run is left alone).
    if (::fstat(fd, &info) == 0 && info.st_dev == before.st_dev && info.st_ino == before.st_ino &&
        ::flock(fd, LOCK_EX | LOCK_NB) == 0 && ::unlink(candidate.c_str()) == 0) {
      ++removed;
    }
    ::close(fd);
  }
  return removed;
}

}  // namespace troupe::detail::pipeline
