// troupe/config.hpp
//
// A YAML file that lists plugins, named pools and pipeline jobs, turned into
// a plain troupe::EngineSpec (docs/config.md has every key):
//
//   troupe::EngineSpec spec = troupe::config::load_file("troupe.yaml",
//       {.overrides = {"pools.cpu.workers=8"}});
//   troupe::Engine engine(std::move(spec));
//
// Guarantees: load_file runs no plugin code; it reads the file, expands
// ${VAR} and ${VAR:-default}, applies the overrides, resolves relative
// paths from the file's folder, and checks every value (ranges through
// troupe::validate()). Every problem found is reported at once, in one
// ConfigError, each with its place (file:line:col, or the --set argument),
// its key path, what was expected and what was found, and "did you mean"
// for unknown keys and names. to_yaml() writes a spec back as a file that
// loads to the same spec.
// Thread safety: the functions are reentrant; they read the environment.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "troupe/engine_spec.hpp"
#include "troupe/sdk/errors.hpp"

namespace troupe {

// One located problem of a configuration.
struct ConfigProblem {
  std::string origin;  // the file, or "--set KEY=VALUE" for an override
  int line = 0;        // 1-based; 0 when the origin is not a file position
  int column = 0;      // 1-based
  std::string path;    // the key path, `pools.cpu.workers`; empty for the document
  std::string message;

  // GCC-style: `troupe.yaml:3:14: error: pools.cpu.workers: expected ...`
  std::string to_string() const;
};

// Every problem of a configuration; what() lists them one per line.
class ConfigError : public Error {
 public:
  explicit ConfigError(std::vector<ConfigProblem> problems);
  const std::vector<ConfigProblem>& problems() const noexcept { return problems_; }

 private:
  std::vector<ConfigProblem> problems_;
};

namespace config {

struct LoadOptions {
  // `KEY.PATH=VALUE`, applied in order after the file is read; VALUE is
  // YAML (`pools.cpu.workers=8`, `pools.io.env={A: "1"}`,
  // `jobs.count.retries=2`). A missing key is added; a missing pool is
  // created; a job is addressed by its name and must exist.
  std::vector<std::string> overrides = {};
  // Looks up ${VAR}; null reads the process environment.
  std::function<std::optional<std::string>(const std::string&)> environment = nullptr;
};

// Throws ConfigError listing every problem (a file that cannot be read is
// one problem too).
EngineSpec load_file(const std::filesystem::path& path, const LoadOptions& options = {});

// The same from text: `origin` names it in problems, and relative paths
// resolve from origin's folder.
EngineSpec load_string(std::string_view text, const std::filesystem::path& origin, const LoadOptions& options = {});

// The checks that need the plugins, without running plugin code here: one
// troupe-worker process loads the plugins and reports its table of tasks,
// initializers and finalizers with their signatures (a plugin that crashes
// or fails while loading is reported naming it, never a crash of the
// caller). Then each pool's initializer and finalizer must name a hook of
// that kind ("did you mean") whose signature its args and kwargs bind to
// (arity, keyword names, types the signature names), and each job's task
// must name a task that takes the item followed by the job's args and
// kwargs (the item's type is not known: only its place binds). No hook or
// task runs. Throws
// ConfigError with every problem, each placed at its key through
// spec.sources (`origin` with no line for a spec without them).
void check(const EngineSpec& spec, const std::string& origin = "configuration");

// The spec as a version-1 file: every option written out, paths absolute,
// strings quoted so they never read back as numbers or variables.
std::string to_yaml(const EngineSpec& spec);

}  // namespace config
}  // namespace troupe
