// troupe run FILE [--job NAME] [--set K=V]... [--resume | --retry-failed |
// --overwrite] [--fsync] [--progress auto|always|never]: the file's jobs on
// its pools, SIGINT/SIGTERM taken for a clean stop, a summary on stderr.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>

#include "commands.hpp"
#include "troupe/config.hpp"
#include "troupe/engine.hpp"
#include "troupe/errors.hpp"
#include "troupe/interrupt.hpp"
#include "troupe/pipeline.hpp"
#if TROUPE_CLI_HAS_MPI
#include "troupe/mpi.hpp"
#endif

namespace troupe::cli {
namespace {

Progress progress_for(const std::string& when) {
  if (when == "always" || (when == "auto" && ::isatty(STDERR_FILENO) == 1)) {
    return Progress::to_terminal();
  }
  return Progress::none();
}

std::string plural(std::uint64_t n, const char* word) {
  return std::to_string(n) + " " + word;
}

// One line per job, its first failures under it.
void print_summary(const PipelineReport& report) {
  for (const JobReport& job : report.jobs) {
    std::cerr << "troupe: job '" << job.name << "': ";
    if (!job.ran) {
      std::cerr << "not run\n";
      continue;
    }
    std::cerr << plural(job.ok, "ok") << ", " << plural(job.failed, "failed");
    if (job.skipped != 0) {
      std::cerr << ", " << plural(job.skipped, "skipped (recorded before)");
    }
    if (job.aborted != 0) {
      std::cerr << ", " << plural(job.aborted, "not finished");
    }
    if (job.retried != 0) {
      std::cerr << ", " << plural(job.retried, "retried");
    }
    std::cerr << " -> " << job.output.string() << '\n';
    for (const JobFailure& failure : job.failures) {
      std::cerr << "  key " << failure.key << ": " << failure.error << '\n';
    }
    if (job.failed > job.failures.size()) {
      std::cerr << "  (" << job.failed - job.failures.size() << " more failed; each is a record with \"ok\": false)\n";
    }
    if (job.pool_broken) {
      print_error("job '" + job.name + "': its pool broke: " + *job.pool_broken);
    }
    if (job.error) {
      print_error("job '" + job.name + "': " + *job.error);
    }
  }
}

// Highest wins: 130 interrupted, 3 a pool broke, 2 a job could not go on, 1 some items failed.
int exit_code(const PipelineReport& report) {
  int code = kOk;
  for (const JobReport& job : report.jobs) {
    if (job.failed != 0) {
      code = std::max<int>(code, kTaskFailed);
    }
    if (job.error) {
      code = std::max<int>(code, kUsageError);
    }
    if (job.pool_broken) {
      code = std::max<int>(code, kPoolBroken);
    }
  }
  return report.interrupted ? kInterrupted : code;
}

// `word` as a shell reads it back: as is when it has nothing special,
// else in single quotes.
std::string shell_word(const std::string& word) {
  const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || (c != 0 && std::strchr("_./=:,+-@%", c) != nullptr);
  });
  if (plain) {
    return word;
  }
  std::string quoted = "'";
  for (const char c : word) {
    quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return quoted + "'";
}

// The command that continues this run: the same file, job and overrides,
// under mpirun with as many ranks when `ranks` (0: not an MPI job), since
// outside it a job on a pool of kind mpi is refused.
std::string resume_command(const RunOptions& options, int ranks) {
  std::string command = (ranks > 0 ? "mpirun -np " + std::to_string(ranks) + " " : std::string()) + "troupe run " +
                        shell_word(options.file);
  if (!options.job.empty()) {
    command += " --job " + shell_word(options.job);
  }
  for (const auto& set : options.sets) {
    command += " --set " + shell_word(set);
  }
  return command + " --resume";
}

#if TROUPE_CLI_HAS_MPI
// The file's pools of kind mpi, named as the Engine names them.
std::vector<MpiPoolOptions> mpi_pools(const EngineSpec& spec) {
  std::vector<MpiPoolOptions> pools;
  for (const PoolSpec& pool : spec.pools) {
    if (const auto* mpi = std::get_if<MpiPoolOptions>(&pool.options)) {
      pools.push_back(*mpi);
      pools.back().name = pool.name;
    }
  }
  return pools;
}
#endif

// Why the jobs to run cannot use their pools of kind mpi here, or "".
std::string mpi_refusal(const EngineSpec& spec, const RunOptions& options) {
  std::string used;
  for (const JobSpec& job : spec.jobs) {
    if (!options.job.empty() && job.name != options.job) {
      continue;
    }
    for (const PoolSpec& pool : spec.pools) {
      if (pool.name == job.pool && std::holds_alternative<MpiPoolOptions>(pool.options)) {
        used = pool.name;
      }
    }
  }
  if (used.empty()) {
    return {};
  }
#if TROUPE_CLI_HAS_MPI
  if (!mpi::launched_by_mpi()) {
    return "pool '" + used + "' is of kind mpi: start the run under MPI, e.g. `mpirun -np 3 troupe run " +
           shell_word(options.file) + "` (rank 0 runs the jobs, the other ranks serve the pool)";
  }
  return {};
#else
  return "pool '" + used +
         "' is of kind mpi, and this troupe was built without troupe::mpi (Open MPI was not found "
         "when it was built)";
#endif
}

// Under an MPI launcher, this process's rank as the launcher set it (before
// MPI starts); 0 otherwise.
int launcher_rank() {
  for (const char* variable : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"}) {
    if (const char* value = std::getenv(variable)) {
      return std::atoi(value);
    }
  }
  return 0;
}

#if TROUPE_CLI_HAS_MPI
// Whether every rank of the MPI job loaded the file. When rank 0 did not, it
// has said why already; when only others did not, each says why and rank 0
// names them, and every rank has printed before any leaves.
bool loaded_on_every_rank(const mpi::Environment& environment, const RunOptions& options,
                          const std::exception_ptr& load_error, const std::function<void(const std::string&)>& report) {
  const std::vector<int> not_ready = environment.ranks_not_ready(!load_error);
  if (not_ready.empty() || not_ready.front() == 0) {
    return not_ready.empty();
  }
  if (load_error) {
    report("on rank " + std::to_string(environment.rank()) + " (" + environment.host() + "):");
  } else if (environment.rank() == 0) {
    std::string ranks;
    for (int r : not_ready) {
      ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
    }
    print_error(options.file + " did not load on rank" + (not_ready.size() > 1 ? "s " : " ") + ranks +
                " (each says why): every rank reads the configuration itself, so each needs the same file, "
                "plugins and --set options");
  }
  environment.ranks_not_ready(true);  // a barrier: each has said why
  return false;
}
#endif

}  // namespace

int run_run(const RunOptions& options) {
  EngineSpec spec;
  std::exception_ptr load_error;
  try {
    spec = config::load_file(options.file, {.overrides = options.sets});
  } catch (...) {
    // Anything: under mpirun a rank that left here would leave the others
    // waiting for it in the agreement below.
    load_error = std::current_exception();
  }
  const auto report_load_error = [&](const std::string& heading) {
    try {
      std::rethrow_exception(load_error);
    } catch (const std::exception& e) {
      report_config_error(e, heading);
    } catch (...) {
      report_config_error(std::runtime_error(describe_exception(std::current_exception())), heading);
    }
  };
  // Rank 0 (as the launcher numbers it) says why at once, before MPI starts:
  // an MPI that cannot start ends the process. The other ranks read the
  // same file; they speak only if rank 0 loaded it.
  if (load_error && launcher_rank() == 0) {
    report_load_error({});
  }
  int ranks = 0;  // in the MPI job, if any
#if TROUPE_CLI_HAS_MPI
  // Under mpirun every rank runs this command: rank 0 runs the jobs, the
  // others serve the file's pools of kind mpi until rank 0 is done. Every
  // rank starts MPI, even one whose file did not load, so that the ranks
  // agree and end together (mpirun ends the job at the first exit with an
  // error, and would cut rank 0's report short).
  std::optional<mpi::Environment> environment;
  if (mpi::launched_by_mpi()) {
    environment.emplace();
    ranks = environment->size();
    if (!loaded_on_every_rank(*environment, options, load_error, report_load_error)) {
      return kUsageError;
    }
  }
#endif
  if (load_error) {
    return kUsageError;  // reported above (without troupe::mpi, by rank 0 alone)
  }
  if (auto why = mpi_refusal(spec, options); !why.empty()) {
    if (launcher_rank() == 0) {
      print_error(options.file + ": " + why);
    }
    return kUsageError;
  }
#if TROUPE_CLI_HAS_MPI
  if (environment && environment->rank() != 0) {
    std::vector<std::filesystem::path> plugins;
    for (const auto& plugin : spec.plugins) {
      plugins.push_back(plugin.path);
    }
    mpi::serve(plugins, mpi_pools(spec));
    return kOk;
  }
#endif
  try {
    config::check(spec, options.file);
  } catch (const ConfigError& e) {
    return report_config_error(e);
  }
  if (spec.jobs.empty()) {
    print_error(options.file + ": no jobs to run (a `jobs:` list names them)");
    return kUsageError;
  }
  PipelineOptions pipeline_options;
  pipeline_options.existing = options.existing;
  pipeline_options.fsync = options.fsync;
  pipeline_options.progress = progress_for(options.progress);
  if (!options.job.empty()) {
    pipeline_options.job = options.job;
  }
  Engine engine(spec);
  Pipeline pipeline(engine, spec.jobs, std::move(pipeline_options));
  PipelineReport report;
  {
    InterruptScope interrupts([&pipeline](int count) {
      if (count >= 2) {
        pipeline.stop_running();
      } else {
        pipeline.stop();
      }
    });
    report = pipeline.run();
  }
  print_summary(report);
  if (report.interrupted) {
    print_error("interrupted; to continue where it stopped: " + resume_command(options, ranks));
  }
  return exit_code(report);
}

}  // namespace troupe::cli
