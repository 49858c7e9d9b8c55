// The SDK's binding of dynamic arguments to typed C++ parameters: arity,
// strict types, keywords, defaults, context parameters and error texts.
#include <troupe/sdk.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using troupe::Args;
using troupe::Kwargs;
using troupe::Value;

struct Doc {
  std::string id;
  std::string text;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Doc, id, text)

class AdapterTest : public ::testing::Test {
 protected:
  AdapterTest() { descriptor_.name = "demo"; }

  const troupe::TaskInfo& task(const std::string& name) {
    for (const auto& t : descriptor_.tasks) {
      if (t.name == name) {
        return t;
      }
    }
    throw std::logic_error("no task " + name);
  }

  Value call(const std::string& name, Args args, Kwargs kwargs = {}) {
    const std::string qualified = "demo." + name;  // the context views it
    troupe::TaskContext ctx(qualified, worker_, &cancel_);
    return task(name).invoke(ctx, args, kwargs);
  }

  std::string error_of(const std::string& name, Args args, Kwargs kwargs = {}) {
    try {
      call(name, std::move(args), std::move(kwargs));
    } catch (const troupe::ArgumentError& e) {
      return e.what();
    }
    return "(no ArgumentError)";
  }

  troupe::PluginDescriptor descriptor_;
  troupe::PluginBuilder plugin_{descriptor_};
  troupe::Worker worker_{7};
  std::atomic<bool> cancel_{false};
};

TEST_F(AdapterTest, PositionalArgumentsBindInOrder) {
  plugin_.task("sub", [](int a, int b) { return a - b; });
  EXPECT_EQ(call("sub", {10, 3}), 7);
}

TEST_F(AdapterTest, UnnamedParametersAreCalledArgN) {
  plugin_.task("sub", [](int a, int b) { return a - b; });
  EXPECT_EQ(task("sub").signature.to_string(), "demo.sub(arg0: int, arg1: int) -> int");
}

TEST_F(AdapterTest, NamedParametersAcceptKeywordsAndDefaults) {
  plugin_.task(
      "resize", [](const std::string& path, int width) { return path + ":" + std::to_string(width); },
      "Resize an image", troupe::arg("path"), troupe::arg("width") = 640);
  EXPECT_EQ(call("resize", {"a.png"}), "a.png:640");
  EXPECT_EQ(call("resize", {"a.png"}, {{"width", 100}}), "a.png:100");
  EXPECT_EQ(call("resize", {}, {{"path", "b.png"}, {"width", 1}}), "b.png:1");
  EXPECT_EQ(task("resize").doc, "Resize an image");
  EXPECT_EQ(task("resize").signature.to_string(), "demo.resize(path: string, width: int = 640) -> string");
}

TEST_F(AdapterTest, TooManyArgumentsNamesTheTaskAndArity) {
  plugin_.task(
      "sub", [](int a, int b) { return a - b; }, troupe::arg("a"), troupe::arg("b"));
  EXPECT_EQ(error_of("sub", {1, 2, 3}), "task 'demo.sub' takes 2 arguments (a, b) but 3 were given");
}

TEST_F(AdapterTest, MissingArgumentNamesTheParameter) {
  plugin_.task(
      "sub", [](int a, int b) { return a - b; }, troupe::arg("a"), troupe::arg("b"));
  EXPECT_EQ(error_of("sub", {1}), "task 'demo.sub': missing argument 'b' (position 2, int)");
}

TEST_F(AdapterTest, WrongTypeNamesParameterExpectedAndGiven) {
  plugin_.task(
      "sub", [](int a, int b) { return a - b; }, troupe::arg("a"), troupe::arg("b"));
  EXPECT_EQ(error_of("sub", {1, "x"}), "task 'demo.sub': parameter 'b' (position 2) expects int, got string \"x\"");
}

TEST_F(AdapterTest, IntegersAreRangeChecked) {
  plugin_.task(
      "narrow", [](std::int8_t v) { return v; }, troupe::arg("v"));
  plugin_.task(
      "unsigned", [](unsigned v) { return v; }, troupe::arg("v"));
  EXPECT_THAT(error_of("narrow", {300}), HasSubstr("out of range"));
  EXPECT_THAT(error_of("unsigned", {-1}), HasSubstr("must not be negative"));
  EXPECT_EQ(call("narrow", {-5}), -5);
}

TEST_F(AdapterTest, IntegralFloatsAreAcceptedForIntegers) {
  plugin_.task("id", [](int v) { return v; });
  EXPECT_EQ(call("id", {3.0}), 3);
  EXPECT_THAT(error_of("id", {3.5}), HasSubstr("not an integer"));
}

TEST_F(AdapterTest, BoolsAndStringsAreStrict) {
  plugin_.task("flag", [](bool b) { return !b; });
  plugin_.task("text", [](std::string s) { return s.size(); });
  EXPECT_THAT(error_of("flag", {1}), HasSubstr("expects bool, got int 1"));
  EXPECT_THAT(error_of("text", {5}), HasSubstr("expects string, got int 5"));
  EXPECT_EQ(call("flag", {false}), true);
}

TEST_F(AdapterTest, FloatsAcceptAnyNumber) {
  plugin_.task("half", [](double x) { return x / 2; });
  EXPECT_EQ(call("half", {3}), 1.5);
}

TEST_F(AdapterTest, SinglePrecisionFloatsAreRangeChecked) {
  plugin_.task(
      "half", [](float x) { return x / 2; }, troupe::arg("x"));
  EXPECT_THAT(error_of("half", {1e300}), AllOf(HasSubstr("parameter 'x'"), HasSubstr("out of range")));
  EXPECT_THAT(error_of("half", {-1e39}), HasSubstr("out of range"));
  EXPECT_EQ(call("half", {3e38}), static_cast<double>(3e38f / 2));
  EXPECT_EQ(call("half", {1e-300}), 0.0);  // underflow rounds to zero, as C++ does
}

TEST_F(AdapterTest, UserStructsConvertFromJsonObjects) {
  plugin_.task(
      "words", [](const Doc& d) { return d.id + ":" + d.text; }, troupe::arg("doc"));
  EXPECT_EQ(call("words", {Value{{"id", "a"}, {"text", "hi"}}}), "a:hi");
  EXPECT_THAT(error_of("words", {Value{{"id", "a"}}}),
              HasSubstr("task 'demo.words': parameter 'doc' (position 1) expects Doc, got object"));
}

TEST_F(AdapterTest, ContainerParametersConvertElementwise) {
  plugin_.task("sum", [](const std::vector<int>& xs) {
    int total = 0;
    for (int x : xs) total += x;
    return total;
  });
  EXPECT_EQ(call("sum", {Value::array({1, 2, 3})}), 6);
  EXPECT_THAT(error_of("sum", {Value::array({1, "two"})}), HasSubstr("expects list[int]"));
}

TEST_F(AdapterTest, NestedElementsAreConvertedStrictly) {
  plugin_.task(
      "ints", [](const std::vector<int>& xs) { return xs.size(); }, troupe::arg("xs"));
  plugin_.task(
      "counts", [](const std::map<std::string, unsigned>& m) { return m.size(); }, troupe::arg("m"));
  plugin_.task(
      "maybe", [](const std::optional<int>& v) { return v.has_value(); }, troupe::arg("v"));
  plugin_.task(
      "pair", [](const std::pair<int, std::string>& p) { return p.second; }, troupe::arg("p"));
  EXPECT_THAT(error_of("ints", {Value::array({1, 2.5})}),
              HasSubstr("expects list[int], got list [1,2.5] (at [1]: expected int, got float 2.5, not an integer"));
  EXPECT_THAT(error_of("ints", {Value::array({true})}), HasSubstr("at [0]: expected int, got bool true"));
  EXPECT_THAT(error_of("ints", {Value::array({1e20})}), HasSubstr("at [0]: expected int, got float"));
  EXPECT_THAT(error_of("counts", {Value{{"a", -1}}}),
              HasSubstr("at [\"a\"]: expected uint, got int -1, must not be negative"));
  EXPECT_THAT(error_of("maybe", {true}), HasSubstr("expects int?, got bool true"));
  EXPECT_THAT(error_of("pair", {Value::array({1, "a", 3})}), HasSubstr("needs a list of exactly 2 elements"));
  EXPECT_EQ(call("pair", {Value::array({1, "a"})}), "a");
}

TEST_F(AdapterTest, IntegerBoundariesAreExact) {
  plugin_.task(
      "i64", [](std::int64_t v) { return v; }, troupe::arg("v"));
  plugin_.task(
      "u64", [](std::uint64_t v) { return v; }, troupe::arg("v"));
  EXPECT_THAT(error_of("i64", {9223372036854775808.0}), HasSubstr("not an integer in range"));
  EXPECT_THAT(error_of("u64", {18446744073709551616.0}), HasSubstr("not an integer in range"));
  EXPECT_THAT(error_of("i64", {18446744073709551615ULL}), HasSubstr("out of range"));
  EXPECT_EQ(call("u64", {18446744073709551615ULL}), 18446744073709551615ULL);
  EXPECT_EQ(call("i64", {-9223372036854775807LL - 1}), -9223372036854775807LL - 1);
}

TEST_F(AdapterTest, DefaultsMustFitTheirParameters) {
  EXPECT_THROW(plugin_.task(
                   "f", [](int w) { return w; }, troupe::arg("w") = "wide"),
               troupe::PluginError);
}

TEST_F(AdapterTest, OptionalParameterAcceptsNull) {
  plugin_.task("maybe", [](std::optional<int> v) { return v ? *v : -1; });
  EXPECT_EQ(call("maybe", {nullptr}), -1);
  EXPECT_EQ(call("maybe", {4}), 4);
}

TEST_F(AdapterTest, ValueParameterTakesAnything) {
  plugin_.task("echo", [](const Value& v) { return v; });
  EXPECT_EQ(call("echo", {Value{{"k", {1, 2}}}}), (Value{{"k", {1, 2}}}));
}

TEST_F(AdapterTest, UnknownKeywordIsRejected) {
  plugin_.task(
      "sub", [](int a, int b) { return a - b; }, troupe::arg("a"), troupe::arg("b"));
  EXPECT_EQ(error_of("sub", {1, 2}, {{"c", 3}}),
            "task 'demo.sub': unexpected keyword argument 'c'; its parameters are a, b");
}

TEST_F(AdapterTest, KeywordsNeedNamedParameters) {
  plugin_.task("sub", [](int a, int b) { return a - b; });
  EXPECT_THAT(error_of("sub", {1}, {{"arg1", 2}}), HasSubstr("have no names"));
}

TEST_F(AdapterTest, ArgumentGivenTwiceIsRejected) {
  plugin_.task(
      "sub", [](int a, int b) { return a - b; }, troupe::arg("a"), troupe::arg("b"));
  EXPECT_EQ(error_of("sub", {1, 2}, {{"a", 3}}), "task 'demo.sub': argument 'a' given both by position and by keyword");
}

TEST_F(AdapterTest, ContextParameterIsOptionalAndFirst) {
  plugin_.task(
      "who",
      [](troupe::TaskContext& ctx, int x) {
        return std::string(ctx.task_name()) + "@" + std::to_string(ctx.worker().id()) + ":" + std::to_string(x);
      },
      troupe::arg("x"));
  EXPECT_EQ(call("who", {5}), "demo.who@7:5");
  EXPECT_EQ(task("who").signature.to_string(), "demo.who(x: int) -> string");
}

TEST_F(AdapterTest, ContextSeesCooperativeCancellation) {
  plugin_.task("cancelled", [](troupe::TaskContext& ctx) { return ctx.cancelled(); });
  EXPECT_EQ(call("cancelled", {}), false);
  cancel_ = true;
  EXPECT_EQ(call("cancelled", {}), true);
}

TEST_F(AdapterTest, ContextCarriesTheEnginesServicesTable) {
  plugin_.task("table_size", [](troupe::TaskContext& ctx) {
    return ctx.services() == nullptr ? -1L : static_cast<long>(ctx.services()->struct_size);
  });
  EXPECT_EQ(call("table_size", {}), -1);  // a context built without one, as before the table existed
  troupe_task_services services{};
  services.struct_size = sizeof(troupe_task_services);
  const std::string qualified = "demo.table_size";
  troupe::TaskContext ctx(qualified, worker_, &cancel_, &services);
  EXPECT_EQ(task("table_size").invoke(ctx, {}, {}), static_cast<long>(sizeof(troupe_task_services)));
}

TEST_F(AdapterTest, PlainTasksHaveNoGroup) {
  plugin_.task("plain", [] { return 1; });
  EXPECT_EQ(task("plain").group, "");
}

TEST_F(AdapterTest, VoidResultIsNull) {
  plugin_.task("nothing", [] {});
  EXPECT_TRUE(call("nothing", {}).is_null());
}

TEST_F(AdapterTest, HooksTakeWorkerFirst) {
  plugin_.initializer(
      "setup", [](troupe::Worker& w, int n) { w.emplace<int>(n); }, troupe::arg("n"));
  const auto& hook = descriptor_.initializers.front();
  hook.invoke(worker_, Args{9}, Kwargs{});
  EXPECT_EQ(worker_.get<int>(), 9);
  EXPECT_EQ(hook.signature.to_string(), "demo.setup(n: int)");
  EXPECT_THROW(hook.invoke(worker_, Args{}, Kwargs{}), troupe::ArgumentError);
}

TEST_F(AdapterTest, HookErrorsSayInitializer) {
  plugin_.initializer(
      "setup", [](int) {}, troupe::arg("n"));
  try {
    descriptor_.initializers.front().invoke(worker_, Args{"x"}, Kwargs{});
    FAIL() << "expected ArgumentError";
  } catch (const troupe::ArgumentError& e) {
    EXPECT_THAT(e.what(), HasSubstr("initializer 'demo.setup': parameter 'n'"));
  }
}

TEST_F(AdapterTest, DuplicateTaskNameIsAPluginError) {
  plugin_.task("same", [] { return 1; });
  EXPECT_THROW(plugin_.task("same", [] { return 2; }), troupe::PluginError);
}

TEST_F(AdapterTest, ArgNamesMustMatchParameterCount) {
  EXPECT_THROW(plugin_.task(
                   "add", [](int a, int b) { return a + b; }, troupe::arg("a")),
               troupe::PluginError);
}

TEST_F(AdapterTest, RequiredParameterAfterDefaultIsRejected) {
  EXPECT_THROW(plugin_.task(
                   "f", [](int a, int b) { return a + b; }, troupe::arg("a") = 1, troupe::arg("b")),
               troupe::PluginError);
}

TEST_F(AdapterTest, InvalidTaskNamesAreRejected) {
  EXPECT_THROW(plugin_.task("a.b", [] {}), troupe::PluginError);
  EXPECT_THROW(plugin_.task("", [] {}), troupe::PluginError);
}

int free_function(int x) {
  return x + 1;
}

struct Scale {
  int factor;
  int operator()(int x) const { return factor * x; }
};

TEST_F(AdapterTest, FreeFunctionsAndFunctionObjectsWork) {
  plugin_.task("inc", free_function);
  plugin_.task("triple", Scale{3});
  plugin_.task("fn", std::function<int(int)>([](int x) { return -x; }));
  EXPECT_EQ(call("inc", {1}), 2);
  EXPECT_EQ(call("triple", {2}), 6);
  EXPECT_EQ(call("fn", {2}), -2);
}

TEST(Worker, StateIsTypedAndResettable) {
  troupe::Worker w(3, "io");
  EXPECT_EQ(w.id(), 3u);
  EXPECT_EQ(w.find<std::string>(), nullptr);
  w.emplace<std::string>("dict");
  EXPECT_EQ(w.get<std::string>(), "dict");
  w.emplace<std::string>("replaced");
  EXPECT_EQ(w.get<std::string>(), "replaced");
  w.reset<std::string>();
  EXPECT_EQ(w.find<std::string>(), nullptr);
}

TEST(Worker, GetWithoutStateNamesTypeAndWorker) {
  troupe::Worker w(2);
  try {
    w.get<Doc>();
    FAIL() << "expected troupe::Error";
  } catch (const troupe::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("worker 2 has no state of type 'Doc'"));
  }
}

TEST(Worker, EmplaceMayBuildFromTheOldValue) {
  troupe::Worker w(0);
  w.emplace<std::string>("old");
  w.emplace<std::string>(w.get<std::string>() + "+new");
  EXPECT_EQ(w.get<std::string>(), "old+new");
}

TEST(Worker, StateIsDestroyedNewestFirst) {
  std::vector<int> order;
  struct Probe {
    std::vector<int>* order;
    int id;
    ~Probe() { order->push_back(id); }
  };
  struct First : Probe {};
  struct Second : Probe {};
  {
    troupe::Worker w(0);
    w.emplace<First>(First{{&order, 1}});
    w.emplace<Second>(Second{{&order, 2}});
    order.clear();  // drop the temporaries' destructions
  }
  EXPECT_EQ(order, (std::vector<int>{2, 1}));
}

TEST(Call, MakeCallSeparatesKeywords) {
  auto call = troupe::detail::make_call("text.words", Doc{"a", "b"}, troupe::kw("lang", "en"), 3);
  EXPECT_EQ(call.task, "text.words");
  ASSERT_EQ(call.args.size(), 2u);
  EXPECT_EQ(call.args[1], 3);
  EXPECT_EQ(call.kwargs.at("lang"), "en");
}

}  // namespace
