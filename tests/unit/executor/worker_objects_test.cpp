// Worker objects (PluginBuilder::worker_class) on both pools: one object per
// worker, built by the pool's initializer or by the first method call,
// kept for the worker's life and destroyed as it retires (shutdown, idle
// timeout, task limit, memory limit), on the thread that built it; failures
// reported as the pool's hooks are. The worker_objects fixture logs every
// construction and destruction (worker id, pid, thread) to a file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "support/paths.hpp"
#include "support/sync.hpp"
#include "troupe/errors.hpp"
#include "troupe/executor.hpp"
#include "troupe/process_pool.hpp"
#include "troupe/registry.hpp"
#include "troupe/thread_pool.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr std::chrono::seconds kPatience{20};

struct Spec {
  std::size_t max_workers = 1;
  std::optional<std::chrono::nanoseconds> idle_timeout = std::chrono::seconds(60);
  std::optional<std::size_t> max_tasks_per_worker = std::nullopt;
  std::optional<Call> initializer = std::nullopt;
};

// Never destroyed: a pool's workers may still use it while the test ends.
const Registry& objects_registry() {
  static Registry* registry = [] {
    auto* r = new Registry();
    r->load(fixture_path("worker_objects"));
    return r;
  }();
  return *registry;
}

struct ThreadKind {
  static constexpr const char* kName = "ThreadPool";
  static std::unique_ptr<Executor> make(const Spec& spec) {
    ThreadPoolOptions o;
    o.max_workers = spec.max_workers;
    o.idle_timeout = spec.idle_timeout;
    o.max_tasks_per_worker = spec.max_tasks_per_worker;
    if (spec.initializer) {
      o.initializer = *spec.initializer;
    }
    o.name = "objects";
    o.registry = &objects_registry();
    return std::make_unique<ThreadPool>(o);
  }
};

struct ProcessKind {
  static constexpr const char* kName = "ProcessPool";
  static ProcessPoolOptions options(const Spec& spec) {
    ProcessPoolOptions o;
    o.max_workers = spec.max_workers;
    o.idle_timeout = spec.idle_timeout;
    o.max_tasks_per_worker = spec.max_tasks_per_worker;
    o.initializer = spec.initializer;
    o.name = "objects";
    o.worker_executable = binary_path("troupe-worker");
    return o;
  }
  static std::unique_ptr<Executor> make(const Spec& spec) {
    return std::make_unique<ProcessPool>(std::vector<std::filesystem::path>{fixture_path("worker_objects")},
                                         options(spec));
  }
};

struct KindNames {
  template <class Kind>
  static std::string GetName(int) {
    return Kind::kName;
  }
};

// Where an object lived: worker id, process, thread.
using Home = std::tuple<std::int64_t, std::int64_t, std::int64_t>;

Home home_of(const Value& v) {
  return {v.at("worker").get<std::int64_t>(), v.at("pid").get<std::int64_t>(), v.at("thread").get<std::int64_t>()};
}

// The fixture's log, one file per test; set before any pool exists, so no
// worker reads the variable while it changes.
class ObjectLog {
 public:
  ObjectLog() {
    static std::atomic<int> serial{0};
    path_ = std::filesystem::temp_directory_path() /
            ("troupe-objects-" + std::to_string(::getpid()) + "-" + std::to_string(serial++) + ".log");
    std::filesystem::remove(path_);
    ::setenv("TROUPE_OBJECTS_LOG", path_.c_str(), 1);
  }
  ObjectLog(const ObjectLog&) = delete;
  ObjectLog& operator=(const ObjectLog&) = delete;
  ~ObjectLog() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }

  // Every line, or those of one event ("built", "destroyed") and class.
  std::vector<Value> events(const std::string& event = "", const std::string& class_name = "") const {
    std::vector<Value> out;
    std::ifstream in(path_);
    for (std::string line; std::getline(in, line);) {
      Value v = Value::parse(line);
      if ((event.empty() || v.at("event") == event) && (class_name.empty() || v.at("class") == class_name)) {
        out.push_back(std::move(v));
      }
    }
    return out;
  }

  std::multiset<Home> homes(const std::string& event, const std::string& class_name = "counter") const {
    std::multiset<Home> out;
    for (const auto& v : events(event, class_name)) {
      out.insert(home_of(v));
    }
    return out;
  }

 private:
  std::filesystem::path path_;
};

template <class Kind>
class WorkerObjects : public ::testing::Test {
 protected:
  std::unique_ptr<Executor> make(const Spec& spec = {}) { return Kind::make(spec); }

  ObjectLog log_;
};

using Kinds = ::testing::Types<ThreadKind, ProcessKind>;
TYPED_TEST_SUITE(WorkerObjects, Kinds, KindNames);

TYPED_TEST(WorkerObjects, BuiltAtTheFirstMethodCallKeptAndDestroyedAtShutdownOnItsThread) {
  auto pool = this->make();
  EXPECT_EQ(pool->call("worker_objects.ping").get(kPatience), true);
  EXPECT_TRUE(this->log_.events().empty()) << "a worker built an object no method asked for";
  EXPECT_EQ(pool->call("worker_objects.count").get(kPatience), 1);
  EXPECT_EQ(pool->call("worker_objects.count").get(kPatience), 2);
  const Value where = pool->call("worker_objects.where", 7).get(kPatience);
  EXPECT_EQ(where.at("calls"), 3);
  EXPECT_EQ(where.at("tag"), "lazy");  // the registered default
  EXPECT_EQ(where.at("task"), "worker_objects.where");
  EXPECT_EQ(where.at("echo"), 7);
  const auto built = this->log_.events("built");
  ASSERT_EQ(built.size(), 1U);
  EXPECT_EQ(home_of(built[0]), home_of(where));  // built on the worker that runs its methods
  pool->shutdown();
  const auto destroyed = this->log_.events("destroyed");
  ASSERT_EQ(destroyed.size(), 1U);
  EXPECT_EQ(home_of(destroyed[0]), home_of(built[0]));
}

TYPED_TEST(WorkerObjects, BuiltAtWorkerStartWhenThePoolInitializerNamesItWithItsArguments) {
  auto pool = this->make({.initializer = Call{"worker_objects.counter", {}, {{"tag", "eager"}}}});
  EXPECT_EQ(pool->call("worker_objects.ping").get(kPatience), true);
  const auto built = this->log_.events("built");
  ASSERT_EQ(built.size(), 1U);  // before any method call
  EXPECT_EQ(built[0].at("tag"), "eager");
  const Value where = pool->call("worker_objects.where").get(kPatience);
  EXPECT_EQ(where.at("tag"), "eager");
  EXPECT_EQ(where.at("calls"), 1);
  EXPECT_EQ(this->log_.events("built").size(), 1U);
  pool->shutdown();
  EXPECT_EQ(this->log_.homes("destroyed"), this->log_.homes("built"));
}

TYPED_TEST(WorkerObjects, OneObjectPerWorkerCountedAgainstWorkerIds) {
  auto pool = this->make({.max_workers = 3});
  std::vector<Future<Value>> calls;
  for (int i = 0; i < 60; ++i) {
    calls.push_back(pool->call("worker_objects.where", i));
  }
  std::map<Home, std::set<std::int64_t>> seen;  // per worker, the call counts its object returned
  for (auto& f : calls) {
    const Value v = f.get(kPatience);
    seen[home_of(v)].insert(v.at("calls").get<std::int64_t>());
  }
  pool->shutdown();
  std::multiset<Home> workers;
  std::size_t total = 0;
  for (const auto& [home, counts] : seen) {
    workers.insert(home);
    total += counts.size();
    // 1..n without gaps or repeats: one object served every call on its worker.
    EXPECT_EQ(*counts.begin(), 1);
    EXPECT_EQ(*counts.rbegin(), static_cast<std::int64_t>(counts.size()));
  }
  EXPECT_EQ(total, calls.size());
  EXPECT_EQ(this->log_.homes("built"), workers);
  EXPECT_EQ(this->log_.homes("destroyed"), workers);
}

TYPED_TEST(WorkerObjects, DestroyedWhenItsWorkerRetiresAtTheTaskLimit) {
  auto pool = this->make({.max_tasks_per_worker = 2});
  std::set<Home> workers;
  for (int i = 0; i < 6; ++i) {
    workers.insert(home_of(pool->call("worker_objects.where").get(kPatience)));
  }
  EXPECT_GE(workers.size(), 2U);
  // Every worker but perhaps the last retired with its object, before shutdown.
  EXPECT_TRUE(eventually([&] { return this->log_.homes("destroyed").size() + 1 >= workers.size(); }, kPatience));
  for (const Home& home : this->log_.homes("destroyed")) {
    EXPECT_TRUE(workers.contains(home));
  }
  pool->shutdown();
  EXPECT_EQ(this->log_.homes("destroyed"), this->log_.homes("built"));
  EXPECT_EQ(this->log_.homes("built").size(), workers.size());
}

TYPED_TEST(WorkerObjects, DestroyedWhenItsWorkerRetiresIdle) {
  auto pool = this->make({.idle_timeout = 0ms});
  const Home home = home_of(pool->call("worker_objects.where").get(kPatience));
  EXPECT_TRUE(eventually([&] { return this->log_.homes("destroyed").size() == 1; }, kPatience));
  EXPECT_EQ(this->log_.homes("destroyed"), std::multiset<Home>{home});
  pool->shutdown();
  EXPECT_EQ(this->log_.homes("built"), std::multiset<Home>{home});
}

TYPED_TEST(WorkerObjects, TwoClassesOnOneWorkerAreBuiltOnceEachAndDestroyedNewestFirst) {
  auto pool = this->make();
  EXPECT_EQ(pool->call("worker_objects.count").get(kPatience), 1);
  const auto worker = pool->call("worker_objects.second_worker").get(kPatience);
  EXPECT_EQ(pool->call("worker_objects.count").get(kPatience), 2);
  EXPECT_EQ(pool->call("worker_objects.second_worker").get(kPatience), worker);
  pool->shutdown();
  std::vector<std::string> order;
  for (const Value& v : this->log_.events()) {
    order.push_back(v.at("event").get<std::string>() + " " + v.at("class").get<std::string>());
    EXPECT_EQ(v.at("worker"), worker);
  }
  EXPECT_THAT(order, ElementsAre("built counter", "built second", "destroyed second", "destroyed counter"));
}

TYPED_TEST(WorkerObjects, ThrowingConstructorFailsTheMethodCallWithInitializerErrorAndThePoolLivesOn) {
  auto pool = this->make();
  try {
    pool->call("worker_objects.never").get(kPatience);
    ADD_FAILURE() << "the call did not throw";
  } catch (const InitializerError& e) {
    EXPECT_NE(nested_cause(e), nullptr);
    EXPECT_THAT(
        describe_exception(std::current_exception()),
        AllOf(HasSubstr("worker class 'worker_objects.fragile'"), HasSubstr("fragile constructor failed: by default")));
  }
  EXPECT_NO_THROW(pool->check());
  EXPECT_EQ(pool->call("worker_objects.count").get(kPatience), 1);
}

TYPED_TEST(WorkerObjects, ThrowingConstructorInThePoolInitializerBreaksThePool) {
  auto pool = this->make({.initializer = Call{"worker_objects.fragile", {"no GPU"}, {}}});
  try {
    pool->call("worker_objects.ping").get(kPatience);
    ADD_FAILURE() << "the call did not throw";
  } catch (const InitializerError& e) {
    EXPECT_NE(nested_cause(e), nullptr);
    EXPECT_THAT(describe_exception(std::current_exception()), HasSubstr("fragile constructor failed: no GPU"));
  }
  EXPECT_THROW(pool->check(), InitializerError);
}

TYPED_TEST(WorkerObjects, ClassWithoutDefaultsIsBuiltOnlyByThePoolInitializer) {
  auto lazy = this->make();
  try {
    lazy->call("worker_objects.path").get(kPatience);
    ADD_FAILURE() << "the call did not throw";
  } catch (const InitializerError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("worker class 'worker_objects.needs_path'"),
                                HasSubstr("constructor parameter 'path' (string) has no default")));
  }
  EXPECT_NO_THROW(lazy->check());
  auto eager = this->make({.initializer = Call{"worker_objects.needs_path", {"/data/model.bin"}, {}}});
  EXPECT_EQ(eager->call("worker_objects.path").get(kPatience), "/data/model.bin");
}

TYPED_TEST(WorkerObjects, ThrowingDestructorIsReportedAsAFinalizerError) {
  auto pool = this->make();
  EXPECT_EQ(pool->call("worker_objects.touch").get(kPatience), true);
  pool->shutdown();
  try {
    pool->check();
    ADD_FAILURE() << "check() did not throw";
  } catch (const FinalizerError& e) {
    EXPECT_NE(nested_cause(e), nullptr);
    EXPECT_THAT(
        describe_exception(std::current_exception()),
        AllOf(HasSubstr("worker class 'worker_objects.throws_on_destroy'"), HasSubstr("cannot close the connection")));
  }
}

// Only a process pool has a memory limit.
TEST(WorkerObjectsProcess, DestroyedWhenItsWorkerRetiresOverTheMemoryLimit) {
  ObjectLog log;
  auto options = ProcessKind::options({});
  options.max_memory_per_worker = 1;  // every worker is over it after its first task
  ProcessPool pool({fixture_path("worker_objects")}, options);
  const Home first = home_of(pool.call("worker_objects.where").get(kPatience));
  EXPECT_TRUE(eventually([&] { return log.homes("destroyed").contains(first); }, kPatience));
  const Home second = home_of(pool.call("worker_objects.where").get(kPatience));
  EXPECT_NE(std::get<1>(second), std::get<1>(first));  // another process
  pool.shutdown();
  EXPECT_EQ(log.homes("destroyed"), log.homes("built"));
  EXPECT_EQ(log.homes("built").size(), 2U);
}

}  // namespace
}  // namespace troupe::test
