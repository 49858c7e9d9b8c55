// config::check: what load_file cannot know without the plugins, learned
// from troupe-worker processes (a ProcessPool's test() round trip), so
// plugin code never runs in the checking process.
#include <algorithm>
#include <chrono>
#include <exception>

#include "troupe/config.hpp"
#include "troupe/errors.hpp"
#include "troupe/process_pool.hpp"

namespace troupe::config {
namespace {

// A one-worker process pool whose start-up failure is reported at once
// rather than retried as a crash storm.
ProcessPoolOptions probe_options(const std::string& name, std::optional<Call> initializer,
                                 std::optional<Call> finalizer, const ProcessPoolOptions* base) {
  ProcessPoolOptions options = base != nullptr ? *base : ProcessPoolOptions{};
  options.name = name;
  options.max_workers = 1;
  options.min_workers = 0;
  options.recycle_jitter = 0;
  options.crash_storm = {.max = 1, .within = std::chrono::hours(1)};
  // A check must end: a hook that hangs is reported as a start-up timeout.
  options.startup_timeout = std::min<std::chrono::nanoseconds>(options.startup_timeout, std::chrono::seconds(60));
  options.shutdown_grace = std::min<std::chrono::nanoseconds>(options.shutdown_grace, std::chrono::seconds(5));
  options.initializer = std::move(initializer);
  options.finalizer = std::move(finalizer);
  return options;
}

// Why a probe failed: the nested cause when there is one (the pool's own
// "broken" wrapper says nothing a user can act on).
std::string reason(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const BrokenPoolError& e) {
    if (auto cause = nested_cause(e)) {
      return describe_exception(cause);
    }
    return e.what();
  } catch (...) {
    return describe_exception(std::current_exception());
  }
}

std::optional<std::string> probe(const std::vector<std::filesystem::path>& plugins, const ProcessPoolOptions& options) {
  try {
    ProcessPool pool(plugins, options);
    pool.test();
    pool.shutdown({.wait = true});
    return std::nullopt;
  } catch (...) {
    return reason(std::current_exception());
  }
}

}  // namespace

void check(const EngineSpec& spec, const std::string& origin) {
  std::vector<std::filesystem::path> plugins;
  for (const auto& plugin : spec.plugins) {
    plugins.push_back(plugin.path);
  }
  std::vector<ConfigProblem> problems;
  if (auto failure = probe(plugins, probe_options("check", std::nullopt, std::nullopt, nullptr))) {
    throw ConfigError({ConfigProblem{origin, 0, 0, "plugins", "the plugins do not load: " + *failure}});
  }
  for (const auto& pool : spec.pools) {
    std::optional<Call> initializer;
    std::optional<Call> finalizer;
    const ProcessPoolOptions* base = std::get_if<ProcessPoolOptions>(&pool.options);
    if (base != nullptr) {
      initializer = base->initializer;
      finalizer = base->finalizer;
    } else {
      const auto& thread = std::get<ThreadPoolOptions>(pool.options);
      initializer = thread.initializer.plugin_call();
      finalizer = thread.finalizer.plugin_call();
    }
    if (!initializer && !finalizer) {
      continue;
    }
    if (auto failure = probe(plugins, probe_options(pool.name, initializer, finalizer, base))) {
      problems.push_back({origin, 0, 0, "pools." + pool.name,
                          std::string("its ") + (initializer ? "initializer" : "finalizer") +
                              (initializer && finalizer ? " or finalizer" : "") + " failed in a worker: " + *failure});
    }
  }
  if (!problems.empty()) {
    throw ConfigError(std::move(problems));
  }
}

}  // namespace troupe::config
