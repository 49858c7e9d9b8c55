// yaml-cpp's document -> TreeNode, with ${VAR} expansion, duplicate keys
// and alias bombs caught on the way, and overrides applied to the result.
#include "yaml_tree.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "troupe/detail/spelling.hpp"

namespace troupe::config::detail {
namespace {

// Aliases share nodes, so a small file can name a huge tree; past this many
// nodes the document is refused instead of expanded.
constexpr std::size_t kMaxNodes = 1'000'000;
// Deeper trees are refused: an alias inside the node it names (`a: &x
// {b: *x}`) would never end, and following it (or the parser's own limit of
// 2000 levels) would overflow the stack of a sanitizer build long before
// kMaxNodes. No configuration comes near it.
constexpr std::size_t kMaxDepth = 512;

bool is_variable_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) {
    return false;
  }
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return false;
    }
  }
  return true;
}

// Counts one node being converted, for as long as it is.
class DepthScope {
 public:
  explicit DepthScope(std::size_t& depth) : depth_(++depth) {}
  ~DepthScope() { --depth_; }
  DepthScope(const DepthScope&) = delete;
  DepthScope& operator=(const DepthScope&) = delete;

 private:
  std::size_t& depth_;
};

class Converter {
 public:
  Converter(std::shared_ptr<const std::string> origin, const Environment& environment, Problems& problems)
      : origin_(std::move(origin)), environment_(environment), problems_(problems) {}

  TreeNode convert(const YAML::Node& node, const Location& fallback, const std::string& path) {
    TreeNode out;
    out.where = located(node, fallback);
    if (++nodes_ > kMaxNodes || depth_ >= kMaxDepth) {
      if (!too_large_reported_) {
        too_large_reported_ = true;
        // A path through a cycle repeats itself thousands of times: its start says where.
        constexpr std::size_t kShownPath = 100;
        problems_.add(out.where, path.size() > kShownPath ? path.substr(0, kShownPath) + "..." : path,
                      depth_ >= kMaxDepth ? "the document nests deeper than " + std::to_string(kMaxDepth) +
                                                " levels (an alias inside the node it names?); "
                                                "refusing to expand it"
                                          : "the document expands to more than " + std::to_string(kMaxNodes) +
                                                " nodes (aliases repeating aliases?); refusing to expand it");
      }
      return out;
    }
    const DepthScope level(depth_);
    switch (node.Type()) {
      case YAML::NodeType::Scalar:
        out.kind = TreeNode::Kind::scalar;
        out.plain = node.Tag() == "?";
        out.scalar = expand(node.Scalar(), out.where, path);
        break;
      case YAML::NodeType::Sequence:
        out.kind = TreeNode::Kind::sequence;
        for (std::size_t i = 0; i < node.size() && !too_large_reported_; ++i) {
          out.items.push_back(convert(node[i], out.where, path + "[" + std::to_string(i) + "]"));
        }
        break;
      case YAML::NodeType::Map:
        out.kind = TreeNode::Kind::map;
        convert_map(node, out, path);
        break;
      default:
        break;
    }
    return out;
  }

 private:
  Location located(const YAML::Node& node, const Location& fallback) const {
    const YAML::Mark mark = node.Mark();
    if (mark.line < 0 || mark.column < 0) {
      return fallback;  // yaml-cpp has no position for empty values
    }
    return Location{origin_, mark.line + 1, mark.column + 1};
  }

  void convert_map(const YAML::Node& node, TreeNode& out, const std::string& path) {
    for (auto it = node.begin(); it != node.end() && !too_large_reported_; ++it) {
      TreeNode key;
      key.where = located(it->first, out.where);
      if (!it->first.IsScalar()) {
        problems_.add(key.where, path, "expected a plain key, found " + describe(convert(it->first, key.where, path)));
        continue;
      }
      key.kind = TreeNode::Kind::scalar;
      key.scalar = it->first.Scalar();
      const std::string child_path = path.empty() ? key.scalar : path + "." + key.scalar;
      if (const TreeNode* first = out.find(key.scalar); first != nullptr) {
        const auto& first_key = std::find_if(out.entries.begin(), out.entries.end(), [&](const auto& entry) {
                                  return entry.first.scalar == key.scalar;
                                })->first;
        problems_.add(key.where, child_path,
                      "duplicate key '" + key.scalar + "' (first at line " + std::to_string(first_key.where.line) +
                          ", column " + std::to_string(first_key.where.column) + "); keep one");
        continue;
      }
      TreeNode value = convert(it->second, key.where, child_path);
      out.entries.emplace_back(std::move(key), std::move(value));
    }
  }

  // ${VAR}, ${VAR:-default}; $${ is a literal ${.
  std::string expand(const std::string& text, const Location& where, const std::string& path) {
    if (text.find('$') == std::string::npos) {
      return text;
    }
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text.compare(i, 3, "$${") == 0) {
        out += "${";
        i += 2;
        continue;
      }
      if (text.compare(i, 2, "${") != 0) {
        out += text[i];
        continue;
      }
      const std::size_t close = text.find('}', i + 2);
      if (close == std::string::npos) {
        problems_.add(where, path, "unterminated '${' in '" + text + "'; write ${NAME} (or $${ for a literal ${)");
        return text;
      }
      out += variable(std::string_view(text).substr(i + 2, close - i - 2), text, where, path);
      i = close;
    }
    return out;
  }

  std::string variable(std::string_view inside, const std::string& text, const Location& where,
                       const std::string& path) {
    const std::size_t dash = inside.find(":-");
    const std::string name(inside.substr(0, dash));
    if (!is_variable_name(name)) {
      problems_.add(where, path,
                    "'${" + std::string(inside) + "}' in '" + text +
                        "' is not a variable: expected ${NAME} or ${NAME:-default}, NAME of letters, digits and _");
      return {};
    }
    std::optional<std::string> value = environment_(name);
    if (dash != std::string_view::npos) {
      return value && !value->empty() ? *value : std::string(inside.substr(dash + 2));
    }
    if (!value) {
      problems_.add(
          where, path,
          "environment variable " + name + " is not set; set it, or give a default: ${" + name + ":-default}");
      return {};
    }
    return *value;
  }

  std::shared_ptr<const std::string> origin_;
  const Environment& environment_;
  Problems& problems_;
  std::size_t nodes_ = 0;
  std::size_t depth_ = 0;  // nodes being converted, this one's ancestors included
  bool too_large_reported_ = false;
};

// yaml-cpp says "bad file" when its recursion guard trips.
std::string syntax_message(const YAML::Exception& e) {
  if (e.msg == "bad file") {
    return "nesting too deep for the YAML parser (keep it under a few hundred levels)";
  }
  return "YAML syntax: " + e.msg;
}

void mark_as_override(TreeNode& node, const Location& where) {
  node.where = where;
  for (auto& item : node.items) {
    mark_as_override(item, where);
  }
  for (auto& [key, value] : node.entries) {
    mark_as_override(key, where);
    mark_as_override(value, where);
  }
}

bool is_index(const std::string& segment) {
  return !segment.empty() && std::all_of(segment.begin(), segment.end(),
                                         [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
}

// The node at `segment` under `parent`, created when `parent` is a map (or
// null) without it; null with a problem when the path cannot go on.
TreeNode* step(TreeNode& parent, const std::string& segment, const std::string& walked, const Location& where,
               Problems& problems) {
  if (parent.kind == TreeNode::Kind::sequence) {
    std::size_t index = 0;
    if (is_index(segment)) {
      std::from_chars(segment.data(), segment.data() + segment.size(), index);
    }
    if (!is_index(segment) || index >= parent.items.size()) {
      problems.add(
          where, walked,
          "'" + segment + "' is not an index of this list of " + std::to_string(parent.items.size()) + " (0-based)");
      return nullptr;
    }
    return &parent.items[index];
  }
  if (parent.kind == TreeNode::Kind::scalar) {
    problems.add(where, walked, "cannot set a key under a scalar value (" + describe(parent) + ")");
    return nullptr;
  }
  parent.kind = TreeNode::Kind::map;
  for (auto& [key, value] : parent.entries) {
    if (key.scalar == segment) {
      return &value;
    }
  }
  TreeNode key;
  key.kind = TreeNode::Kind::scalar;
  key.scalar = segment;
  key.where = where;
  TreeNode value;
  value.where = where;
  parent.entries.emplace_back(std::move(key), std::move(value));
  return &parent.entries.back().second;
}

// A job of the `jobs:` list by its name, which may itself hold dots: the
// longest run of segments from `first` that names a job wins, and `first`
// moves to that run's last segment. Null with a problem when none does.
TreeNode* job_named(TreeNode& jobs, const std::vector<std::string>& segments, std::size_t& first, const Location& where,
                    Problems& problems) {
  std::vector<std::string> names;
  for (auto& job : jobs.items) {
    const TreeNode* name = job.kind == TreeNode::Kind::map ? job.find("name") : nullptr;
    if (name != nullptr && name->kind == TreeNode::Kind::scalar) {
      names.push_back(name->scalar);
    }
  }
  for (std::size_t last = segments.size(); last > first; --last) {
    std::string candidate = segments[first];
    for (std::size_t k = first + 1; k < last; ++k) {
      candidate += "." + segments[k];
    }
    for (auto& job : jobs.items) {
      const TreeNode* name = job.kind == TreeNode::Kind::map ? job.find("name") : nullptr;
      if (name != nullptr && name->kind == TreeNode::Kind::scalar && name->scalar == candidate) {
        first = last - 1;
        return &job;
      }
    }
  }
  problems.add(where, "jobs." + segments[first],
               "no job named '" + segments[first] + "' in the file (--set jobs.NAME.KEY=VALUE names a job)" +
                   (names.empty() ? std::string("; the file has no jobs")
                                  : troupe::detail::did_you_mean(segments[first], names)));
  return nullptr;
}

}  // namespace

const TreeNode* TreeNode::find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k.scalar == key) {
      return &v;
    }
  }
  return nullptr;
}

void Problems::relocate_since(std::size_t first, const Location& where) {
  for (std::size_t i = first; i < list_.size(); ++i) {
    list_[i].line = where.line;
    list_[i].column = where.column;
  }
}

void Problems::add(const Location& where, std::string path, std::string message) {
  list_.push_back(ConfigProblem{where.origin ? *where.origin : std::string(), where.line, where.column, std::move(path),
                                std::move(message)});
}

std::string describe(const TreeNode& node) {
  switch (node.kind) {
    case TreeNode::Kind::null:
      return "nothing (null)";
    case TreeNode::Kind::sequence:
      return "a list";
    case TreeNode::Kind::map:
      return "a map";
    case TreeNode::Kind::scalar:
      break;
  }
  constexpr std::size_t kShown = 60;
  return "'" + (node.scalar.size() > kShown ? node.scalar.substr(0, kShown) + "..." : node.scalar) + "'";
}

TreeNode parse_tree(std::string_view text, const std::shared_ptr<const std::string>& origin,
                    const Environment& environment, Problems& problems) {
  const Location start{origin, 1, 1};
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    const Location where = e.mark.is_null() ? start : Location{origin, e.mark.line + 1, e.mark.column + 1};
    problems.add(where, "", syntax_message(e));
    TreeNode empty;
    empty.where = start;
    return empty;
  }
  Converter converter(origin, environment, problems);
  return converter.convert(root, start, "");
}

void apply_override(TreeNode& root, const std::string& override_text, const Environment& environment,
                    Problems& problems) {
  const auto origin = std::make_shared<const std::string>("--set " + override_text);
  const Location where{origin, 0, 0};
  const std::size_t eq = override_text.find('=');
  if (eq == std::string::npos || eq == 0) {
    problems.add(where, "", "expected KEY.PATH=VALUE, e.g. pools.cpu.workers=8");
    return;
  }
  const std::string key_path = override_text.substr(0, eq);
  std::vector<std::string> segments;
  for (std::size_t begin = 0;;) {
    const std::size_t dot = key_path.find('.', begin);
    segments.push_back(key_path.substr(begin, dot - begin));
    if (dot == std::string::npos) {
      break;
    }
    begin = dot + 1;
  }
  if (std::any_of(segments.begin(), segments.end(), [](const std::string& s) { return s.empty(); })) {
    problems.add(where, key_path, "empty key in the path '" + key_path + "'; write KEY.PATH=VALUE");
    return;
  }
  const std::size_t before = problems.size();
  TreeNode value = parse_tree(override_text.substr(eq + 1), origin, environment, problems);
  if (problems.size() != before) {
    problems.relocate_since(before, where);  // positions inside the value would read as file positions
    return;
  }
  mark_as_override(value, where);
  TreeNode* node = &root;
  std::string walked;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (i == 1 && segments[0] == "jobs") {
      node = job_named(*node, segments, i, where, problems);
      walked = node != nullptr ? "jobs." + node->find("name")->scalar : walked;
    } else {
      walked += (walked.empty() ? "" : ".") + segments[i];
      node = step(*node, segments[i], walked, where, problems);
    }
    if (node == nullptr) {
      return;
    }
  }
  *node = std::move(value);
}

}  // namespace troupe::config::detail
