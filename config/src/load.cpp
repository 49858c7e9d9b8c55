// load_file / load_string: the file's top level (version, plugins, pools, jobs),
// overrides, and the one ConfigError that lists every problem.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "job_schema.hpp"
#include "pool_schema.hpp"
#include "sources.hpp"
#include "troupe/config.hpp"
#include "troupe/config/plugin_pin.hpp"
#include "value_reader.hpp"
#include "yaml_tree.hpp"

namespace troupe {

std::string ConfigProblem::to_string() const {
  std::string out = origin;
  if (line > 0) {
    out += ":" + std::to_string(line) + ":" + std::to_string(column);
  }
  out += ": error: ";
  if (!path.empty()) {
    out += path + ": ";
  }
  return out + message;
}

namespace {

std::string listing(const std::vector<ConfigProblem>& problems) {
  std::string out;
  for (const auto& problem : problems) {
    out += (out.empty() ? "" : "\n") + problem.to_string();
  }
  return out;
}

}  // namespace

ConfigError::ConfigError(std::vector<ConfigProblem> problems)
    : Error(listing(problems)), problems_(std::move(problems)) {}

namespace config {
namespace {

using detail::join_path;
using detail::TreeNode;
using detail::ValueReader;

const std::vector<std::string> kTopKeys = {"version", "plugins", "pools", "jobs"};

bool is_hex_digest(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

std::optional<PluginSpec> read_plugin(const TreeNode& node, const std::string& path, ValueReader& r) {
  PluginSpec spec;
  const TreeNode* path_node = &node;
  if (node.kind == TreeNode::Kind::map) {
    r.refuse_unknown_keys(node, path, {"path", "sha256"});
    path_node = node.find("path");
    if (path_node == nullptr) {
      r.problems().add(node.where, join_path(path, "path"), "missing key 'path' (the plugin's .so file)");
      return std::nullopt;
    }
  } else if (node.kind != TreeNode::Kind::scalar) {
    r.fail(node, path, "a plugin: a path, or {path: FILE, sha256: HEX}");
    return std::nullopt;
  }
  const std::string file_key = node.kind == TreeNode::Kind::map ? join_path(path, "path") : path;
  auto file = r.file_path(*path_node, file_key);
  if (!file) {
    return std::nullopt;
  }
  spec.path = *file;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(spec.path, ec)) {
    r.problems().add(path_node->where, file_key, "plugin file " + spec.path.string() + " does not exist");
    return std::nullopt;
  }
  if (const TreeNode* pin = node.kind == TreeNode::Kind::map ? node.find("sha256") : nullptr) {
    auto digest = r.string(*pin, join_path(path, "sha256"));
    if (digest && !is_hex_digest(*digest)) {
      r.fail(*pin, join_path(path, "sha256"), "64 hex digits (sha256sum's output)");
      return std::nullopt;
    }
    if (!digest) {
      return std::nullopt;
    }
    try {
      check_plugin_pin(spec.path, *digest);
    } catch (const PluginError& e) {
      r.problems().add(pin->where, join_path(path, "sha256"), e.what());
      return std::nullopt;
    }
    spec.sha256 = *digest;
    std::transform(spec.sha256->begin(), spec.sha256->end(), spec.sha256->begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
  return spec;
}

void read_plugins(const TreeNode& node, EngineSpec& spec, ValueReader& r) {
  if (node.kind == TreeNode::Kind::null) {
    return;
  }
  if (node.kind != TreeNode::Kind::sequence) {
    r.fail(node, "plugins", "a list of plugins (- path: FILE)");
    return;
  }
  for (std::size_t i = 0; i < node.items.size(); ++i) {
    if (auto plugin = read_plugin(node.items[i], "plugins[" + std::to_string(i) + "]", r)) {
      spec.plugins.push_back(std::move(*plugin));
    }
  }
}

// "3:5", or the --set argument for a place that is not in the file.
std::string place_text(const detail::Location& where) {
  const std::string origin = where.origin ? *where.origin : std::string();
  return where.line > 0 ? std::to_string(where.line) + ":" + std::to_string(where.column) : origin;
}

// Every rank but 0 serves the file's one pool of kind mpi, so a second one
// could never get a rank: refused at its kind, naming the first.
void refuse_second_mpi_pool(const TreeNode& pools, ValueReader& r) {
  const TreeNode* first = nullptr;
  for (const auto& [key, value] : pools.entries) {
    const TreeNode* kind = value.kind == TreeNode::Kind::map ? value.find("kind") : nullptr;
    if (kind == nullptr || kind->kind != TreeNode::Kind::scalar || kind->scalar != "mpi") {
      continue;
    }
    if (first == nullptr) {
      first = &key;
      continue;
    }
    r.problems().add(kind->where, join_path(join_path("pools", key.scalar), "kind"),
                     "only one pool of kind mpi per file (first: '" + first->scalar + "' at " +
                         place_text(first->where) + "): every rank but 0 serves that one");
  }
}

void read_pools(const TreeNode& node, EngineSpec& spec, ValueReader& r) {
  if (node.kind == TreeNode::Kind::null) {
    return;
  }
  if (!r.expect_map(node, "pools", "a map of pool name -> options")) {
    return;
  }
  for (const auto& [key, value] : node.entries) {
    const std::string path = join_path("pools", key.scalar);
    if (key.scalar.empty() || key.scalar.find('.') != std::string::npos) {
      r.problems().add(key.where, path,
                       "pool name '" + key.scalar + "' must be non-empty and without '.' (--set pools.NAME.KEY)");
      continue;
    }
    const detail::PoolPlace place{key.scalar, path, key, value};
    auto options = detail::read_pool(place, r);
    auto shared = detail::read_shared(place, r);
    if (options && shared) {
      spec.pools.push_back(PoolSpec{key.scalar, std::move(*options), std::move(*shared)});
    }
  }
  refuse_second_mpi_pool(node, r);
}

// The names written under pools:, read or not (a job naming a pool whose
// options are wrong is not also told the pool does not exist).
std::vector<std::string> pool_names(const TreeNode& root) {
  std::vector<std::string> names;
  if (const TreeNode* pools = root.find("pools"); pools != nullptr && pools->kind == TreeNode::Kind::map) {
    for (const auto& [key, value] : pools->entries) {
      names.push_back(key.scalar);
    }
  }
  return names;
}

void read_version(const TreeNode& root, ValueReader& r) {
  const TreeNode* version = root.find("version");
  if (version == nullptr) {
    r.problems().add(root.where, "version", "missing key 'version' (write version: 1 at the top)");
    return;
  }
  if (version->kind != TreeNode::Kind::scalar || version->scalar != "1") {
    r.fail(*version, "version", "1 (the only version this troupe reads)");
  }
}

EngineSpec read_document(const TreeNode& root, ValueReader& r) {
  EngineSpec spec;
  if (root.kind != TreeNode::Kind::map) {
    r.fail(root, "", "a map with version, plugins, pools and jobs");
    return spec;
  }
  r.refuse_unknown_keys(root, "", kTopKeys);
  read_version(root, r);
  if (const TreeNode* plugins = root.find("plugins")) {
    read_plugins(*plugins, spec, r);
  }
  if (const TreeNode* pools = root.find("pools")) {
    read_pools(*pools, spec, r);
  }
  if (const TreeNode* jobs = root.find("jobs")) {
    spec.jobs = detail::read_jobs(*jobs, pool_names(root), r);
  }
  return spec;
}

detail::Environment environment_of(const LoadOptions& options) {
  if (options.environment) {
    return options.environment;
  }
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe): read-only use
    return value != nullptr ? std::optional<std::string>(value) : std::nullopt;
  };
}

}  // namespace

EngineSpec load_string(std::string_view text, const std::filesystem::path& origin, const LoadOptions& options) {
  detail::Problems problems;
  const auto origin_text = std::make_shared<const std::string>(origin.string());
  const detail::Environment environment = environment_of(options);
  TreeNode root = detail::parse_tree(text, origin_text, environment, problems);
  if (!problems.empty()) {
    throw ConfigError(problems.take());  // a tree with holes would only add noise
  }
  for (const auto& override_text : options.overrides) {
    detail::apply_override(root, override_text, environment, problems);
  }
  std::filesystem::path base = std::filesystem::absolute(origin).parent_path();
  ValueReader reader(problems, base);
  EngineSpec spec = read_document(root, reader);
  if (!problems.empty()) {
    throw ConfigError(problems.take());
  }
  detail::record_sources(root, spec);
  return spec;
}

EngineSpec load_file(const std::filesystem::path& path, const LoadOptions& options) {
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  if (!in || std::filesystem::is_directory(path, ec)) {
    throw ConfigError({ConfigProblem{
        path.string(), 0, 0, "",
        std::filesystem::exists(path, ec) ? "cannot read the configuration file" : "configuration file not found"}});
  }
  std::ostringstream text;
  text << in.rdbuf();
  return load_string(text.str(), path, options);
}

}  // namespace config
}  // namespace troupe
