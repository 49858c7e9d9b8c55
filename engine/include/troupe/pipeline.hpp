// troupe/pipeline.hpp
//
// troupe::Pipeline: runs an EngineSpec's jobs (troupe/engine_spec.hpp) on
// the Engine's pools, each item's outcome appended to the job's JSON Lines
// output as it finishes. What `troupe run` does.
//
//   troupe::Engine engine(spec);
//   troupe::Pipeline pipeline(engine, spec.jobs, {.existing = troupe::ExistingOutput::resume});
//   troupe::PipelineReport report = pipeline.run();
//
// Guarantees: jobs start in `after` order (a `from` job after its
// upstream); independent jobs run at once, one thread each, all joined
// before run() returns. Each item is the task's first argument, followed by
// the job's args, with its kwargs; every item read ends as exactly one
// record (ok or failed) unless the run is stopped first or its pool breaks.
// Items whose input is bad and items whose key was seen before (naming both
// positions) are recorded failed without running; the job goes on. A job
// starts only when every job it comes after ended without an interrupt, a
// broken pool or a job error (failed items do not hold it back). A pool
// that breaks ends the job that uses it; the items it did not finish are
// not recorded, so a resume runs them.
// Thread safety: run() from one thread, once; stop() and stop_running()
// from any thread, also before and during run().
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "troupe/engine.hpp"
#include "troupe/engine_spec.hpp"
#include "troupe/progress.hpp"

namespace troupe {

// What a job does with an output file that exists already.
enum class ExistingOutput {
  refuse,        // UsageError before anything runs
  resume,        // skip the keys it records (ok or failed); a torn last line is cut off
  retry_failed,  // keep its ok records (rewritten through a temporary file), run the rest
  overwrite,     // start it again, empty
};

struct PipelineOptions {
  ExistingOutput existing = ExistingOutput::refuse;
  bool fsync = false;  // fdatasync after each record
  // Each running job's line, labelled with its name. On a terminal each job
  // has a line of its own, redrawn in place (jobs may run at once);
  // elsewhere each job writes its own plain lines.
  Progress progress{};
  // Run this job alone (its `after` is not waited for); its `from` upstream
  // output must exist. nullopt: every job.
  std::optional<std::string> job = std::nullopt;
  std::size_t failures_listed = 5;  // failures kept per job for the report
};

struct JobFailure {
  std::string key;    // as JSON: 42 or "a.txt"
  std::string error;  // "Type: message"
};

struct JobReport {
  std::string name;
  std::filesystem::path output;
  bool ran = false;                        // false: never started (a stop, or a job before it did not end cleanly)
  std::uint64_t ok = 0;                    // recorded ok now
  std::uint64_t failed = 0;                // recorded failed now (also bad input and duplicate keys)
  std::uint64_t skipped = 0;               // recorded by an earlier run (resume, retry_failed)
  std::uint64_t aborted = 0;               // read but not recorded: stopped, or the pool broke
  std::uint64_t retried = 0;               // attempts run again
  bool interrupted = false;                // stop() ended it early
  std::optional<std::string> pool_broken;  // the BrokenPoolError that ended it
  std::optional<std::string> error;        // what kept it from going on: its input or output failed
  std::vector<JobFailure> failures;        // the first few, in the order they were recorded
};

struct PipelineReport {
  std::vector<JobReport> jobs;  // in the order they were given (the one job with PipelineOptions::job)
  bool interrupted = false;
};

class Pipeline {
 public:
  // Checks the jobs before anything runs; throws UsageError naming the job
  // for an unknown PipelineOptions::job, an unknown `after`/`from` name, a
  // cycle, two jobs with one output, a `from` output missing with a single
  // job, and an existing output under ExistingOutput::refuse (naming the
  // file and the choices).
  Pipeline(Engine& engine, std::vector<JobSpec> jobs, PipelineOptions options = {});
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Runs the jobs; returns when every started job has ended. A second
  // call is a UsageError.
  PipelineReport run();

  // The first interrupt: no job starts any more; running jobs stop feeding,
  // cancel what is queued and record what finishes. Any thread.
  void stop() noexcept;
  // The second: also interrupt the items running (their workers are killed
  // on a process pool); those are not recorded. Any thread.
  void stop_running() noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace troupe
