// Pipeline comparisons: `troupe run` as a user runs it, timed from exec to
// exit, each line the median of settings().rounds interleaved rounds:
//   pipeline.100k          troupe runs a job of testing.double over 100,000 JSONL items on a
//                          2-worker process pool, records written; vs GNU parallel -j2 running
//                          `sh -c 'echo {}'` per item of a 2,000-item sample into a file
//                          (xargs -P 2 on the same sample printed beside it as a note)
//   pipeline.100k_python   the same troupe job vs a Python script that reads the same JSONL and
//                          writes the same records through ProcessPoolExecutor.map(chunksize=1000)
//   pipeline.rss_2m        peak RSS of `troupe run` (wait4's ru_maxrss: troupe or its largest
//   pipeline.rss_20m       worker) over a generated `lines` input of 2,000,000 / 20,000,000 items
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "compare.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using troupe::bench::interleaved;

constexpr int kItems = 100'000;
constexpr int kShellSample = 2'000;

struct Exit {
  int code = -1;
  double seconds = 0;
  double max_rss_mib = 0;
};

// Runs `sh -c command` from exec to exit, stdout and stderr to /dev/null
// unless the command redirects them itself.
Exit timed(const std::string& command) {
  const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  const auto start = Clock::now();
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, "/bin/sh", &actions, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  Exit exit;
  if (rc != 0) {
    return exit;
  }
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  exit.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  exit.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  exit.max_rss_mib = static_cast<double>(usage.ru_maxrss) / 1024.0;
  return exit;
}

// A scratch folder with the inputs and configs, made once per comparison.
struct Workspace {
  fs::path dir;

  Workspace() {
    dir = fs::temp_directory_path() / ("troupe-pipeline-compare-" + std::to_string(getpid()));
    fs::create_directories(dir);
  }
  ~Workspace() {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  std::string path(const std::string& name) const { return (dir / name).string(); }

  // A one-job pipeline of testing.double on 2 process workers over `input`.
  std::string config(const std::string& name, const std::string& input_kind, const std::string& input,
                     const std::string& task) const {
    const std::string file = path(name + ".yaml");
    std::ofstream(file) << "version: 1\n"
                        << "plugins:\n  - path: " << TROUPE_PLUGIN_DIR << "/libtroupe_testing.so\n"
                        << "pools:\n  cpu: {kind: process, workers: 2}\n"
                        << "jobs:\n  - name: " << name << "\n    pool: cpu\n    task: " << task << "\n"
                        << "    inputs: {" << input_kind << ": " << input << "}\n"
                        << "    output: " << name << ".jsonl\n";
    return file;
  }
};

void write_integers(const std::string& path, std::int64_t n) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  for (std::int64_t i = 0; i < n; ++i) {
    std::fprintf(f, "%lld\n", static_cast<long long>(i));
  }
  std::fclose(f);
}

std::string troupe_run(const std::string& config) {
  return std::string(TROUPE_BIN_DIR) + "/troupe run " + config + " --overwrite --progress never";
}

double rate(int items, const Exit& exit, const std::string& what) {
  if (exit.code != 0) {
    std::fprintf(stderr, "troupe-compare: %s exited %d\n", what.c_str(), exit.code);
    return -1;
  }
  return static_cast<double>(items) / exit.seconds;
}

TROUPE_COMPARISON("pipeline.100k", [](troupe::bench::Reporter& r) {
  Workspace w;
  write_integers(w.path("items.jsonl"), kItems);
  write_integers(w.path("sample.txt"), kShellSample);
  const std::string config = w.config("double", "jsonl", "items.jsonl", "testing.double");
  if (timed("command -v parallel").code != 0) {
    r.note("pipeline.100k: GNU parallel is not installed (Debian's `parallel`; scripts/install-deps.sh installs it)");
    return;
  }
  const std::string sample = w.path("sample.txt");
  const auto s = interleaved({
      [&] { return rate(kItems, timed(troupe_run(config)), "troupe run"); },
      [&] {
        return rate(kShellSample,
                    timed("parallel -j2 \"sh -c 'echo {}'\" < " + sample + " > " + w.path("parallel.out")), "parallel");
      },
      [&] {
        return rate(kShellSample, timed("xargs -P 2 -I{} sh -c 'echo {}' < " + sample + " > " + w.path("xargs.out")),
                    "xargs");
      },
  });
  r.ratio("pipeline.100k", s[0], "GNU parallel -j2", s[1], "items/s");
  r.note("pipeline.100k: xargs -P 2 on the same sample: " + std::to_string(s[2].median()) + " items/s (troupe / " +
         "xargs " + std::to_string(s[0].median() / s[2].median()) + ")");
});

TROUPE_COMPARISON("pipeline.100k_python", [](troupe::bench::Reporter& r) {
  Workspace w;
  write_integers(w.path("items.jsonl"), kItems);
  const std::string config = w.config("double", "jsonl", "items.jsonl", "testing.double");
  const std::string python = "/usr/bin/python3 " + std::string(TROUPE_SOURCE_DIR) +
                             "/bench/peers/pipeline_peers.py ppe_pipeline " + w.path("items.jsonl") + " " +
                             w.path("python.jsonl") + " 2";
  const auto s = interleaved({
      [&] { return rate(kItems, timed(troupe_run(config)), "troupe run"); },
      [&] { return rate(kItems, timed(python), "the Python peer"); },
  });
  r.ratio("pipeline.100k_python", s[0], "ProcessPoolExecutor.map (chunksize=1000)", s[1], "items/s");
});

// Peak RSS over a `lines` input of n items (testing.echo: each line comes back).
double rss_over_lines(const Workspace& w, std::int64_t n) {
  const std::string input = "lines_" + std::to_string(n) + ".txt";
  if (!fs::exists(w.path(input))) {
    write_integers(w.path(input), n);
  }
  const std::string config = w.config("echo_" + std::to_string(n), "lines", input, "testing.echo");
  const Exit exit = timed(troupe_run(config));
  if (exit.code != 0) {
    std::fprintf(stderr, "troupe-compare: troupe run over %lld lines exited %d\n", static_cast<long long>(n),
                 exit.code);
    return -1;
  }
  return exit.max_rss_mib;
}

TROUPE_COMPARISON("pipeline.rss_2m", [](troupe::bench::Reporter& r) {
  Workspace w;
  r.figure("pipeline.rss_2m", interleaved({[&] {
             return rss_over_lines(w, 2'000'000);
           }})[0],
           "MiB");
});

TROUPE_COMPARISON("pipeline.rss_20m", [](troupe::bench::Reporter& r) {
  Workspace w;
  r.figure("pipeline.rss_20m", interleaved({[&] {
             return rss_over_lines(w, 20'000'000);
           }})[0],
           "MiB");
});

}  // namespace
