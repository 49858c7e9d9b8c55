// Typed reads of tree nodes: counts, durations, sizes, names, paths, task
// calls. Each read either returns the value or records a problem (what was
// expected, what was found, at the node) and returns nullopt, so a file's
// every problem is found in one pass.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "troupe/sdk/call.hpp"
#include "troupe/sdk/value.hpp"
#include "yaml_tree.hpp"

namespace troupe::config::detail {

// `none` (or null) where a limit may be absent: the outer optional says
// whether the read succeeded, the inner one whether a limit was given.
template <class T>
using Limit = std::optional<std::optional<T>>;

class ValueReader {
 public:
  ValueReader(Problems& problems, std::filesystem::path base_dir)
      : problems_(problems), base_dir_(std::move(base_dir)) {}

  Problems& problems() noexcept { return problems_; }
  // The file's folder, which relative paths are taken from.
  const std::filesystem::path& base_dir() const noexcept { return base_dir_; }
  void fail(const TreeNode& node, const std::string& path, const std::string& expected);

  // A whole number >= 0; `auto` reads as 0 when allow_auto.
  std::optional<std::size_t> count(const TreeNode& node, const std::string& path, bool allow_auto = false);
  Limit<std::size_t> count_or_none(const TreeNode& node, const std::string& path);
  std::optional<std::chrono::nanoseconds> duration(const TreeNode& node, const std::string& path);
  Limit<std::chrono::nanoseconds> duration_or_none(const TreeNode& node, const std::string& path);
  std::optional<std::uint64_t> size(const TreeNode& node, const std::string& path);
  Limit<std::uint64_t> size_or_none(const TreeNode& node, const std::string& path);
  std::optional<std::string> string(const TreeNode& node, const std::string& path);
  // One of `choices`, with "did you mean" otherwise.
  std::optional<std::string> choice(const TreeNode& node, const std::string& path,
                                    const std::vector<std::string>& choices);
  // Absolute, relative ones taken from the file's folder.
  std::optional<std::filesystem::path> file_path(const TreeNode& node, const std::string& path);
  // Any YAML as a task argument: plain scalars read as null, bools and
  // numbers as YAML 1.2 does; quoted ones stay strings.
  std::optional<Value> value(const TreeNode& node, const std::string& path);
  // `plugin.name` or {task, args, kwargs}.
  std::optional<Call> call(const TreeNode& node, const std::string& path);
  std::optional<std::map<std::string, std::string>> string_map(const TreeNode& node, const std::string& path);

  // Whether `node` is a map; records "expected <what>" otherwise.
  bool expect_map(const TreeNode& node, const std::string& path, const std::string& what);
  // Records each key of `map` not in `known`, with the closest known ones.
  void refuse_unknown_keys(const TreeNode& map, const std::string& path, const std::vector<std::string>& known);

 private:
  std::optional<std::string> scalar_text(const TreeNode& node, const std::string& path, const std::string& expected);

  Problems& problems_;
  std::filesystem::path base_dir_;
};

// `parent.key`, or `key` at the top.
inline std::string join_path(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

bool is_none(const TreeNode& node);

}  // namespace troupe::config::detail
