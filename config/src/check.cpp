// config::check: what load_file cannot know without the plugins, learned
// from the task table a troupe-worker reports when it is ready (its
// plugins loaded there, not here). No initializer, finalizer or task runs:
// hooks and jobs are checked against their signatures.
#include <algorithm>
#include <array>
#include <chrono>
#include <exception>
#include <variant>

#include "hook_binding.hpp"
#include "troupe/config.hpp"
#include "troupe/errors.hpp"
#include "troupe/process_pool.hpp"

namespace troupe::config {
namespace {

// Places problems by key path: the path's own place in the spec's sources,
// else its closest recorded parent's, else the caller's origin.
class Placer {
 public:
  Placer(const EngineSpec& spec, std::string origin) : sources_(spec.sources), origin_(std::move(origin)) {}

  ConfigProblem problem(const std::string& path, std::string message) const {
    for (std::string key = path; !key.empty(); key = parent(key)) {
      if (auto it = sources_.find(key); it != sources_.end()) {
        return {it->second.origin, it->second.line, it->second.column, path, std::move(message)};
      }
    }
    return {origin_, 0, 0, path, std::move(message)};
  }

 private:
  // `a.b[2]` -> `a.b`, `a.b` -> `a`, `a` -> ``.
  static std::string parent(const std::string& path) {
    const std::size_t cut = path.find_last_of(".[");
    return cut == std::string::npos ? std::string() : path.substr(0, cut);
  }

  const std::map<std::string, SourcePlace>& sources_;
  std::string origin_;
};

// One worker, no hooks, a start-up failure reported at once rather than
// retried as a crash storm, and a bounded wait for a worker that hangs.
ProcessPoolOptions probe_options() {
  ProcessPoolOptions options;
  options.name = "check";
  options.max_workers = 1;
  options.min_workers = 0;
  options.recycle_jitter = 0;
  options.crash_storm = {.max = 1, .within = std::chrono::hours(1)};
  options.startup_timeout = std::chrono::seconds(60);
  options.shutdown_grace = std::chrono::seconds(5);
  return options;
}

// Why a probe failed: the nested cause when there is one (the pool's own
// "broken" wrapper says nothing a user can act on); a worker that died
// while loading the plugins is said to be a crash, with the signal.
std::string reason(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const BrokenPoolError& e) {
    if (auto cause = nested_cause(e)) {
      return reason(cause);
    }
    return e.what();
  } catch (const WorkerCrashedError& e) {
    return "the worker loading the plugins crashed: " + WorkerCrashedError::describe(e.exit());
  } catch (...) {
    return describe_exception(std::current_exception());
  }
}

struct Table {
  std::vector<Signature> signatures;
  std::optional<std::string> failure;  // why the plugins did not load
};

// The plugins' signatures as a troupe-worker that loaded them reports them.
Table read_table(const std::vector<std::filesystem::path>& plugins) {
  try {
    ProcessPool pool(plugins, probe_options());
    // An empty chunk is a round trip through a ready worker, whose ready
    // message carried the table.
    pool.submit_chunk("", {}).get();
    Table table{pool.signatures(), std::nullopt};
    pool.shutdown({.wait = true});
    return table;
  } catch (...) {
    return {{}, reason(std::current_exception())};
  }
}

// The plugins that do not load: each alone in a worker, so the problem
// names the one that failed; the set's failure when each loads alone.
std::vector<ConfigProblem> plugin_problems(const EngineSpec& spec, const std::string& failure, const Placer& placer) {
  std::vector<ConfigProblem> problems;
  for (std::size_t i = 0; i < spec.plugins.size() && spec.plugins.size() > 1; ++i) {
    if (auto alone = read_table({spec.plugins[i].path}).failure) {
      problems.push_back(placer.problem("plugins[" + std::to_string(i) + "].path",
                                        "plugin " + spec.plugins[i].path.string() + " does not load: " + *alone));
    }
  }
  if (problems.empty() && spec.plugins.size() == 1) {
    problems.push_back(
        placer.problem("plugins[0].path", "plugin " + spec.plugins[0].path.string() + " does not load: " + failure));
  } else if (problems.empty()) {
    problems.push_back(placer.problem("plugins", "the plugins do not load together: " + failure));
  }
  return problems;
}

std::array<std::optional<Call>, 2> hook_calls(const ThreadPoolOptions& options) {
  return {options.initializer.plugin_call(), options.finalizer.plugin_call()};
}

std::array<std::optional<Call>, 2> hook_calls(const ProcessPoolOptions& options) {
  return {options.initializer, options.finalizer};
}

// An mpi pool's hooks are its local pool's, which every serving rank runs
// on the file's plugins.
std::array<std::optional<Call>, 2> hook_calls(const MpiPoolOptions& options) {
  return std::visit([](const auto& local) { return hook_calls(local); }, options.local);
}

void check_pool_hooks(const PoolSpec& pool, const std::vector<Signature>& table, const Placer& placer,
                      std::vector<ConfigProblem>& problems) {
  const auto hooks = std::visit([](const auto& options) { return hook_calls(options); }, pool.options);
  const std::string pool_path =
      "pools." + pool.name + (std::holds_alternative<MpiPoolOptions>(pool.options) ? ".local" : "");
  for (std::size_t i = 0; i < hooks.size(); ++i) {
    if (!hooks[i]) {
      continue;
    }
    const std::string kind = i == 0 ? "initializer" : "finalizer";
    const std::string path = pool_path + "." + kind;
    for (auto& found : detail::check_hook(*hooks[i], kind, table)) {
      problems.push_back(
          placer.problem(found.where.empty() ? path : path + "." + found.where, std::move(found.message)));
    }
  }
}

// A job's task against the table: it exists, and it takes the item followed
// by the job's bound args and kwargs.
void check_job(const JobSpec& job, std::size_t index, const std::vector<Signature>& table, const Placer& placer,
               std::vector<ConfigProblem>& problems) {
  const std::string path = "jobs[" + std::to_string(index) + "]";
  for (auto& found : detail::check_job_call(Call{job.task, job.args, job.kwargs}, table)) {
    // A missing argument is the call's fault as a whole: placed at the task.
    problems.push_back(placer.problem(path + "." + (found.where.empty() ? "task" : found.where),
                                      "job '" + job.name + "': " + std::move(found.message)));
  }
}

// A job's timeout needs a pool that can stop a task: not an mpi pool whose
// ranks run thread pools.
void check_job_timeout(const EngineSpec& spec, std::size_t index, const Placer& placer,
                       std::vector<ConfigProblem>& problems) {
  const JobSpec& job = spec.jobs[index];
  if (!job.timeout) {
    return;
  }
  for (const auto& pool : spec.pools) {
    const auto* mpi = std::get_if<MpiPoolOptions>(&pool.options);
    if (pool.name == job.pool && mpi != nullptr && std::holds_alternative<ThreadPoolOptions>(mpi->local)) {
      problems.push_back(placer.problem("jobs[" + std::to_string(index) + "].timeout",
                                        "job '" + job.name + "': a timeout on pool '" + pool.name +
                                            "' (kind mpi) needs its local pool to be of kind process: a thread "
                                            "on a rank cannot be stopped"));
    }
  }
}

}  // namespace

void check(const EngineSpec& spec, const std::string& origin) {
  const Placer placer(spec, origin);
  std::vector<std::filesystem::path> plugins;
  for (const auto& plugin : spec.plugins) {
    plugins.push_back(plugin.path);
  }
  // Without plugins there is nothing to load and no hook to find.
  Table table = plugins.empty() ? Table{} : read_table(plugins);
  if (table.failure) {
    throw ConfigError(plugin_problems(spec, *table.failure, placer));
  }
  std::vector<ConfigProblem> problems;
  for (const auto& pool : spec.pools) {
    check_pool_hooks(pool, table.signatures, placer, problems);
  }
  for (std::size_t i = 0; i < spec.jobs.size(); ++i) {
    check_job(spec.jobs[i], i, table.signatures, placer, problems);
    check_job_timeout(spec, i, placer, problems);
  }
  if (!problems.empty()) {
    throw ConfigError(std::move(problems));
  }
}

}  // namespace troupe::config
