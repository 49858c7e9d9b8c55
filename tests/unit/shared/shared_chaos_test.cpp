// Shared state under SIGKILL: process workers add to a counter and update a
// dict in a loop (testing.shared_chaos) while the test kills them, half of
// them while they hold a dict entry's lock. Each task journals the calls that
// returned in a file the test maps. Afterwards the counter equals the adds
// that returned, the dict the updates that returned, and no reader saw a
// torn value. tests/scripts/shared_chaos.sh runs this 20 times.
//
// A kill lands on a worker the test has stopped (SIGSTOP) and found between
// calls or inside an update's fn (holding the lock, nothing published yet);
// stopped anywhere else, an add or update may or may not have applied
// without having returned, so the test lets it run on and stops it again.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../plugins/testing/chaos_journal.hpp"
#include "support/paths.hpp"
#include "troupe/process_pool.hpp"
#include "troupe/shared.hpp"

namespace {

using namespace std::chrono_literals;
using troupe::Future;
using troupe::Value;
using troupe::testing::ChaosJournal;

constexpr int kWorkers = 4;
constexpr int kKills = 8;
constexpr std::int64_t kKeys = 4;

class MappedJournal {
 public:
  explicit MappedJournal(std::filesystem::path path) : path_(std::move(path)) {
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::ftruncate(fd, sizeof(ChaosJournal)), 0);
    void* at = ::mmap(nullptr, sizeof(ChaosJournal), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    journal_ = static_cast<ChaosJournal*>(at);
  }
  ~MappedJournal() {
    ::munmap(journal_, sizeof(ChaosJournal));
    std::filesystem::remove(path_);
  }
  MappedJournal(const MappedJournal&) = delete;
  MappedJournal& operator=(const MappedJournal&) = delete;
  ChaosJournal* operator->() const { return journal_; }
  const ChaosJournal& get() const { return *journal_; }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
  ChaosJournal* journal_ = nullptr;
};

struct ChaosRun {
  std::unique_ptr<MappedJournal> journal;
  Future<Value> future;
  bool killed = false;
};

// Whether /proc says `pid` is stopped, waiting up to a second.
bool wait_stopped(pid_t pid) {
  const auto deadline = std::chrono::steady_clock::now() + 1s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (close == std::string::npos || close + 2 >= line.size()) {
      return false;  // gone
    }
    if (line[close + 2] == 'T' || line[close + 2] == 't') {
      return true;
    }
    std::this_thread::sleep_for(20us);
  }
  return false;
}

// Stops `pid` at random moments until it is somewhere a kill leaves the
// journal exact (and, for `in_lock`, inside an update's fn), then kills it.
bool kill_at_a_safe_moment(pid_t pid, const ChaosJournal& j, bool in_lock, std::mt19937& rng) {
  std::uniform_int_distribution<int> pause_us(0, 400);
  for (int attempt = 0; attempt < 2000; ++attempt) {
    std::this_thread::sleep_for(std::chrono::microseconds(pause_us(rng)));
    if (::kill(pid, SIGSTOP) != 0 || !wait_stopped(pid)) {
      return false;
    }
    const auto phase = j.phase.load();
    const bool safe = in_lock ? phase == troupe::testing::chaos_in_fn
                              : phase == troupe::testing::chaos_idle || phase == troupe::testing::chaos_in_fn;
    if (safe) {
      ::kill(pid, SIGKILL);
      return true;
    }
    ::kill(pid, SIGCONT);
  }
  return false;
}

TEST(SharedChaos, CounterAndDictEqualTheCallsThatReturnedAfterWorkersAreKilled) {
  troupe::ProcessPoolOptions options;
  options.max_workers = kWorkers;
  options.worker_executable = troupe::test::binary_path("troupe-worker");
  options.crash_storm.max = 0;  // the kills are the point
  troupe::ProcessPool pool({troupe::test::plugin_path("testing")}, options);
  const auto adds = pool.counter("adds");
  const auto state = pool.dict("state", {.capacity = 1 << 16});

  const auto dir = std::filesystem::temp_directory_path() / ("troupe-chaos-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::vector<ChaosRun> runs;
  const auto start_run = [&] {
    ChaosRun run;
    run.journal = std::make_unique<MappedJournal>(dir / ("journal-" + std::to_string(runs.size())));
    run.future = pool.call("testing.shared_chaos", "adds", "state", run.journal->path(), kKeys);
    runs.push_back(std::move(run));
  };
  for (int i = 0; i < kWorkers; ++i) {
    start_run();
  }

  std::mt19937 rng(std::random_device{}());
  int kills = 0;
  int lock_kills = 0;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (kills < kKills && std::chrono::steady_clock::now() < deadline) {
    std::vector<std::size_t> candidates;
    for (std::size_t i = 0; i < runs.size(); ++i) {
      if (!runs[i].killed && (*runs[i].journal)->pid.load() != 0 && (*runs[i].journal)->adds.load() > 50) {
        candidates.push_back(i);
      }
    }
    if (candidates.empty()) {
      std::this_thread::sleep_for(1ms);
      continue;
    }
    ChaosRun& victim = runs[candidates[std::uniform_int_distribution<std::size_t>(0, candidates.size() - 1)(rng)]];
    const bool in_lock = kills % 2 == 0;
    const auto pid = static_cast<pid_t>((*victim.journal)->pid.load());
    if (kill_at_a_safe_moment(pid, victim.journal->get(), in_lock, rng)) {
      victim.killed = true;
      ++kills;
      lock_kills += in_lock ? 1 : 0;
      start_run();
    }
  }
  for (auto& run : runs) {
    (*run.journal)->stop.store(1);
  }

  std::int64_t returned_adds = 0;
  std::int64_t returned_updates = 0;
  std::int64_t torn = 0;
  for (auto& run : runs) {
    std::string error;
    try {
      run.future.get();
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (run.killed) {
      EXPECT_THAT(error, ::testing::HasSubstr("SIGKILL"));
    } else {
      EXPECT_EQ(error, "");
    }
    returned_adds += (*run.journal)->adds.load();
    returned_updates += (*run.journal)->updates.load();
    torn += (*run.journal)->torn.load();
  }
  EXPECT_EQ(kills, kKills);
  EXPECT_EQ(lock_kills, kKills / 2);
  EXPECT_EQ(adds.load(), returned_adds);
  EXPECT_EQ(torn, 0);
  std::int64_t applied_updates = 0;
  for (const auto& [key, value] : state.snapshot()) {
    const auto n = value.at("n").get<std::int64_t>();
    EXPECT_EQ(value.at("triple").get<std::int64_t>(), 3 * n) << key;
    EXPECT_EQ(value.at("fill").get<std::string>().size(), static_cast<std::size_t>(n % 61)) << key;
    applied_updates += n;
  }
  EXPECT_EQ(applied_updates, returned_updates);
  EXPECT_GT(returned_adds, 0);
  runs.clear();
  std::filesystem::remove_all(dir);
}

}  // namespace
