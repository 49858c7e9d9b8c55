// One job of a pipeline, run once: its input streamed through a
// Runner::stream on its pool, each finished item appended to its output.
#pragma once

#include <atomic>
#include <filesystem>
#include <mutex>

#include "pipeline/job_key.hpp"
#include "troupe/executor.hpp"
#include "troupe/pipeline.hpp"
#include "troupe/runner.hpp"

namespace troupe::detail::pipeline {

class JobRun {
 public:
  // `upstream_output`: the output a `from` input reads (empty otherwise).
  JobRun(const JobSpec& spec, std::filesystem::path upstream_output, const PipelineOptions& options);

  // Prepares the output as options.existing says, then runs every item.
  // Never throws: what keeps the job from going on is JobReport::error.
  JobReport run(Executor& pool);

  // 1: stop feeding, cancel what is queued; 2: also interrupt what runs.
  // Any thread, before or during run(); levels only rise.
  void stop(int level) noexcept;

 private:
  const JobSpec& spec_;
  std::filesystem::path upstream_output_;
  const PipelineOptions& options_;
  std::mutex mutex_;
  std::atomic<int> level_{0};
  Runner<JobKey>* runner_ = nullptr;  // while run() runs, under mutex_
};

}  // namespace troupe::detail::pipeline
