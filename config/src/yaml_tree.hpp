// A YAML document as a plain tree whose every node knows where it came from
// (file:line:col, or the --set argument that put it there). yaml-cpp's own
// nodes lose duplicate keys and positions of what is missing, and cannot
// say which override a value came from; this tree keeps all three.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "troupe/config.hpp"

namespace troupe::config::detail {

struct Location {
  std::shared_ptr<const std::string> origin;
  int line = 0;  // 1-based; 0: the origin is an override, not a file position
  int column = 0;
};

struct TreeNode {
  enum class Kind { null, scalar, sequence, map };
  Kind kind = Kind::null;
  std::string scalar;
  bool plain = true;  // an unquoted scalar: may read as a number, bool or null
  std::vector<TreeNode> items;
  std::vector<std::pair<TreeNode, TreeNode>> entries;  // map: key, value (duplicates refused)
  Location where;

  // The value under `key` of a map, or null.
  const TreeNode* find(std::string_view key) const;
};

// Collects problems; the loader throws them together at the end.
class Problems {
 public:
  void add(const Location& where, std::string path, std::string message);
  // Gives the problems from index `first` on the place `where`.
  void relocate_since(std::size_t first, const Location& where);
  bool empty() const noexcept { return list_.empty(); }
  std::size_t size() const noexcept { return list_.size(); }
  std::vector<ConfigProblem> take() { return std::move(list_); }

 private:
  std::vector<ConfigProblem> list_;
};

using Environment = std::function<std::optional<std::string>(const std::string&)>;

// Parses `text`; syntax errors, duplicate keys, unset variables and
// documents too large or too deep are added to `problems`. Scalars have
// ${VAR} expanded. Returns the root (null when nothing could be read).
TreeNode parse_tree(std::string_view text, const std::shared_ptr<const std::string>& origin,
                    const Environment& environment, Problems& problems);

// Applies one `KEY.PATH=VALUE` override to `root`.
void apply_override(TreeNode& root, const std::string& override_text, const Environment& environment,
                    Problems& problems);

// "a map", "a list", "null", "'text'": what a user wrote, for messages.
std::string describe(const TreeNode& node);

}  // namespace troupe::config::detail
