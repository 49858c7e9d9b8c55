// PluginBuilder::worker_class<T>(): what it registers (initializer,
// finalizer, methods in the class's group), the refused registrations, and
// the object's life in one Worker without a pool (built lazily or by the
// initializer, kept, destroyed by the finalizer or destroy_objects()).
#include <troupe/sdk.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using troupe::Args;
using troupe::Kwargs;
using troupe::Value;

std::vector<std::string>& events() {
  static std::vector<std::string> log;
  return log;
}

class Model {
 public:
  Model(std::string path, int scale) : path_(std::move(path)), scale_(scale) { events().push_back("built " + path_); }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  ~Model() { events().push_back("destroyed " + path_); }

  int predict(int x) {
    ++calls_;
    return x * scale_;
  }
  int calls() const { return calls_; }
  std::string describe(troupe::TaskContext& context, const std::string& prefix) const {
    return prefix + std::string(context.task_name()) + "@" + std::to_string(context.worker().id()) + ":" + path_;
  }

 private:
  std::string path_;
  int scale_;
  int calls_ = 0;
};

class Tokenizer {
 public:
  explicit Tokenizer(troupe::Worker& worker) : worker_id_(worker.id()) { events().push_back("built tokenizer"); }
  ~Tokenizer() { events().push_back("destroyed tokenizer"); }
  std::size_t worker_id() const noexcept { return worker_id_; }

 private:
  std::size_t worker_id_;
};

class Leaky {
 public:
  explicit Leaky(const std::string& name) : name_(name) {}
  Leaky(const Leaky&) = delete;
  Leaky& operator=(const Leaky&) = delete;
  ~Leaky() noexcept(false) { throw std::runtime_error("cannot close " + name_); }
  bool ok() const { return true; }

 private:
  std::string name_;
};

class Broken {
 public:
  Broken() {
    events().push_back("tried");
    throw std::runtime_error("no GPU");
  }
  int run() const { return 1; }
};

class WorkerClassTest : public ::testing::Test {
 protected:
  WorkerClassTest() {
    descriptor_.name = "demo";
    events().clear();
  }

  template <typename Info>
  static const Info& find(const std::vector<Info>& infos, const std::string& name) {
    for (const auto& info : infos) {
      if (info.name == name) {
        return info;
      }
    }
    throw std::logic_error("nothing named " + name);
  }

  void register_model() {
    plugin_
        .worker_class<Model, std::string, int>("model", "A model per worker", troupe::arg("path") = "model.bin",
                                               troupe::arg("scale") = 2)
        .method("predict", &Model::predict, "Scale x", troupe::arg("x"))
        .method("calls", &Model::calls)
        .method("describe", &Model::describe, troupe::arg("prefix"));
  }

  Value call(troupe::Worker& worker, const std::string& task, Args args = {}) {
    const auto& info = find(descriptor_.tasks, task);
    troupe::TaskContext context(info.signature.qualified_name, worker);
    return info.invoke(context, args, Kwargs{});
  }

  troupe::PluginDescriptor descriptor_;
  troupe::PluginBuilder plugin_{descriptor_};
};

TEST_F(WorkerClassTest, RegistersAnInitializerAFinalizerAndMethodsInTheClassGroup) {
  register_model();
  const auto& init = find(descriptor_.initializers, "model");
  EXPECT_EQ(init.group, "model");
  EXPECT_EQ(init.doc, "A model per worker");
  EXPECT_EQ(init.signature.to_string(), "demo.model(path: string = \"model.bin\", scale: int = 2)");
  const auto& fini = find(descriptor_.finalizers, "model");
  EXPECT_EQ(fini.group, "model");
  EXPECT_TRUE(fini.signature.params.empty());
  const auto& predict = find(descriptor_.tasks, "predict");
  EXPECT_EQ(predict.group, "model");
  EXPECT_EQ(predict.doc, "Scale x");
  EXPECT_EQ(predict.signature.to_string(), "demo.predict(x: int) -> int");
  // TaskContext& is not a parameter; the reference result is returned by value.
  EXPECT_EQ(find(descriptor_.tasks, "describe").signature.to_string(), "demo.describe(prefix: string) -> string");
}

TEST_F(WorkerClassTest, FirstMethodCallBuildsTheObjectWithDefaultsAndLaterCallsReuseIt) {
  register_model();
  troupe::Worker worker(3);
  EXPECT_TRUE(events().empty());
  EXPECT_EQ(call(worker, "predict", {Value(5)}), 10);
  EXPECT_EQ(call(worker, "predict", {Value(6)}), 12);
  EXPECT_EQ(call(worker, "calls"), 2);
  EXPECT_EQ(call(worker, "describe", {Value(">")}), ">demo.describe@3:model.bin");
  EXPECT_THAT(events(), ElementsAre("built model.bin"));
  worker.destroy_objects();
  EXPECT_THAT(events(), ElementsAre("built model.bin", "destroyed model.bin"));
}

TEST_F(WorkerClassTest, InitializerBuildsWithItsArgumentsAndFinalizerDestroys) {
  register_model();
  troupe::Worker worker(0);
  find(descriptor_.initializers, "model").invoke(worker, Args{Value("big.bin")}, Kwargs{{"scale", Value(7)}});
  EXPECT_EQ(call(worker, "predict", {Value(1)}), 7);
  EXPECT_THAT(events(), ElementsAre("built big.bin"));
  find(descriptor_.finalizers, "model").invoke(worker, Args{}, Kwargs{});
  EXPECT_THAT(events(), ElementsAre("built big.bin", "destroyed big.bin"));
  // Built again, lazily, after the finalizer.
  EXPECT_EQ(call(worker, "predict", {Value(1)}), 2);
  EXPECT_THAT(events(), ElementsAre("built big.bin", "destroyed big.bin", "built model.bin"));
}

TEST_F(WorkerClassTest, EachWorkerHasItsOwnObject) {
  register_model();
  troupe::Worker a(0);
  troupe::Worker b(1);
  call(a, "predict", {Value(1)});
  call(a, "predict", {Value(1)});
  call(b, "predict", {Value(1)});
  EXPECT_EQ(call(a, "calls"), 2);
  EXPECT_EQ(call(b, "calls"), 1);
}

TEST_F(WorkerClassTest, TwoClassesAreDestroyedNewestFirst) {
  register_model();
  plugin_.worker_class<Tokenizer, troupe::Worker&>("tokenizer").method("tokenizer_worker", &Tokenizer::worker_id);
  {
    troupe::Worker worker(4);
    call(worker, "predict", {Value(1)});
    EXPECT_EQ(call(worker, "tokenizer_worker"), 4);  // the constructor got the Worker
  }                                                  // ~Worker destroys what the pool did not
  EXPECT_THAT(events(),
              ElementsAre("built model.bin", "built tokenizer", "destroyed tokenizer", "destroyed model.bin"));
}

TEST_F(WorkerClassTest, ThrowingDestructorIsReportedNamingTheClassAfterTheOthersAreDestroyed) {
  register_model();
  plugin_.worker_class<Leaky, const std::string&>("leaky", troupe::arg("name") = "db").method("ok", &Leaky::ok);
  troupe::Worker worker(2);
  call(worker, "predict", {Value(1)});
  call(worker, "ok");
  try {
    worker.destroy_objects();
    ADD_FAILURE() << "destroy_objects() did not throw";
  } catch (const troupe::Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("worker class 'demo.leaky'"), HasSubstr("destructor threw on worker 2")));
    ASSERT_NE(dynamic_cast<const std::nested_exception*>(&e), nullptr);
    try {
      dynamic_cast<const std::nested_exception&>(e).rethrow_nested();
    } catch (const std::runtime_error& cause) {
      EXPECT_STREQ(cause.what(), "cannot close db");
    }
  }
  EXPECT_THAT(events(), ElementsAre("built model.bin", "destroyed model.bin"));
}

TEST_F(WorkerClassTest, MethodCallWithoutDefaultsFailsWithInitializerErrorNamingTheClass) {
  plugin_.worker_class<Model, std::string, int>("model", troupe::arg("path"), troupe::arg("scale") = 1)
      .method("predict", &Model::predict, troupe::arg("x"));
  troupe::Worker worker(0);
  try {
    call(worker, "predict", {Value(1)});
    ADD_FAILURE() << "the call did not throw";
  } catch (const troupe::InitializerError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("worker class 'demo.model' cannot be built on worker 0"),
                                HasSubstr("constructor parameter 'path' (string) has no default"),
                                HasSubstr("as the pool's initializer")));
  }
  EXPECT_TRUE(events().empty());
  find(descriptor_.initializers, "model").invoke(worker, Args{Value("given.bin")}, Kwargs{});
  EXPECT_EQ(call(worker, "predict", {Value(3)}), 3);
}

TEST_F(WorkerClassTest, ThrowingConstructorInAMethodCallIsAnInitializerErrorWithTheCauseNested) {
  plugin_.worker_class<Broken>("broken").method("run", &Broken::run);
  troupe::Worker worker(1);
  try {
    call(worker, "run");
    ADD_FAILURE() << "the call did not throw";
  } catch (const troupe::InitializerError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("worker class 'demo.broken'"), HasSubstr("its constructor threw")));
    try {
      std::rethrow_if_nested(e);
      ADD_FAILURE() << "no nested cause";
    } catch (const std::runtime_error& cause) {
      EXPECT_STREQ(cause.what(), "no GPU");
    }
  }
  // Nothing was kept: the next call tries again.
  EXPECT_THROW(call(worker, "run"), troupe::InitializerError);
  EXPECT_THAT(events(), ElementsAre("tried", "tried"));
}

TEST_F(WorkerClassTest, BadClassNamesAreRefusedAndLeaveNothingRegistered) {
  EXPECT_THROW(plugin_.worker_class<Broken>("my.model"), troupe::PluginError);
  EXPECT_THROW(plugin_.worker_class<Broken>(""), troupe::PluginError);
  plugin_.initializer("setup", [] {});
  try {
    plugin_.worker_class<Broken>("setup");
    ADD_FAILURE() << "a class named like an initializer was accepted";
  } catch (const troupe::PluginError& e) {
    EXPECT_THAT(e.what(), HasSubstr("duplicate worker class name 'demo.setup'"));
  }
  plugin_.finalizer("teardown", [] {});
  EXPECT_THROW(plugin_.worker_class<Broken>("teardown"), troupe::PluginError);
  EXPECT_EQ(descriptor_.initializers.size(), 1U);
  EXPECT_EQ(descriptor_.finalizers.size(), 1U);
}

TEST_F(WorkerClassTest, ArgumentNamesMustMatchTheConstructorParameterTypes) {
  try {
    plugin_.worker_class<Tokenizer, troupe::Worker&>("tokenizer", troupe::arg("path") = "x");
    ADD_FAILURE() << "accepted";
  } catch (const troupe::PluginError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("worker class 'demo.tokenizer': 1 troupe::arg() names given for 0 "
                                          "constructor parameters"),
                                HasSubstr("worker_class<T, std::string, int>")));
  }
  EXPECT_TRUE(descriptor_.initializers.empty());
}

TEST_F(WorkerClassTest, MethodNamesFollowTheTaskRules) {
  register_model();
  auto model = plugin_.worker_class<Tokenizer, troupe::Worker&>("tokenizer");
  EXPECT_THROW(model.method("tokenizer.worker", &Tokenizer::worker_id), troupe::PluginError);
  try {
    model.method("predict", &Tokenizer::worker_id);
    ADD_FAILURE() << "a method named like a task was accepted";
  } catch (const troupe::PluginError& e) {
    EXPECT_THAT(e.what(), HasSubstr("duplicate task name 'demo.predict'"));
  }
  // A method may share its class's name: tasks and hooks are apart.
  model.method("tokenizer", &Tokenizer::worker_id);
  EXPECT_EQ(find(descriptor_.tasks, "tokenizer").group, "tokenizer");
}

}  // namespace
