// troupe/sdk/plugin.hpp
//
// TROUPE_PLUGIN(name, "version") { ... } defines a plugin's entry point; its
// body receives `plugin`, a PluginBuilder, and registers tasks, initializers
// and finalizers:
//
//   TROUPE_PLUGIN(text, "1.0.0") {
//     plugin.task("add", add, "Add two integers", troupe::arg("a"), troupe::arg("b") = 1);
//     plugin.initializer("open_dict", [](troupe::Worker& w, std::string path) { ... });
//     plugin.worker_class<Model, std::string>("model", troupe::arg("path") = "model.bin")
//         .method("predict", &Model::predict, troupe::arg("x"));
//   }
//
// worker_class<T, Ctor...> gives each worker its own T (Ctor...: the
// constructor's parameter types): initializer `plugin.model` builds it,
// finalizer `plugin.model` destroys it; its methods are ordinary tasks
// (`plugin.predict`) that build it first, with the registered defaults, on
// a worker the pool's initializer did not build it on. The pools destroy it
// as the worker retires, on the thread that built it.
//
// Guarantees: nothing is registered in static constructors; the body runs
// only when the engine calls the entry point, after it checked the SDK ABI
// version and build key. A duplicate name, or one that breaks the rules of
// troupe/sdk/names.hpp (UTF-8, no dots, whitespace or invisible
// characters), throws troupe::PluginError.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/dll/alias.hpp>

#include "troupe/sdk/abi.hpp"
#include "troupe/sdk/adapter.hpp"
#include "troupe/sdk/arg.hpp"
#include "troupe/sdk/config.hpp"
#include "troupe/sdk/descriptor.hpp"
#include "troupe/sdk/errors.hpp"
#include "troupe/sdk/names.hpp"
#include "troupe/sdk/worker_object.hpp"

namespace troupe {

template <typename T>
class WorkerClass;

class PluginBuilder {
 public:
  explicit PluginBuilder(PluginDescriptor& descriptor) : descriptor_(descriptor) {}

  const std::string& name() const noexcept { return descriptor_.name; }

  // Registers `fn` as task `name`; `fn` may take TaskContext& first.
  template <typename Fn, typename... Specs>
  PluginBuilder& task(std::string_view name, Fn&& fn, Specs&&... specs) {
    add_task(name, {}, std::forward<Fn>(fn), std::forward<Specs>(specs)...);
    return *this;
  }

  // Registers worker class T as `name`: initializer `plugin.name` builds a
  // worker's T from arguments bound to Ctor... (the constructor's parameter
  // types, named and defaulted by troupe::arg(); a first `troupe::Worker&`
  // gets the worker), finalizer `plugin.name` destroys it. Add its methods
  // with .method() on the result.
  template <typename T, typename... Ctor, typename... Specs>
  WorkerClass<T> worker_class(std::string_view name, Specs&&... specs);

  // Registers an initializer, run once on each worker before its first task;
  // `fn` may take Worker& first.
  template <typename Fn, typename... Specs>
  PluginBuilder& initializer(std::string_view name, Fn&& fn, Specs&&... specs) {
    add_hook("initializer", descriptor_.initializers, name, std::forward<Fn>(fn), std::forward<Specs>(specs)...);
    return *this;
  }

  // Registers a finalizer, run once on each worker as it exits.
  template <typename Fn, typename... Specs>
  PluginBuilder& finalizer(std::string_view name, Fn&& fn, Specs&&... specs) {
    add_hook("finalizer", descriptor_.finalizers, name, std::forward<Fn>(fn), std::forward<Specs>(specs)...);
    return *this;
  }

 private:
  template <typename T>
  friend class WorkerClass;

  template <typename Fn, typename... Specs>
  void add_task(std::string_view name, std::string group, Fn&& fn, Specs&&... specs) {
    std::string doc = take_doc(specs...);
    std::vector<ArgSpec> arg_specs = collect_specs(std::forward<Specs>(specs)...);
    check_name("task", name, descriptor_.tasks);
    TaskInfo info;
    info.name = std::string(name);
    info.doc = std::move(doc);
    info.group = std::move(group);
    info.signature.qualified_name = qualify(name);
    info.signature.kind = "task";
    info.invoke = detail::make_task_invoker(std::forward<Fn>(fn), info.signature, arg_specs);
    descriptor_.tasks.push_back(std::move(info));
  }

  template <typename Fn, typename... Specs>
  HookInfo& add_hook(const char* kind, std::vector<HookInfo>& hooks, std::string_view name, Fn&& fn, Specs&&... specs) {
    std::string doc = take_doc(specs...);
    std::vector<ArgSpec> arg_specs = collect_specs(std::forward<Specs>(specs)...);
    check_name(kind, name, hooks);
    HookInfo info;
    info.name = std::string(name);
    info.doc = std::move(doc);
    info.signature.qualified_name = qualify(name);
    info.signature.kind = kind;
    info.invoke = detail::make_hook_invoker(std::forward<Fn>(fn), info.signature, arg_specs);
    hooks.push_back(std::move(info));
    return hooks.back();
  }

  // A worker class's name is checked as both hooks' name before anything
  // is registered, so a refused class leaves no half behind.
  template <typename... Specs>
  void check_class(std::string_view name, std::size_t constructor_arity) const {
    check_name("worker class", name, descriptor_.initializers);
    check_name("worker class", name, descriptor_.finalizers);
    const std::size_t names = (std::size_t{0} + ... + (kIsDoc<Specs> ? 0 : 1));
    if (names != 0 && names != constructor_arity) {
      throw PluginError("worker class '" + qualify(name) + "': " + std::to_string(names) +
                        " troupe::arg() names given for " + std::to_string(constructor_arity) +
                        " constructor parameters; list the constructor's parameter types after the class: "
                        "worker_class<T, std::string, int>(...)");
    }
  }

  template <typename T>
  static constexpr bool kIsDoc =
      std::is_convertible_v<T, std::string_view> && !std::is_same_v<std::remove_cvref_t<T>, arg> &&
      !std::is_same_v<std::remove_cvref_t<T>, ArgSpec>;

  // The optional doc string comes first among the extras.
  template <typename... Specs>
  static std::string take_doc(const Specs&... specs) {
    std::string doc;
    std::size_t docs = 0;
    (
        [&](const auto& spec) {
          if constexpr (kIsDoc<decltype(spec)>) {
            doc = std::string(std::string_view(spec));
            ++docs;
          }
        }(specs),
        ...);
    if (docs > 1) {
      throw PluginError("more than one doc string given in one registration");
    }
    return doc;
  }

  template <typename... Specs>
  static std::vector<ArgSpec> collect_specs(Specs&&... specs) {
    std::vector<ArgSpec> out;
    (
        [&](auto&& spec) {
          using S = std::remove_cvref_t<decltype(spec)>;
          if constexpr (std::is_same_v<S, arg>) {
            out.push_back(ArgSpec(spec));
          } else if constexpr (std::is_same_v<S, ArgSpec>) {
            out.push_back(spec);
          } else {
            static_assert(kIsDoc<decltype(spec)>,
                          "troupe: registration extras are a doc string and troupe::arg(...) names");
          }
        }(std::forward<Specs>(specs)),
        ...);
    return out;
  }

  template <typename Info>
  void check_name(const char* kind, std::string_view name, const std::vector<Info>& existing) const {
    if (const std::string problem = detail::name_problem(name); !problem.empty()) {
      throw PluginError(std::string(kind) + " name '" + detail::escaped_name(name) + "' in plugin '" +
                        descriptor_.name + "' " + problem +
                        "; a name is non-empty UTF-8 without dots, whitespace, control or invisible characters");
    }
    for (const auto& info : existing) {
      if (info.name == name) {
        throw PluginError("duplicate " + std::string(kind) + " name '" + qualify(name) +
                          "': registered twice; give each a distinct name");
      }
    }
  }

  std::string qualify(std::string_view name) const { return descriptor_.name + "." + std::string(name); }

  PluginDescriptor& descriptor_;
};

// A registered worker class, to add methods to (pybind11's class_<T>).
template <typename T>
class WorkerClass {
 public:
  WorkerClass(PluginBuilder& plugin, std::string name, std::shared_ptr<const detail::WorkerClassData> data,
              HookFn build)
      : plugin_(plugin), name_(std::move(name)), data_(std::move(data)), build_(std::move(build)) {}

  // The class name as registered (also its initializer's and finalizer's).
  const std::string& name() const noexcept { return name_; }

  // Registers member function `fn` of T as the ordinary task `name`
  // (plain task naming, `plugin.name`), run on the worker's T; it may take
  // TaskContext& first. Extras as for PluginBuilder::task.
  template <typename Method, typename... Specs>
  WorkerClass& method(std::string_view name, Method fn, Specs&&... specs) {
    static_assert(std::is_member_function_pointer_v<Method>,
                  "troupe: .method() takes a member function pointer (&T::name)");
    static_assert(std::is_base_of_v<typename detail::MethodTraits<Method>::Class, T>,
                  "troupe: .method() takes a member function of the worker class (or of its base)");
    plugin_.add_task(name, name_, detail::MethodCall<T, Method>{data_, build_, fn}, std::forward<Specs>(specs)...);
    return *this;
  }

 private:
  PluginBuilder& plugin_;
  std::string name_;
  std::shared_ptr<const detail::WorkerClassData> data_;
  HookFn build_;
};

template <typename T, typename... Ctor, typename... Specs>
WorkerClass<T> PluginBuilder::worker_class(std::string_view name, Specs&&... specs) {
  static_assert(std::is_constructible_v<T, Ctor...>,
                "troupe: worker_class<T, Ctor...>: T is not constructible from Ctor... (list the constructor's "
                "parameter types after the class)");
  check_class<Specs...>(name, detail::ConstructorArity<Ctor...>::value);
  auto data = std::make_shared<detail::WorkerClassData>();
  data->qualified_name = qualify(name);
  HookInfo& init = add_hook("initializer", descriptor_.initializers, name, detail::ObjectBuilder<T, Ctor...>{data},
                            std::forward<Specs>(specs)...);
  init.group = std::string(name);
  for (const ParamInfo& param : init.signature.params) {
    if (!param.default_value) {
      data->lazy_problem = "constructor parameter '" + param.name + "' (" + param.type + ") has no default";
      break;
    }
  }
  HookFn build = init.invoke;
  try {
    HookInfo& fini = add_hook("finalizer", descriptor_.finalizers, name, detail::ObjectDestroyer{data},
                              "Destroys the worker's " + std::string(name));
    fini.group = std::string(name);
  } catch (...) {
    descriptor_.initializers.pop_back();
    throw;
  }
  return WorkerClass<T>(*this, std::string(name), std::move(data), std::move(build));
}

}  // namespace troupe

// Defines the plugin's entry point. NAME must be a C identifier; it becomes
// the namespace of the plugin's tasks (`NAME.task`).
#define TROUPE_PLUGIN(NAME, VERSION)                                                               \
  static void troupe_plugin_register_(::troupe::PluginBuilder& plugin);                            \
  namespace {                                                                                      \
  void troupe_plugin_describe_(void* descriptor) {                                                 \
    ::troupe::PluginBuilder builder(*static_cast<::troupe::PluginDescriptor*>(descriptor));        \
    troupe_plugin_register_(builder);                                                              \
  }                                                                                                \
  const ::troupe_plugin_header* troupe_plugin_entry_impl_() {                                      \
    static const ::troupe_plugin_header header{                                                    \
        sizeof(::troupe_plugin_header), TROUPE_SDK_ABI_VERSION,  TROUPE_BUILD_KEY, #NAME, VERSION, \
        TROUPE_VERSION_STRING,          &troupe_plugin_describe_};                                 \
    return &header;                                                                                \
  }                                                                                                \
  }                                                                                                \
  BOOST_DLL_ALIAS_SECTIONED(troupe_plugin_entry_impl_, troupe_plugin_entry, troupe)                \
  static void troupe_plugin_register_([[maybe_unused]] ::troupe::PluginBuilder& plugin)
