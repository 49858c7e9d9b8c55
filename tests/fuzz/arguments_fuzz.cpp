// The SDK's argument binding against arbitrary values: every call either
// runs or throws troupe::ArgumentError naming the task; no other exception,
// no crash, whatever the value's shape (the same binding serves troupe
// call, YAML items and frames from process workers).
//
// Input: JSON text, else MessagePack; an array is the positional arguments,
// an object is also tried as keyword arguments, anything else is the one
// positional argument.
#include <troupe/sdk.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "fuzz_target.hpp"

namespace {

using troupe::Args;
using troupe::Kwargs;
using troupe::Value;

struct Doc {
  std::string id;
  std::vector<int> counts;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Doc, id, counts)

struct Tasks {
  Tasks() {
    descriptor.name = "fz";
    troupe::PluginBuilder plugin(descriptor);
    using troupe::arg;
    plugin.task(
        "add",  // summed as doubles: the extremes of long long must not overflow in the test itself
        [](int a, long long b) { return static_cast<double>(a) + static_cast<double>(b); }, "", arg("a"),
        arg("b") = 5LL);
    plugin.task(
        "small", [](std::uint8_t u, float f, bool flag) { return flag ? u + f : f; }, "", arg("u"), arg("f"),
        arg("flag") = false);
    plugin.task(
        "concat", [](const std::string& s, std::optional<std::string> t) { return s + t.value_or("-"); }, "", arg("s"),
        arg("t") = std::optional<std::string>{});
    plugin.task("sum", [](const std::vector<double>& xs) {
      double total = 0;
      for (double x : xs) {
        total += x;
      }
      return total;
    });
    plugin.task("counts", [](const std::map<std::string, int>& m) { return m.size(); });
    plugin.task("record", [](const std::tuple<int, std::string, bool>& t, std::pair<int, int> p) {
      return std::get<1>(t).size() + static_cast<std::size_t>(p.first != p.second);
    });
    plugin.task("doc", [](const Doc& d) { return d.id.size() + d.counts.size(); });
    plugin.task("nested", [](const std::vector<std::vector<std::optional<int>>>& rows) { return rows.size(); });
    plugin.task("view", [](std::string_view s, const Value& any) { return s.size() + any.size(); });
  }
  troupe::PluginDescriptor descriptor;
  troupe::Worker worker{1};
  std::atomic<bool> cancel{false};
};

Tasks& tasks() {
  static Tasks t;
  return t;
}

void call(const troupe::TaskInfo& task, const Args& args, const Kwargs& kwargs) {
  const std::string qualified = "fz." + task.name;
  troupe::TaskContext ctx(qualified, tasks().worker, &tasks().cancel);
  try {
    static_cast<void>(task.invoke(ctx, args, kwargs));
  } catch (const troupe::ArgumentError& e) {
    if (std::string(e.what()).find("'" + qualified + "'") == std::string::npos) {
      troupe_fuzz_fail(std::string("an argument error that does not name the task: ") + e.what());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Value value = Value::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    value = Value::from_msgpack(data, data + size, /*strict=*/true, /*allow_exceptions=*/false);
    if (value.is_discarded()) {
      return 0;
    }
  }
  Args args;
  if (value.is_array()) {
    args = value.get<Args>();
  } else {
    args.push_back(value);
  }
  Kwargs kwargs;
  if (value.is_object()) {
    kwargs = value.get<Kwargs>();
  }
  for (const auto& task : tasks().descriptor.tasks) {
    call(task, args, {});
    if (!kwargs.empty()) {
      call(task, {}, kwargs);
      call(task, Args(args.begin(), args.begin() + std::min<std::ptrdiff_t>(1, std::ssize(args))), kwargs);
    }
  }
  return 0;
}

std::vector<std::string> troupe_fuzz_seeds() {
  return {
      R"([1, 2])",
      R"([255, 1.5, true])",
      R"(["a", "b"])",
      R"([[1.0, 2, -3e10]])",
      R"([{"a": 1, "b": -2}])",
      R"([[1, "x", false], [3, 4]])",
      R"([{"id": "d1", "counts": [1, 2]}])",
      R"([[[1, null], [], [2147483647]]])",
      R"(["s", {"any": [1]}])",
      R"({"a": 1, "b": 2, "s": "x", "t": null, "u": 7, "f": 0.5, "flag": true})",
      R"({"xs": [1], "rows": [[null]], "d": {"id": "", "counts": []}})",
      R"(18446744073709551615)",
      R"([-9223372036854775808, 4294967296])",
  };
}
