// troupe::Engine: named pools made on first use and reused, broken ones
// replaced, reconfigure under load, stats, destruction order.
#include "troupe/engine.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/paths.hpp"
#include "support/sync.hpp"
#include "troupe/errors.hpp"
#include "troupe/log.hpp"
#include "troupe/process_pool.hpp"
#include "troupe/thread_pool.hpp"

namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using troupe::Engine;
using troupe::EngineSpec;
using troupe::ProcessPoolOptions;
using troupe::ThreadPoolOptions;

// Captures the library's log lines for the test's duration.
class LogCapture {
 public:
  LogCapture() {
    troupe::set_log_sink(
        [this](troupe::LogLevel, std::string_view message) {
          std::lock_guard lock(mutex_);
          lines_.emplace_back(message);
        },
        troupe::LogLevel::warn);
  }
  ~LogCapture() { troupe::set_log_sink(nullptr); }
  std::string all() {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const auto& line : lines_) {
      out += line + "\n";
    }
    return out;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

std::filesystem::path write_dictionary() {
  const auto path =
      std::filesystem::temp_directory_path() / ("troupe_engine_dict_" + std::to_string(::getpid()) + ".txt");
  std::ofstream(path) << "alpha beta\ngamma\n";
  return path;
}

TEST(Engine, PoolIsMadeOnFirstUseAndReused) {
  Engine engine(EngineSpec{.plugins = {}, .pools = {{"io", ThreadPoolOptions{.max_workers = 2}}}});
  EXPECT_EQ(engine.stats().at("io").spawned, 0u);
  auto first = engine.pool("io");
  auto second = engine.pool("io");
  EXPECT_EQ(first, second);
  EXPECT_EQ(first->max_workers(), 2u);
  EXPECT_EQ(dynamic_cast<troupe::ThreadPool&>(*first).options().name, "io");
}

TEST(Engine, UnknownPoolNameSuggestsTheClosest) {
  Engine engine(EngineSpec{.plugins = {}, .pools = {{"cpu", ProcessPoolOptions{}}, {"io", ThreadPoolOptions{}}}});
  try {
    engine.pool("cpus");
    FAIL() << "no UsageError";
  } catch (const troupe::UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no pool named 'cpus'; did you mean 'cpu'?"));
    EXPECT_THAT(e.what(), HasSubstr("(pools: cpu, io)"));
  }
}

TEST(Engine, EverySpecProblemIsReportedAtConstruction) {
  EngineSpec spec{.plugins = {},
                  .pools = {{"a", ThreadPoolOptions{.queue_limit = 0}},
                            {"a", ThreadPoolOptions{}},
                            {"b", ProcessPoolOptions{.task_timeout = 0s}}}};
  try {
    Engine engine(std::move(spec));
    FAIL() << "no UsageError";
  } catch (const troupe::UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("3 problems"));
    EXPECT_THAT(e.what(), HasSubstr("pool 'a': queue_limit = 0"));
    EXPECT_THAT(e.what(), HasSubstr("two pools are named 'a'"));
    EXPECT_THAT(e.what(), HasSubstr("pool 'b': task_timeout"));
  }
}

TEST(Engine, BrokenPoolIsReplacedOnNextUseWithALogLine) {
  LogCapture log;
  ThreadPoolOptions options{.max_workers = 1};
  options.initializer = [](troupe::Worker&) {
    throw std::runtime_error("no dictionary today");
  };
  Engine engine(EngineSpec{.plugins = {}, .pools = {{"io", options}}});
  auto broken = engine.pool("io");
  auto& threads = dynamic_cast<troupe::ThreadPool&>(*broken);
  EXPECT_THROW(threads.submit([] { return 1; }).get(5s), troupe::BrokenPoolError);
  auto replacement = engine.pool("io");
  EXPECT_NE(replacement, broken);
  EXPECT_NO_THROW(replacement->check());
  EXPECT_THAT(log.all(), HasSubstr("pool 'io' is replaced by a new one: it broke"));
  EXPECT_THAT(log.all(), HasSubstr("no dictionary today"));
  EXPECT_THROW(broken->check(), troupe::BrokenPoolError);  // the old handle stays valid
}

TEST(Engine, ShutDownPoolIsReplacedOnNextUse) {
  Engine engine(EngineSpec{.plugins = {}, .pools = {{"io", ThreadPoolOptions{.max_workers = 1}}}});
  auto first = engine.pool("io");
  first->shutdown();
  EXPECT_NE(engine.pool("io"), first);
}

TEST(Engine, ReconfigureRoutesNewWorkAndDrainsTheOldPool) {
  Engine engine(EngineSpec{.plugins = {}, .pools = {{"io", ThreadPoolOptions{.max_workers = 1}}}});
  auto old = engine.pool("io");
  auto& old_threads = dynamic_cast<troupe::ThreadPool&>(*old);
  troupe::test::Event started;
  troupe::test::Event release;
  auto running = old_threads.submit([&] {
    started.set();
    release.wait();
    return 1;
  });
  std::vector<troupe::Future<int>> queued;
  for (int i = 0; i < 3; ++i) {
    queued.push_back(old_threads.submit([i] { return 10 + i; }));
  }
  started.wait();
  engine.reconfigure("io", ThreadPoolOptions{.max_workers = 3}, {.wait = false});
  auto fresh = engine.pool("io");
  EXPECT_NE(fresh, old);
  EXPECT_EQ(fresh->max_workers(), 3u);
  EXPECT_EQ(dynamic_cast<troupe::ThreadPool&>(*fresh).submit([] { return 7; }).get(5s), 7);
  release.set();
  EXPECT_EQ(running.get(5s), 1);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(queued[static_cast<std::size_t>(i)].get(5s), 10 + i);  // drained, not cancelled
  }
  EXPECT_THROW(old->check(), troupe::UsageError);  // shut down, and still a valid handle
}

TEST(Engine, ReconfigureCanCancelTheOldPoolsQueuedWork) {
  Engine engine(EngineSpec{.plugins = {}, .pools = {{"io", ThreadPoolOptions{.max_workers = 1}}}});
  auto old = engine.pool("io");
  auto& old_threads = dynamic_cast<troupe::ThreadPool&>(*old);
  troupe::test::Event started;
  troupe::test::Event release;
  auto running = old_threads.submit([&] {
    started.set();
    release.wait();
    return 1;
  });
  auto queued = old_threads.submit([] { return 2; });
  started.wait();
  engine.reconfigure("io", ThreadPoolOptions{.max_workers = 1}, {.wait = false, .cancel_pending = true});
  release.set();
  EXPECT_EQ(running.get(5s), 1);
  EXPECT_THROW(queued.get(5s), troupe::CancelledError);
}

TEST(Engine, ReconfigureWithInvalidOptionsChangesNothing) {
  Engine engine(EngineSpec{.plugins = {}, .pools = {{"io", ThreadPoolOptions{.max_workers = 1}}}});
  auto before = engine.pool("io");
  EXPECT_THROW(engine.reconfigure("io", ThreadPoolOptions{.queue_limit = 0}), troupe::UsageError);
  EXPECT_THROW(engine.reconfigure("nope", ThreadPoolOptions{}), troupe::UsageError);
  EXPECT_EQ(engine.pool("io"), before);
}

TEST(Engine, StatsCoverEveryPoolIncludingUnmadeOnes) {
  Engine engine(
      EngineSpec{.plugins = {}, .pools = {{"a", ThreadPoolOptions{.max_workers = 1}}, {"b", ThreadPoolOptions{}}}});
  dynamic_cast<troupe::ThreadPool&>(*engine.pool("a")).submit([] { return 1; }).get(5s);
  const auto stats = engine.stats();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats.at("a").completed, 1u);
  EXPECT_EQ(stats.at("b").submitted, 0u);
}

TEST(Engine, DestructionShutsPoolsDownInReverseOrderOfCreation) {
  std::mutex mutex;
  std::vector<std::string> finalized;
  auto finalizer_for = [&](std::string name) {
    return troupe::WorkerHook([&, name](troupe::Worker&) {
      std::lock_guard lock(mutex);
      finalized.push_back(name);
    });
  };
  {
    Engine engine(
        EngineSpec{.plugins = {},
                   .pools = {{"first", ThreadPoolOptions{.max_workers = 1, .finalizer = finalizer_for("first")}},
                             {"second", ThreadPoolOptions{.max_workers = 1, .finalizer = finalizer_for("second")}}}});
    // Made in the other order than written: creation order is what counts.
    engine.pool("second")->spawn_workers(1);
    engine.pool("first")->spawn_workers(1);
    ASSERT_TRUE(troupe::test::eventually([&] { return engine.stats().at("first").live_workers == 1; }));
  }
  EXPECT_EQ(finalized, (std::vector<std::string>{"first", "second"}));
}

TEST(Engine, ThreadPoolRunsPluginInitializerWorkerState) {
  const auto dict = write_dictionary();
  ThreadPoolOptions options{.max_workers = 1};
  options.initializer = troupe::Call{"text.open_dict", {dict.string()}, {}};
  Engine engine(EngineSpec{.plugins = {{.path = troupe::test::plugin_path("text")}}, .pools = {{"io", options}}});
  const troupe::Value result = engine.pool("io")->call("text.known_words", "alpha omega gamma").get(5s);
  EXPECT_EQ(result, troupe::Value::parse(R"({"known": 2, "unknown": 1})"));
  EXPECT_EQ(engine.registry().plugins().size(), 1u);
  std::filesystem::remove(dict);
}

TEST(Engine, ProcessPoolRunsPluginInitializerAndHostLoadsNoPlugin) {
  const auto dict = write_dictionary();
  ProcessPoolOptions options{.max_workers = 1};
  options.initializer = troupe::Call{"text.open_dict", {dict.string()}, {}};
  Engine engine(EngineSpec{.plugins = {{.path = troupe::test::plugin_path("text")}}, .pools = {{"cpu", options}}});
  const troupe::Value result = engine.pool("cpu")->call("text.known_words", "beta delta").get(10s);
  EXPECT_EQ(result, troupe::Value::parse(R"({"known": 1, "unknown": 1})"));
  EXPECT_TRUE(engine.registry().plugins().empty());
  std::filesystem::remove(dict);
}

TEST(Engine, ThreadPoolWithAMissingPluginFailsWithPluginError) {
  Engine engine(EngineSpec{.plugins = {{.path = "/nonexistent/libx.so"}}, .pools = {{"io", ThreadPoolOptions{}}}});
  EXPECT_THROW(engine.pool("io"), troupe::PluginError);
}

TEST(Engine, ConcurrentFirstUseMakesOnePool) {
  Engine engine(EngineSpec{.plugins = {}, .pools = {{"io", ThreadPoolOptions{.max_workers = 1}}}});
  std::vector<std::shared_ptr<troupe::Executor>> seen(8);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&, i] { seen[i] = engine.pool("io"); });
  }
  for (auto& t : threads) {
    t.join();
  }
  for (const auto& pool : seen) {
    EXPECT_EQ(pool, seen.front());
  }
}

// Submitters keep taking engine.pool("io") while it is reconfigured again
// and again: every submission is either refused at once (it reached a pool
// already shut down) or completes with its own result; none is lost.
TEST(Engine, ReconfigureUnderLoadLosesNoAcceptedWork) {
  Engine engine(EngineSpec{.plugins = {}, .pools = {{"io", ThreadPoolOptions{.max_workers = 2}}}});
  constexpr int kPerSubmitter = 400;
  std::atomic<int> submitted{0};
  std::vector<std::vector<std::pair<int, troupe::Future<int>>>> accepted(4);
  std::vector<std::thread> submitters;
  for (std::size_t t = 0; t < accepted.size(); ++t) {
    submitters.emplace_back([&, t] {
      for (int i = 0; i < kPerSubmitter; ++i) {
        auto pool = engine.pool("io");
        try {
          accepted[t].emplace_back(i, dynamic_cast<troupe::ThreadPool&>(*pool).submit([i] { return i; }));
        } catch (const troupe::UsageError&) {
          // raced with the reconfigure that shut this pool down
        }
        submitted.fetch_add(1);
      }
    });
  }
  for (std::size_t workers = 1; workers <= 4; ++workers) {
    while (submitted.load() < static_cast<int>(workers) * 200) {
      std::this_thread::yield();
    }
    engine.reconfigure("io", ThreadPoolOptions{.max_workers = workers}, {.wait = true});
  }
  for (auto& t : submitters) {
    t.join();
  }
  std::size_t completed = 0;
  for (auto& futures : accepted) {
    for (auto& [i, future] : futures) {
      EXPECT_EQ(future.get(5s), i);
      ++completed;
    }
  }
  EXPECT_GT(completed, 0u);
  EXPECT_EQ(engine.pool("io")->max_workers(), 4u);
}

}  // namespace
