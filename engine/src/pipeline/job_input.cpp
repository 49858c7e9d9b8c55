// The six input kinds behind open_input, each a JobInput that holds one line
// or one directory listing at a time (an items list is already in memory).
#include "pipeline/job_input.hpp"

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/json_strings.hpp"
#include "pipeline/glob_walk.hpp"
#include "pipeline/line_reader.hpp"
#include "pipeline/utf8.hpp"
#include "troupe/detail/json_integers.hpp"
#include "troupe/errors.hpp"

namespace troupe::detail::pipeline {
namespace {

std::exception_ptr input_error(std::string message) {
  return std::make_exception_ptr(InputError(std::move(message)));
}

// nlohmann's message without its "[json.exception.parse_error.101] " tag.
std::string parse_reason(const std::exception& e) {
  std::string text = e.what();
  if (!text.empty() && text.front() == '[') {
    if (auto close = text.find("] "); close != std::string::npos) {
      text.erase(0, close + 2);
    }
  }
  return text;
}

constexpr int kMaxDepth = 512;

// Lines nested deeper than kMaxDepth are refused before parsing: copying,
// writing and sending a value recurse once per level, so a line of a
// million '[' would overflow the stack there.
bool too_deep(std::string_view text) {
  int depth = 0;
  JsonStringTracker strings;
  for (const char c : text) {
    if (strings.in_string(c)) {
      continue;
    }
    if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) {
        return true;
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

const std::string kTooDeep = "the value is nested deeper than " + std::to_string(kMaxDepth) + " levels";

bool blank(std::string_view text) {
  return text.find_first_not_of(" \t\r") == std::string_view::npos;
}

std::string_view without_cr(std::string_view text) {
  if (!text.empty() && text.back() == '\r') {
    text.remove_suffix(1);
  }
  return text;
}

// The `key: FIELD` of `value`, or the reason it has none (after `where: `).
std::variant<JobKey, std::string> field_key(const Value& value, const std::string& field) {
  if (!value.is_object()) {
    return "the item is " + std::string(value.is_array() ? "an " : "a ") + value.type_name() +
           ", not an object with the key field '" + field + "'";
  }
  auto it = value.find(field);
  if (it == value.end()) {
    return "the key field '" + field + "' is missing";
  }
  if (auto key = key_from_json(*it)) {
    return *std::move(key);
  }
  return "the key field '" + field + "' must be a string or an integer, not " +
         (it->is_number_unsigned() ? std::string("an integer past 2^63-1") : std::string(it->type_name()));
}

// `item.key` from `key_field`, or `item.error` saying why not (the key
// stays the default one).
void apply_key_field(InputItem& item, const std::optional<std::string>& key_field, const std::string& where) {
  if (!key_field) {
    return;
  }
  auto key = field_key(item.value, *key_field);
  if (auto* reason = std::get_if<std::string>(&key)) {
    item.error = input_error(where + ": " + *reason);
  } else {
    item.key = std::get<JobKey>(std::move(key));
    if (auto* text = std::get_if<std::string>(&item.key)) {
      *text = valid_utf8(*text);  // as a record will hold it, so a resume finds it again
    }
  }
}

class ItemsInput final : public JobInput {
 public:
  ItemsInput(std::vector<Value> items, std::optional<std::string> key_field)
      : items_(std::move(items)), key_field_(std::move(key_field)) {}

  std::optional<InputItem> next() override {
    if (next_ == items_.size()) {
      return std::nullopt;
    }
    const std::uint64_t index = next_++;
    InputItem item{JobKey(static_cast<std::int64_t>(index)), index, std::move(items_[index])};
    apply_key_field(item, key_field_, "items[" + std::to_string(index) + "]");
    return item;
  }

 private:
  std::vector<Value> items_;
  std::optional<std::string> key_field_;
  std::uint64_t next_ = 0;
};

// Python's range(start, stop, step), computed as it goes: never a list, and
// a value past the int64 limits ends it instead of wrapping.
class RangeInput final : public JobInput {
 public:
  RangeInput(std::int64_t start, std::int64_t stop, std::int64_t step) : current_(start), stop_(stop), step_(step) {
    if (step == 0) {
      throw InputError("range [" + std::to_string(start) + ", " + std::to_string(stop) +
                       ", 0]: the step must not be 0");
    }
  }

  std::optional<InputItem> next() override {
    if (done_ || (step_ > 0 ? current_ >= stop_ : current_ <= stop_)) {
      return std::nullopt;
    }
    const std::uint64_t index = index_++;
    InputItem item{JobKey(static_cast<std::int64_t>(index)), index, Value(current_)};
    done_ = __builtin_add_overflow(current_, step_, &current_);
    return item;
  }

 private:
  std::int64_t current_;
  std::int64_t stop_;
  std::int64_t step_;
  std::uint64_t index_ = 0;
  bool done_ = false;
};

// Key: the line number; value: the line without its end, U+FFFD for bytes
// that are not UTF-8. An empty line is an item (""); a UTF-8 byte order
// mark at the start of the file is not part of the first line.
class LinesInput final : public JobInput {
 public:
  explicit LinesInput(const std::filesystem::path& path) : reader_(path, "lines input") {}

  std::optional<InputItem> next() override {
    auto line = reader_.next();
    if (!line) {
      return std::nullopt;
    }
    std::string_view text = without_cr(line->text);
    if (line->number == 1 && text.starts_with("\xEF\xBB\xBF")) {
      text.remove_prefix(3);
    }
    const std::uint64_t position = position_++;
    return InputItem{JobKey(static_cast<std::int64_t>(line->number)), position, Value(valid_utf8(text))};
  }

 private:
  LineReader reader_;
  std::uint64_t position_ = 0;
};

// Key: the line number, or `key_field`. Blank lines are skipped (they are
// no item); a line that does not parse is an item with an InputError.
class JsonlInput final : public JobInput {
 public:
  JsonlInput(const std::filesystem::path& path, std::optional<std::string> key_field)
      : reader_(path, "jsonl input"), key_field_(std::move(key_field)) {}

  std::optional<InputItem> next() override {
    for (;;) {
      auto line = reader_.next();
      if (!line) {
        return std::nullopt;
      }
      if (blank(line->text)) {
        continue;
      }
      InputItem item{JobKey(static_cast<std::int64_t>(line->number)), position_++, Value()};
      const std::string where = reader_.path().string() + ":" + std::to_string(line->number);
      if (too_deep(line->text)) {
        item.error = input_error(where + ": " + kTooDeep);
        return item;
      }
      try {
        item.value = Value::parse(line->text);
      } catch (const Value::parse_error& e) {
        item.error = input_error(where + ": not JSON: " + parse_reason(e));
        return item;
      }
      // The key first: a line refused for another field keeps its own key.
      apply_key_field(item, key_field_, where);
      if (auto wide = find_wide_integer(line->text)) {
        // Parsed as a float, its low digits lost: the item is refused rather than changed.
        item.error = input_error(where + ": " + wide_integer_message(wide->literal));
      }
      return item;
    }
  }

 private:
  LineReader reader_;
  std::optional<std::string> key_field_;
  std::uint64_t position_ = 0;
};

class GlobInput final : public JobInput {
 public:
  explicit GlobInput(const std::string& pattern) : walk_(pattern) {}

  std::optional<InputItem> next() override {
    auto path = walk_.next();
    if (!path) {
      return std::nullopt;
    }
    // The key as a record will hold it, so a resume finds it again; the
    // value the bytes as they are, so the task can open the file.
    std::string text = path->string();
    return InputItem{JobKey(valid_utf8(text)), position_++, Value(std::move(text))};
  }

 private:
  GlobWalk walk_;
  std::uint64_t position_ = 0;
};

// The upstream job's ok records, in the order written. A torn last line (a
// crash mid-write) is left out, as --resume would drop it; a record that
// does not parse before the last line means the file is not a troupe
// output. With `key_field`, a value without one is an item with an
// InputError keyed by its upstream key.
class FromInput final : public JobInput {
 public:
  FromInput(const std::filesystem::path& path, std::optional<std::string> key_field)
      : reader_(path, "from input"), key_field_(std::move(key_field)) {}

  std::optional<InputItem> next() override {
    for (;;) {
      auto line = reader_.next();
      if (!line) {
        return std::nullopt;
      }
      if (blank(line->text)) {
        continue;
      }
      const std::string where = reader_.path().string() + ":" + std::to_string(line->number);
      const bool terminated = line->terminated;
      Value record;
      std::string problem;
      try {
        problem = too_deep(line->text) ? kTooDeep : record_problem(record = Value::parse(line->text));
      } catch (const Value::parse_error& e) {
        problem = "not JSON: " + parse_reason(e);
      }
      if (!terminated || (!problem.empty() && !reader_.next())) {
        return std::nullopt;  // the torn last line
      }
      if (!problem.empty()) {
        throw InputError(where + ": " + problem + " (not a troupe output record)");
      }
      if (!record["ok"].get<bool>()) {
        continue;
      }
      InputItem item{*key_from_json(record["key"]), position_++, std::move(record["value"])};
      apply_key_field(item, key_field_, where);
      return item;
    }
  }

 private:
  static std::string record_problem(const Value& record) {
    if (!record.is_object()) {
      return std::string("a JSON ") + record.type_name() + ", not an object";
    }
    auto key = record.find("key");
    if (key == record.end() || !key_from_json(*key)) {
      return "no \"key\" that is a string or an integer";
    }
    auto ok = record.find("ok");
    if (ok == record.end() || !ok->is_boolean()) {
      return "no \"ok\" that is true or false";
    }
    return {};
  }

  LineReader reader_;
  std::optional<std::string> key_field_;
  std::uint64_t position_ = 0;
};

}  // namespace

std::unique_ptr<JobInput> open_input(const JobInputSpec& spec, const std::filesystem::path& upstream_output) {
  using Kind = JobInputSpec::Kind;
  if (spec.key_field && (spec.kind == Kind::range || spec.kind == Kind::lines || spec.kind == Kind::glob)) {
    // Their items are numbers, text lines and paths: there is no field to take.
    throw InputError("key: " + *spec.key_field + " applies to items, jsonl and from inputs only; a " +
                     (spec.kind == Kind::range   ? "range"
                      : spec.kind == Kind::lines ? "lines"
                                                 : "glob") +
                     " input is keyed by its " +
                     (spec.kind == Kind::range   ? "index"
                      : spec.kind == Kind::lines ? "line number"
                                                 : "path"));
  }
  switch (spec.kind) {
    case Kind::items:
      return std::make_unique<ItemsInput>(spec.items, spec.key_field);
    case Kind::range:
      return std::make_unique<RangeInput>(spec.start, spec.stop, spec.step);
    case Kind::lines:
      return std::make_unique<LinesInput>(spec.path);
    case Kind::jsonl:
      return std::make_unique<JsonlInput>(spec.path, spec.key_field);
    case Kind::glob:
      return std::make_unique<GlobInput>(spec.pattern);
    case Kind::from:
      if (upstream_output.empty()) {
        throw InputError("from input '" + spec.from + "': the upstream job's output path is not known");
      }
      return std::make_unique<FromInput>(upstream_output, spec.key_field);
  }
  throw InputError("input kind " + std::to_string(static_cast<int>(spec.kind)) + " is not one troupe knows");
}

}  // namespace troupe::detail::pipeline
