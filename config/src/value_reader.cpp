#include "value_reader.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

#include "troupe/config/units.hpp"
#include "troupe/detail/json_integers.hpp"
#include "troupe/detail/spelling.hpp"

namespace troupe::config::detail {
namespace {

bool all_digits(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// [-+]digits: what YAML 1.2's core schema reads as an integer.
bool integer_shaped(std::string_view s) {
  return !s.empty() && all_digits((s[0] == '-' || s[0] == '+') ? s.substr(1) : s);
}

// A plain scalar as YAML 1.2's core schema reads it: null, bool, integer,
// float; anything else (hex, .inf) stays a string.
Value plain_scalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") {
    return nullptr;
  }
  if (s == "true" || s == "True" || s == "TRUE") {
    return true;
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    return false;
  }
  const std::string_view digits = (s[0] == '-' || s[0] == '+') ? std::string_view(s).substr(1) : std::string_view(s);
  const char* first = s.data() + (s[0] == '+' ? 1 : 0);
  const char* last = s.data() + s.size();
  if (all_digits(digits)) {
    std::int64_t i = 0;
    if (auto [p, ec] = std::from_chars(first, last, i); ec == std::errc() && p == last) {
      return i;
    }
    std::uint64_t u = 0;
    if (auto [p, ec] = std::from_chars(first, last, u); ec == std::errc() && p == last) {
      return u;
    }
  }
  const bool numeric_shape =
      !digits.empty() && (std::isdigit(static_cast<unsigned char>(digits[0])) || digits[0] == '.') &&
      std::all_of(digits.begin(), digits.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+';
      });
  double d = 0;
  if (numeric_shape) {
    if (auto [p, ec] = std::from_chars(first, last, d); ec == std::errc() && p == last && std::isfinite(d)) {
      return d;
    }
  }
  return s;
}

}  // namespace

bool is_none(const TreeNode& node) {
  return node.kind == TreeNode::Kind::null ||
         (node.kind == TreeNode::Kind::scalar && node.plain && node.scalar == "none");
}

void ValueReader::fail(const TreeNode& node, const std::string& path, const std::string& expected) {
  problems_.add(node.where, path, "expected " + expected + ", found " + describe(node));
}

std::optional<std::string> ValueReader::scalar_text(const TreeNode& node, const std::string& path,
                                                    const std::string& expected) {
  if (node.kind != TreeNode::Kind::scalar) {
    fail(node, path, expected);
    return std::nullopt;
  }
  return node.scalar;
}

std::optional<std::size_t> ValueReader::count(const TreeNode& node, const std::string& path, bool allow_auto) {
  const std::string expected = std::string("a whole number from 0 to ") +
                               std::to_string(std::numeric_limits<std::size_t>::max()) + (allow_auto ? " or auto" : "");
  auto text = scalar_text(node, path, expected);
  if (!text) {
    return std::nullopt;
  }
  if (allow_auto && *text == "auto") {
    return 0;
  }
  std::size_t n = 0;
  const char* last = text->data() + text->size();
  if (!all_digits(*text) || std::from_chars(text->data(), last, n).ec != std::errc()) {
    fail(node, path, expected);
    return std::nullopt;
  }
  return n;
}

Limit<std::size_t> ValueReader::count_or_none(const TreeNode& node, const std::string& path) {
  if (is_none(node)) {
    return std::optional<std::size_t>();
  }
  if (node.kind == TreeNode::Kind::scalar && all_digits(node.scalar)) {
    if (auto n = count(node, path)) {
      return std::optional<std::size_t>(*n);
    }
    return std::nullopt;
  }
  fail(node, path, "a whole number from 0 to " + std::to_string(std::numeric_limits<std::size_t>::max()) + " or none");
  return std::nullopt;
}

std::optional<std::chrono::nanoseconds> ValueReader::duration(const TreeNode& node, const std::string& path) {
  auto text = scalar_text(node, path, "a duration such as 250ms, 30s, 5m or 1h");
  if (!text) {
    return std::nullopt;
  }
  try {
    return parse_duration(*text);
  } catch (const ConfigValueError& e) {
    problems_.add(node.where, path, e.what());
    return std::nullopt;
  }
}

Limit<std::chrono::nanoseconds> ValueReader::duration_or_none(const TreeNode& node, const std::string& path) {
  if (is_none(node)) {
    return std::optional<std::chrono::nanoseconds>();
  }
  if (auto d = duration(node, path)) {
    return std::optional<std::chrono::nanoseconds>(*d);
  }
  return std::nullopt;
}

std::optional<std::uint64_t> ValueReader::size(const TreeNode& node, const std::string& path) {
  auto text = scalar_text(node, path, "a size such as 512MiB, 2GB or 4096");
  if (!text) {
    return std::nullopt;
  }
  try {
    return parse_size(*text);
  } catch (const ConfigValueError& e) {
    problems_.add(node.where, path, e.what());
    return std::nullopt;
  }
}

Limit<std::uint64_t> ValueReader::size_or_none(const TreeNode& node, const std::string& path) {
  if (is_none(node)) {
    return std::optional<std::uint64_t>();
  }
  if (auto s = size(node, path)) {
    return std::optional<std::uint64_t>(*s);
  }
  return std::nullopt;
}

std::optional<std::string> ValueReader::string(const TreeNode& node, const std::string& path) {
  return scalar_text(node, path, "a string");
}

std::optional<std::string> ValueReader::choice(const TreeNode& node, const std::string& path,
                                               const std::vector<std::string>& choices) {
  std::string expected;
  for (std::size_t i = 0; i < choices.size(); ++i) {
    expected += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + choices[i];
  }
  auto text = scalar_text(node, path, expected);
  if (!text) {
    return std::nullopt;
  }
  if (std::find(choices.begin(), choices.end(), *text) == choices.end()) {
    problems_.add(node.where, path,
                  "expected " + expected + ", found " + describe(node) + troupe::detail::did_you_mean(*text, choices));
    return std::nullopt;
  }
  return text;
}

std::optional<std::filesystem::path> ValueReader::file_path(const TreeNode& node, const std::string& path) {
  auto text = scalar_text(node, path, "a file path");
  if (!text) {
    return std::nullopt;
  }
  if (text->empty()) {
    fail(node, path, "a file path");
    return std::nullopt;
  }
  std::filesystem::path p(*text);
  return (p.is_absolute() ? p : base_dir_ / p).lexically_normal();
}

std::optional<Value> ValueReader::value(const TreeNode& node, const std::string& path) {
  switch (node.kind) {
    case TreeNode::Kind::null:
      return Value(nullptr);
    case TreeNode::Kind::scalar:
      if (node.plain && integer_shaped(node.scalar) && !troupe::detail::integer_fits(node.scalar)) {
        // plain_scalar would read it as a float, its low digits lost: refused rather than changed.
        problems_.add(node.where, path, troupe::detail::wide_integer_message(node.scalar));
        return std::nullopt;
      }
      return node.plain ? plain_scalar(node.scalar) : Value(node.scalar);
    case TreeNode::Kind::sequence: {
      Value out = Value::array();
      for (std::size_t i = 0; i < node.items.size(); ++i) {
        auto item = value(node.items[i], path + "[" + std::to_string(i) + "]");
        if (!item) {
          return std::nullopt;
        }
        out.push_back(std::move(*item));
      }
      return out;
    }
    case TreeNode::Kind::map: {
      Value out = Value::object();
      for (const auto& [key, v] : node.entries) {
        auto item = value(v, join_path(path, key.scalar));
        if (!item) {
          return std::nullopt;
        }
        out[key.scalar] = std::move(*item);
      }
      return out;
    }
  }
  return std::nullopt;
}

std::optional<Call> ValueReader::call(const TreeNode& node, const std::string& path) {
  const std::string expected = "a plugin call: 'plugin.name' or {task: plugin.name, args: [...], kwargs: {...}}";
  const auto task_name = [&](const TreeNode& n, const std::string& p) -> std::optional<std::string> {
    auto text = scalar_text(n, p, "a name 'plugin.name'");
    if (text && (text->find('.') == std::string::npos || text->front() == '.' || text->back() == '.')) {
      fail(n, p, "a name 'plugin.name' (the plugin's name, a dot, the registered name)");
      return std::nullopt;
    }
    return text;
  };
  if (node.kind == TreeNode::Kind::scalar) {
    auto task = task_name(node, path);
    return task ? std::optional<Call>(Call{*task, {}, {}}) : std::nullopt;
  }
  if (node.kind != TreeNode::Kind::map) {
    fail(node, path, expected);
    return std::nullopt;
  }
  refuse_unknown_keys(node, path, {"task", "args", "kwargs"});
  Call call;
  bool ok = true;
  if (const TreeNode* task = node.find("task")) {
    auto name = task_name(*task, join_path(path, "task"));
    ok = ok && name;
    call.task = name.value_or("");
  } else {
    problems_.add(node.where, path, "missing key 'task' (the plugin call, 'plugin.name')");
    ok = false;
  }
  if (const TreeNode* args = node.find("args")) {
    if (args->kind != TreeNode::Kind::sequence) {
      fail(*args, join_path(path, "args"), "a list of positional arguments");
      ok = false;
    } else if (auto v = value(*args, join_path(path, "args"))) {
      call.args = v->get<Args>();
    }
  }
  if (const TreeNode* kwargs = node.find("kwargs")) {
    if (kwargs->kind != TreeNode::Kind::map) {
      fail(*kwargs, join_path(path, "kwargs"), "a map of keyword arguments");
      ok = false;
    } else if (auto v = value(*kwargs, join_path(path, "kwargs"))) {
      call.kwargs = v->get<Kwargs>();
    }
  }
  return ok ? std::optional<Call>(std::move(call)) : std::nullopt;
}

std::optional<std::map<std::string, std::string>> ValueReader::string_map(const TreeNode& node,
                                                                          const std::string& path) {
  if (!expect_map(node, path, "a map of NAME: value")) {
    return std::nullopt;
  }
  std::map<std::string, std::string> out;
  bool ok = true;
  for (const auto& [key, value] : node.entries) {
    auto text = scalar_text(value, join_path(path, key.scalar), "a string value");
    ok = ok && text;
    if (text) {
      out[key.scalar] = *text;
    }
  }
  return ok ? std::optional(std::move(out)) : std::nullopt;
}

bool ValueReader::expect_map(const TreeNode& node, const std::string& path, const std::string& what) {
  if (node.kind == TreeNode::Kind::map) {
    return true;
  }
  fail(node, path, what);
  return false;
}

void ValueReader::refuse_unknown_keys(const TreeNode& map, const std::string& path,
                                      const std::vector<std::string>& known) {
  for (const auto& [key, value] : map.entries) {
    if (std::find(known.begin(), known.end(), key.scalar) == known.end()) {
      problems_.add(key.where, join_path(path, key.scalar),
                    "unknown key '" + key.scalar + "'" + troupe::detail::did_you_mean(key.scalar, known));
    }
  }
}

}  // namespace troupe::config::detail
