// Pipeline: checks the jobs up front, then starts each job on its own
// thread once the jobs it comes after ended cleanly, and joins them all.
// The scheduling loop runs on run()'s caller and sleeps on a condition
// variable between job ends.
#include "troupe/pipeline.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "pipeline/job_run.hpp"
#include "runner/progress_board.hpp"
#include "runner/progress_target.hpp"
#include "troupe/errors.hpp"

namespace troupe {
namespace {

namespace fs = std::filesystem;
using detail::pipeline::JobRun;

// The jobs a job waits for: `after`, and the upstream of a `from` input.
std::vector<std::string> dependencies(const JobSpec& job) {
  std::vector<std::string> deps = job.after;
  if (job.inputs.kind == JobInputSpec::Kind::from &&
      std::find(deps.begin(), deps.end(), job.inputs.from) == deps.end()) {
    deps.push_back(job.inputs.from);
  }
  return deps;
}

std::string names_of(const std::vector<JobSpec>& jobs) {
  std::string names;
  for (const auto& job : jobs) {
    names += (names.empty() ? "'" : ", '") + job.name + "'";
  }
  return names.empty() ? "none" : names;
}

// Throws UsageError naming a cycle of `after`/`from` ("a -> b -> a").
void refuse_cycles(const std::vector<JobSpec>& jobs, const std::map<std::string, std::size_t>& index) {
  enum Mark { unseen, open, closed };
  std::vector<Mark> marks(jobs.size(), unseen);
  std::vector<std::size_t> path;
  auto visit = [&](auto& self, std::size_t i) -> void {
    marks[i] = open;
    path.push_back(i);
    for (const auto& dep : dependencies(jobs[i])) {
      const std::size_t j = index.at(dep);
      if (marks[j] == open) {
        std::string cycle;
        for (auto it = std::find(path.begin(), path.end(), j); it != path.end(); ++it) {
          cycle += jobs[*it].name + " -> ";
        }
        throw UsageError("jobs: a cycle in after/from: " + cycle + jobs[j].name);
      }
      if (marks[j] == unseen) {
        self(self, j);
      }
    }
    path.pop_back();
    marks[i] = closed;
  };
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (marks[i] == unseen) {
      visit(visit, i);
    }
  }
}

}  // namespace

struct Pipeline::State {
  Engine& engine;
  std::vector<JobSpec> jobs;
  PipelineOptions options;
  std::vector<std::size_t> selected;          // indexes into jobs, in their order
  std::map<std::string, std::size_t> index;   // job name -> index into jobs
  std::vector<std::unique_ptr<JobRun>> runs;  // one per selected job
  std::atomic<int> level{0};
  bool ran = false;

  std::mutex mutex;
  std::condition_variable job_ended;
  std::size_t ended = 0;  // guarded by mutex

  State(Engine& e, std::vector<JobSpec> j, PipelineOptions o) : engine(e), jobs(std::move(j)), options(std::move(o)) {}
};

Pipeline::Pipeline(Engine& engine, std::vector<JobSpec> jobs, PipelineOptions options)
    : state_(std::make_unique<State>(engine, std::move(jobs), std::move(options))) {
  State& s = *state_;
  std::map<fs::path, std::string> outputs;
  for (std::size_t i = 0; i < s.jobs.size(); ++i) {
    const JobSpec& job = s.jobs[i];
    if (job.name.empty()) {
      throw UsageError("jobs[" + std::to_string(i) + "]: a job needs a name");
    }
    if (!s.index.emplace(job.name, i).second) {
      throw UsageError("jobs: two jobs are named '" + job.name + "'");
    }
    if (job.output.empty()) {
      throw UsageError("job '" + job.name + "': no output file");
    }
    // Symbolic links followed: a linked folder is the same file.
    std::error_code ec;
    const fs::path resolved = fs::weakly_canonical(job.output, ec);
    const fs::path output = ec ? job.output.lexically_normal() : resolved;
    if (auto [it, fresh] = outputs.emplace(output, job.name); !fresh) {
      throw UsageError("jobs '" + it->second + "' and '" + job.name + "' both write " + output.string());
    }
  }
  for (const auto& job : s.jobs) {
    for (const auto& dep : dependencies(job)) {
      if (s.index.count(dep) == 0) {
        throw UsageError("job '" + job.name + "' comes after '" + dep +
                         "', which is not a job (jobs: " + names_of(s.jobs) + ")");
      }
      if (dep == job.name) {
        throw UsageError("job '" + job.name + "' comes after itself");
      }
    }
  }
  refuse_cycles(s.jobs, s.index);

  if (s.options.job) {
    auto it = s.index.find(*s.options.job);
    if (it == s.index.end()) {
      throw UsageError("no job named '" + *s.options.job + "' (jobs: " + names_of(s.jobs) + ")");
    }
    s.selected.push_back(it->second);
    const JobSpec& job = s.jobs[it->second];
    if (job.inputs.kind == JobInputSpec::Kind::from) {
      const fs::path& upstream = s.jobs[s.index.at(job.inputs.from)].output;
      if (!fs::exists(upstream)) {
        throw UsageError("job '" + job.name + "' reads the output of job '" + job.inputs.from + "', " +
                         upstream.string() + ", which does not exist; run job '" + job.inputs.from +
                         "' first, or every job");
      }
    }
  } else {
    for (std::size_t i = 0; i < s.jobs.size(); ++i) {
      s.selected.push_back(i);
    }
  }
  // On a terminal each job gets a line of its own (jobs may run at once);
  // elsewhere each job's plain lines, labelled, go to the same target.
  if (const auto& target = s.options.progress.target(); target && target->fd >= 0 && ::isatty(target->fd) == 1) {
    s.options.progress = detail::progress_board(target->fd);
  }
  for (std::size_t i : s.selected) {
    const JobSpec& job = s.jobs[i];
    if (s.options.existing == ExistingOutput::refuse && fs::exists(job.output)) {
      throw UsageError("job '" + job.name + "': the output " + job.output.string() +
                       " exists; pass --resume to skip the items it records, --retry-failed to run its failed "
                       "items again, or --overwrite to start it over");
    }
    fs::path upstream;
    if (job.inputs.kind == JobInputSpec::Kind::from) {
      upstream = s.jobs[s.index.at(job.inputs.from)].output;
    }
    s.runs.push_back(std::make_unique<JobRun>(job, std::move(upstream), s.options));
  }
}

Pipeline::~Pipeline() = default;

PipelineReport Pipeline::run() {
  State& s = *state_;
  if (s.ran) {
    throw UsageError("Pipeline::run: the pipeline has run; make a new one to run again");
  }
  s.ran = true;
  enum class Status { pending, running, clean, unclean };
  const std::size_t n = s.selected.size();
  std::vector<Status> status(n, Status::pending);
  std::map<std::string, std::size_t> position;  // job name -> its place in `selected`
  for (std::size_t k = 0; k < n; ++k) {
    position.emplace(s.jobs[s.selected[k]].name, k);
  }
  PipelineReport report;
  report.jobs.resize(n);
  for (std::size_t k = 0; k < n; ++k) {
    report.jobs[k].name = s.jobs[s.selected[k]].name;
    report.jobs[k].output = s.jobs[s.selected[k]].output;
  }

  std::vector<std::thread> threads;
  struct Joiner {
    std::vector<std::thread>& threads;
    ~Joiner() {
      for (auto& t : threads) {
        if (t.joinable()) {
          t.join();
        }
      }
    }
  } joiner{threads};

  const auto run_job = [&s, &report, &status](std::size_t k) {
    const JobSpec& job = s.jobs[s.selected[k]];
    JobReport result;
    try {
      std::shared_ptr<Executor> pool = s.engine.pool(job.pool);
      result = s.runs[k]->run(*pool);
    } catch (const std::exception& e) {
      result.name = job.name;
      result.output = job.output;
      result.ran = true;
      result.error = e.what();
    }
    std::lock_guard lock(s.mutex);
    const bool clean = !result.interrupted && !result.pool_broken && !result.error;
    report.jobs[k] = std::move(result);
    status[k] = clean ? Status::clean : Status::unclean;
    ++s.ended;
    s.job_ended.notify_all();
  };

  std::unique_lock lock(s.mutex);
  while (true) {
    std::size_t running = 0;
    bool changed = true;
    while (changed) {  // a job held back by an unclean one holds back those after it too
      changed = false;
      for (std::size_t k = 0; k < n; ++k) {
        if (status[k] != Status::pending) {
          continue;
        }
        bool ready = true;
        bool blocked = false;
        if (!s.options.job) {
          for (const auto& dep : dependencies(s.jobs[s.selected[k]])) {
            const Status d = status[position.at(dep)];
            ready = ready && d == Status::clean;
            blocked = blocked || d == Status::unclean;
          }
        }
        if (blocked) {
          status[k] = Status::unclean;
          changed = true;
        } else if (ready && s.level.load(std::memory_order_acquire) == 0) {
          status[k] = Status::running;
          threads.emplace_back(run_job, k);
        }
      }
    }
    for (Status st : status) {
      running += st == Status::running ? 1 : 0;
    }
    if (running == 0) {
      break;
    }
    const std::size_t seen = s.ended;
    s.job_ended.wait(lock, [&] { return s.ended != seen; });
  }
  lock.unlock();
  for (auto& t : threads) {
    t.join();
  }
  report.interrupted = s.level.load(std::memory_order_acquire) > 0;
  return report;
}

void Pipeline::stop() noexcept {
  State& s = *state_;
  int seen = s.level.load(std::memory_order_acquire);
  while (seen < 1 && !s.level.compare_exchange_weak(seen, 1, std::memory_order_acq_rel)) {
  }
  for (auto& job : s.runs) {
    job->stop(1);
  }
}

void Pipeline::stop_running() noexcept {
  State& s = *state_;
  s.level.store(2, std::memory_order_release);
  for (auto& job : s.runs) {
    job->stop(2);
  }
}

}  // namespace troupe
