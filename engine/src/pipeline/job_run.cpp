// One job: output prepared (fresh, resumed, failed ones dropped or
// truncated), input streamed through Runner::stream, each outcome written
// as one record on the runner's thread (sink and source share it, so the
// writer needs no lock). Items that cannot run (bad input, a duplicate key)
// are written from the source without going to the pool.
#include "pipeline/job_run.hpp"

#include <optional>
#include <utility>

#include "pipeline/job_input.hpp"
#include "pipeline/job_output.hpp"
#include "troupe/errors.hpp"

namespace troupe::detail::pipeline {
namespace {

namespace fs = std::filesystem;

bool is_broken_pool(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const BrokenPoolError&) {
    return true;
  } catch (...) {
    return false;
  }
}

// "Type: message": the first line of the library's one printer.
std::string headline(const std::exception_ptr& error) {
  std::string text = describe_exception(error);
  return text.substr(0, text.find('\n'));
}

std::string first_line(const std::exception& error) {
  std::string text = error.what();
  return text.substr(0, text.find('\n'));
}

}  // namespace

JobRun::JobRun(const JobSpec& spec, fs::path upstream_output, const PipelineOptions& options)
    : spec_(spec), upstream_output_(std::move(upstream_output)), options_(options) {}

void JobRun::stop(int level) noexcept {
  int seen = level_.load(std::memory_order_acquire);
  while (seen < level && !level_.compare_exchange_weak(seen, level, std::memory_order_acq_rel)) {
  }
  try {
    std::lock_guard lock(mutex_);
    if (runner_ != nullptr) {
      level >= 2 ? runner_->stop_running() : runner_->stop();
    }
  } catch (...) {
    // A mutex that cannot lock: the job still sees level_ before it starts its runner.
  }
}

JobReport JobRun::run(Executor& pool) {
  JobReport report;
  report.name = spec_.name;
  report.output = spec_.output;
  report.ran = true;
  const auto note_failure = [&](const JobKey& key, const std::exception_ptr& error) {
    if (report.failures.size() < options_.failures_listed) {
      report.failures.push_back({describe(key), headline(error)});
    }
  };
  try {
    // What an earlier run recorded, and how the file is opened.
    std::optional<OutputScan> earlier;
    RecordWriter::Mode mode = RecordWriter::Mode::create;
    remove_stale_temporaries(spec_.output);  // a --retry-failed killed before its rename left them
    if (fs::exists(spec_.output)) {
      switch (options_.existing) {
        case ExistingOutput::refuse:
          throw UsageError("job '" + spec_.name + "': the output " + spec_.output.string() +
                           " exists; choose resume, retry_failed or overwrite");
        case ExistingOutput::resume:
          earlier = scan_output(spec_.output);
          if (earlier->torn_tail) {
            fs::resize_file(spec_.output, earlier->valid_bytes);  // a record cut off by a crash
          }
          mode = RecordWriter::Mode::append;
          break;
        case ExistingOutput::retry_failed:
          earlier = keep_only_ok(spec_.output);
          mode = RecordWriter::Mode::append;
          break;
        case ExistingOutput::overwrite:
          break;
      }
    } else if (spec_.output.has_parent_path()) {
      fs::create_directories(spec_.output.parent_path());
    }
    RecordWriter writer(spec_.output, mode, options_.fsync);
    std::unique_ptr<JobInput> input = open_input(spec_.inputs, upstream_output_);

    RunnerOptions runner_options;
    runner_options.retries = {.max = spec_.retries, .on = Retry::any};
    runner_options.progress = options_.progress;
    runner_options.label = spec_.name;
    runner_options.batch = spec_.chunk_size;
    runner_options.timeout = spec_.timeout;
    Runner<JobKey> runner(pool, std::move(runner_options));
    struct Published {
      JobRun& job;
      ~Published() {
        std::lock_guard lock(job.mutex_);
        job.runner_ = nullptr;
      }
    };
    {
      std::lock_guard lock(mutex_);
      runner_ = &runner;
    }
    Published published{*this};
    if (const int level = level_.load(std::memory_order_acquire); level > 0) {
      level >= 2 ? runner.stop_running() : runner.stop();
    }

    const auto record_failed = [&](const JobKey& key, std::exception_ptr error) {
      RunOutcome outcome;
      outcome.error = std::move(error);
      writer.write(format_record(key, outcome));
      ++report.failed;
      note_failure(key, outcome.error);
    };
    KeySet seen;
    const auto source = [&]() -> std::optional<RunItem<JobKey>> {
      while (std::optional<InputItem> item = input->next()) {
        const bool recorded = earlier && (earlier->ok.contains(item->key) || earlier->failed.contains(item->key));
        // A bad item's key is its line number, which may equal a real key: it takes no part in duplicates.
        const std::optional<std::uint64_t> first = item->error ? std::nullopt : seen.insert(item->key, item->position);
        if (recorded) {
          ++report.skipped;
          continue;
        }
        if (item->error) {
          record_failed(item->key, item->error);
          continue;
        }
        if (first) {
          record_failed(item->key, std::make_exception_ptr(InputError(
                                       "duplicate key " + describe(item->key) + ": the item at position " +
                                       std::to_string(item->position) + " has the key of the item at position " +
                                       std::to_string(*first) + " (positions count from 0)")));
          continue;
        }
        Args args;
        args.reserve(1 + spec_.args.size());
        args.push_back(std::move(item->value));
        args.insert(args.end(), spec_.args.begin(), spec_.args.end());
        return RunItem<JobKey>{std::move(item->key), Call{spec_.task, std::move(args), spec_.kwargs}};
      }
      return std::nullopt;
    };
    const auto sink = [&](JobKey&& key, RunOutcome&& outcome) {
      if (!outcome.ok() && is_broken_pool(outcome.error)) {
        // Not the item's fault: left unrecorded so that a resume runs it.
        ++report.aborted;
        if (!report.pool_broken) {
          report.pool_broken = headline(outcome.error);
          runner.stop();
        }
        return;
      }
      writer.write(format_record(key, outcome));
      if (outcome.ok()) {
        ++report.ok;
      } else {
        ++report.failed;
        note_failure(key, outcome.error);
      }
    };
    const RunSummary summary = runner.stream(source, sink, [&](JobKey&&) { ++report.aborted; });
    report.retried = summary.retried;
    if (!report.pool_broken) {
      // It may have broken with nothing of this job left in it (its last items ran elsewhere).
      try {
        pool.check();
      } catch (const BrokenPoolError&) {
        report.pool_broken = headline(std::current_exception());
      } catch (...) {
        // Shut down by its owner: not this job's concern.
      }
    }
  } catch (const std::exception& e) {
    report.error = first_line(e);
  } catch (...) {
    report.error = headline(std::current_exception());
  }
  report.interrupted = level_.load(std::memory_order_acquire) > 0;
  return report;
}

}  // namespace troupe::detail::pipeline
