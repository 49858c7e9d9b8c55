// parallelize's pool and the report in input order.
#include "troupe/parallelize.hpp"

#include <unistd.h>

#include "troupe/cpu_count.hpp"
#include "troupe/process_pool.hpp"
#include "troupe/registry.hpp"
#include "troupe/thread_pool.hpp"

namespace troupe::detail {
ParallelPool parallelize_pool(const ParallelizeOptions& options, bool callable) {
  ParallelPool made;
  const std::size_t workers = options.workers != 0 ? options.workers : cpu_count();
  if (options.kind == PoolKind::process) {
    if (callable) {
      throw UsageError("parallelize: a C++ callable runs only on a thread pool; pass a task name for kind = process");
    }
    ProcessPoolOptions o;
    o.max_workers = workers;
    o.name = options.label;
    made.pool = std::make_unique<ProcessPool>(options.plugins, std::move(o));
    return made;
  }
  ThreadPoolOptions o;
  o.max_workers = workers;
  o.name = options.label;
  if (!options.plugins.empty()) {
    made.registry = std::make_unique<Registry>();
    for (const auto& path : options.plugins) {
      made.registry->load(path);
    }
    o.registry = made.registry.get();
  }
  made.pool = std::make_unique<ThreadPool>(std::move(o));
  return made;
}

RunnerOptions parallelize_runner_options(const ParallelizeOptions& options) {
  RunnerOptions r;
  r.retries = options.retries;
  r.label = options.label;
  r.report_errors = options.report_errors;
  r.handle_interrupts = options.handle_interrupts;
  if (options.progress) {
    r.progress = *options.progress;
  } else if (::isatty(STDERR_FILENO) == 1) {
    r.progress = Progress::to_terminal();
  }
  return r;
}

ParallelReport parallelize_collect(RunReport<std::size_t>&& report, std::size_t n) {
  ParallelReport out;
  out.interrupted = report.interrupted;
  out.outcomes.resize(n);
  for (auto& [index, outcome] : report.outcomes) {
    out.outcomes[index] = std::move(outcome);
  }
  out.aborted = std::move(report.aborted);
  for (std::size_t index : out.aborted) {
    out.outcomes[index].error =
        std::make_exception_ptr(CancelledError("parallelize: input " + std::to_string(index) + " was aborted"));
  }
  return out;
}

}  // namespace troupe::detail
