// troupe/parallelize.hpp
//
// troupe::parallelize: the one-call form of a Runner. Makes a temporary pool
// of the kind and size asked, runs `fn(item)` (a C++ callable, thread pool)
// or the plugin task `task(item)` (either kind) for every input, and returns
// the outcomes in input order.
//
//   auto r = troupe::parallelize([](int x) { return x * x; }, std::vector{1, 2, 3});
//   auto r = troupe::parallelize("text.words", docs, {.kind = troupe::PoolKind::process, .plugins = {text}});
//
// Guarantees: the pool is shut down (its work ended) before the call
// returns; progress goes to stderr when it is a terminal unless `progress`
// says otherwise; every input has an outcome, or is listed in `aborted`
// when the run was interrupted.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "troupe/executor.hpp"
#include "troupe/registry.hpp"
#include "troupe/runner.hpp"

namespace troupe {

enum class PoolKind { thread, process };

struct ParallelizeOptions {
  PoolKind kind = PoolKind::thread;
  std::size_t workers = 0;                       // 0: cpu_count()
  std::vector<std::filesystem::path> plugins{};  // for a task: the plugins that provide it
  std::optional<Progress> progress{};            // nullopt: Progress::to_terminal() when stderr is a terminal
  std::string label = "parallelize";
  RetryPolicy retries{};
  bool report_errors = false;
  bool handle_interrupts = false;  // SIGINT/SIGTERM stop the run (see Runner)
};

struct ParallelReport {
  std::vector<RunOutcome> outcomes;  // input order; an aborted input's holds a CancelledError, attempts 0
  std::vector<std::size_t> aborted;  // indexes of inputs that never finished
  bool interrupted = false;
};

namespace detail {
// The temporary pool (and the registry a thread pool's plugin tasks need);
// throws UsageError for a callable on a process pool.
struct ParallelPool {
  std::unique_ptr<Registry> registry;  // declared first: outlives the pool
  std::unique_ptr<Executor> pool;
};
ParallelPool parallelize_pool(const ParallelizeOptions& options, bool callable);
RunnerOptions parallelize_runner_options(const ParallelizeOptions& options);
ParallelReport parallelize_collect(RunReport<std::size_t>&& report, std::size_t n);

template <class Range, class Make>
ParallelReport parallelize_run(const ParallelizeOptions& options, bool callable, Range&& inputs, Make make) {
  ParallelPool made = parallelize_pool(options, callable);
  Executor& pool = *made.pool;
  ParallelReport out;
  {
    Runner<std::size_t> runner(pool, parallelize_runner_options(options));
    std::size_t n = 0;
    for (auto&& item : inputs) {
      runner.add(n++, make(std::forward<decltype(item)>(item)));
    }
    out = parallelize_collect(runner.run(), n);
  }
  pool.shutdown();
  return out;
}
}  // namespace detail

// fn(item) for each input on a temporary ThreadPool (kind must be thread).
template <class F, std::ranges::input_range Range>
requires(!std::is_convertible_v<F, std::string>) ParallelReport
    parallelize(F fn, Range&& inputs, const ParallelizeOptions& options = {}) {
  return detail::parallelize_run(options, true, std::forward<Range>(inputs), [&fn](auto&& item) {
    return RunWork([fn, item = std::forward<decltype(item)>(item)]() mutable { return fn(item); });
  });
}

// The plugin task `task` (plugin.task) with each input as its one argument.
template <std::ranges::input_range Range>
ParallelReport parallelize(const std::string& task, Range&& inputs, const ParallelizeOptions& options = {}) {
  return detail::parallelize_run(options, false, std::forward<Range>(inputs), [&task](auto&& item) {
    return RunWork(Call{task, {Value(std::forward<decltype(item)>(item))}, {}});
  });
}

}  // namespace troupe
