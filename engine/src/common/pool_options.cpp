// validate() for both pool kinds: the shared rules are written once, over
// the fields the two structs declare from the same lists.
#include "troupe/pool_options.hpp"

#include <cstdint>
#include <limits>

#include "troupe/cpu_count.hpp"
#include "troupe/sdk/errors.hpp"

namespace troupe {
namespace {

using std::chrono::nanoseconds;

// The largest unit that divides the duration exactly: 250ms, 30s, -1ns.
std::string duration_text(nanoseconds d) {
  struct Unit {
    std::int64_t ns;
    const char* suffix;
  };
  static constexpr Unit kUnits[] = {
      {3'600'000'000'000, "h"}, {60'000'000'000, "min"}, {1'000'000'000, "s"}, {1'000'000, "ms"}, {1'000, "us"}};
  const std::int64_t ns = d.count();
  if (ns != 0) {
    for (const auto& unit : kUnits) {
      if (ns % unit.ns == 0) {
        return std::to_string(ns / unit.ns) + unit.suffix;
      }
    }
  }
  return std::to_string(ns) + "ns";
}

const char* policy_text(QueueFullPolicy policy) {
  switch (policy) {
    case QueueFullPolicy::block:
      return "block";
    case QueueFullPolicy::fail:
      return "fail";
    case QueueFullPolicy::caller_runs:
      return "caller_runs";
  }
  return "?";
}

// The rules for the fields both structs declare from the shared lists, so
// the same value gets the same answer on either kind.
// cpu_count() reads /proc and /sys (about ten files): it is asked only where
// the answer depends on it, so validating a file of many pools stays cheap.
template <class Options>
void check_shared(const Options& o, std::vector<OptionProblem>& out) {
  if (o.max_workers > kMaxWorkersLimit) {
    out.push_back(
        {"max_workers", std::to_string(o.max_workers),
         "at most " + std::to_string(kMaxWorkersLimit) + " (0: cpu_count() = " + std::to_string(cpu_count()) + ")"});
  }
  if (o.min_workers > 0 && o.min_workers > (o.max_workers != 0 ? o.max_workers : cpu_count())) {
    out.push_back({"min_workers", std::to_string(o.min_workers),
                   "at most max_workers (" +
                       (o.max_workers != 0 ? std::to_string(o.max_workers)
                                           : "0, which is cpu_count() = " + std::to_string(cpu_count()) + " here") +
                       ")"});
  }
  if (o.idle_timeout && o.idle_timeout->count() < 0) {
    out.push_back({"idle_timeout", duration_text(*o.idle_timeout),
                   "0 or more (0: retire as soon as idle), or unset to never retire idle workers"});
  }
  if (o.max_tasks_per_worker && *o.max_tasks_per_worker == 0) {
    out.push_back({"max_tasks_per_worker", "0", "at least 1, or unset for no limit"});
  }
  if (o.queue_limit && *o.queue_limit == 0) {
    out.push_back({"queue_limit", "0", "at least 1, or unset for an unbounded queue"});
  }
}

void check_name(const std::string& name, std::vector<OptionProblem>& out) {
  if (name.empty()) {
    out.push_back({"name", "\"\"", "a non-empty name: errors and logs name the pool by it"});
  }
}

void check_hook(const char* option, const WorkerHook& hook, const Registry* registry, std::vector<OptionProblem>& out) {
  if (hook.plugin_call() && registry == nullptr) {
    out.push_back({option, "plugin call '" + hook.plugin_call()->task + "'",
                   "a C++ callable, or a plugin call together with .registry to resolve it"});
  }
}

std::string listing(const char* kind, const std::string& name, const std::vector<OptionProblem>& problems) {
  std::string out = std::string(kind) + " '" + name + "': " + std::to_string(problems.size()) + " invalid option" +
                    (problems.size() == 1 ? "" : "s") + ": ";
  for (std::size_t i = 0; i < problems.size(); ++i) {
    out += (i == 0 ? "" : "; ") + problems[i].to_string();
  }
  return out;
}

}  // namespace

std::string OptionProblem::to_string() const {
  return option + " = " + value + ": must be " + allowed;
}

std::vector<OptionProblem> validate(const ThreadPoolOptions& options) {
  std::vector<OptionProblem> out;
  check_shared(options, out);
  check_hook("initializer", options.initializer, options.registry, out);
  check_hook("finalizer", options.finalizer, options.registry, out);
  check_name(options.name, out);
  if (options.spin_before_sleep.count() < 0) {
    out.push_back(
        {"spin_before_sleep", duration_text(options.spin_before_sleep), "0 or more (0: sleep at once when idle)"});
  }
  return out;
}

std::vector<OptionProblem> validate(const ProcessPoolOptions& options) {
  std::vector<OptionProblem> out;
  check_shared(options, out);
  if (options.recycle_jitter != 0 && !options.max_tasks_per_worker) {
    out.push_back({"recycle_jitter", std::to_string(options.recycle_jitter),
                   "0 unless max_tasks_per_worker is set (the jitter is added to that limit)"});
  }
  if (options.max_memory_per_worker && *options.max_memory_per_worker == 0) {
    out.push_back({"max_memory_per_worker", "0", "at least 1 byte, or unset for no limit"});
  }
  if (options.queue_full_policy == QueueFullPolicy::caller_runs) {
    out.push_back({"queue_full_policy", policy_text(options.queue_full_policy),
                   "block or fail on a ProcessPool: caller_runs exists only on thread pools (the host does not load "
                   "plugins, so it cannot run a task itself)"});
  }
  for (const auto& [variable, value] : options.env) {
    if (variable.empty() || variable.find('=') != std::string::npos || variable.find('\0') != std::string::npos) {
      out.push_back({"env", "\"" + variable + "\"", "variable names that are non-empty, without '=' or NUL"});
    }
  }
  if (options.task_timeout && options.task_timeout->count() <= 0) {
    out.push_back({"task_timeout", duration_text(*options.task_timeout), "positive, or unset for no timeout"});
  }
  if (options.startup_timeout.count() <= 0) {
    out.push_back({"startup_timeout", duration_text(options.startup_timeout), "positive"});
  }
  if (options.shutdown_grace.count() < 0) {
    out.push_back({"shutdown_grace", duration_text(options.shutdown_grace), "0 or more (0: signal at once)"});
  }
  // Frames carry a 32-bit length.
  if (options.max_frame < 1024 || options.max_frame > std::numeric_limits<std::uint32_t>::max()) {
    out.push_back({"max_frame", std::to_string(options.max_frame), "between 1024 and 4294967295 bytes"});
  }
  if (options.crash_storm.max > 0 && options.crash_storm.within.count() <= 0) {
    out.push_back({"crash_storm.within", duration_text(options.crash_storm.within),
                   "positive while crash_storm.max > 0 (max = 0 turns crash storms off)"});
  }
  check_name(options.name, out);
  return out;
}

std::vector<OptionProblem> validate(const MpiPoolOptions& options) {
  std::vector<OptionProblem> out;
  for (auto& problem : std::visit([](const auto& local) { return validate(local); }, options.local)) {
    problem.option = "local." + problem.option;
    out.push_back(std::move(problem));
  }
  if (options.frames_per_worker < 1 || options.frames_per_worker > 1024) {
    out.push_back({"frames_per_worker", std::to_string(options.frames_per_worker), "between 1 and 1024"});
  }
  if (options.queue_limit && *options.queue_limit == 0) {
    out.push_back({"queue_limit", "0", "at least 1, or unset for an unbounded queue"});
  }
  if (options.queue_full_policy == QueueFullPolicy::caller_runs) {
    out.push_back({"queue_full_policy", policy_text(options.queue_full_policy),
                   "block or fail on an MpiPool: caller_runs exists only on thread pools (rank 0 does not load "
                   "plugins, so it cannot run a task itself)"});
  }
  if (options.startup_timeout.count() <= 0) {
    out.push_back({"startup_timeout", duration_text(options.startup_timeout), "positive"});
  }
  check_name(options.name, out);
  return out;
}

void throw_if_invalid(const ThreadPoolOptions& options) {
  if (auto problems = validate(options); !problems.empty()) {
    throw UsageError(listing("ThreadPool", options.name, problems));
  }
}

void throw_if_invalid(const ProcessPoolOptions& options) {
  if (auto problems = validate(options); !problems.empty()) {
    throw UsageError(listing("ProcessPool", options.name, problems));
  }
}

void throw_if_invalid(const MpiPoolOptions& options) {
  if (auto problems = validate(options); !problems.empty()) {
    throw UsageError(listing("MpiPool", options.name, problems));
  }
}

}  // namespace troupe
