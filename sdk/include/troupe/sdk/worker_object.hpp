// troupe/sdk/worker_object.hpp
//
// Not API (namespace troupe::detail): the machinery behind
// PluginBuilder::worker_class<T>() (troupe/sdk/plugin.hpp). One T per worker,
// kept in the Worker's object slots under the class's registration: built by
// the class's initializer (the pool's initializer names it) or, failing that,
// by the first method call with the registered defaults; destroyed by the
// class's finalizer or by the pool as the worker retires.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "troupe/sdk/call.hpp"
#include "troupe/sdk/descriptor.hpp"
#include "troupe/sdk/errors.hpp"
#include "troupe/sdk/task_context.hpp"
#include "troupe/sdk/worker.hpp"

namespace troupe::detail {

// One registered class; its address is the key of its objects in every Worker.
struct WorkerClassData {
  std::string qualified_name;  // plugin.model
  // Why a method call cannot build the object with the registered defaults
  // (a constructor parameter without one); empty when it can.
  std::string lazy_problem;
};

template <typename T>
void destroy_worker_object(void* object) {
  delete static_cast<T*>(object);
}

// The class's initializer: builds the worker's T from the bound constructor
// arguments, replacing any T it had.
template <typename T, typename... Ctor>
struct ObjectBuilder {
  std::shared_ptr<const WorkerClassData> data;

  void operator()(Worker& worker, Ctor... args) const {
    worker.reserve_object();
    auto object = std::make_unique<T>(std::forward<Ctor>(args)...);
    worker.adopt_object(data.get(), &data->qualified_name, object.get(), &destroy_worker_object<T>);
    object.release();
  }
};

// A constructor that takes the Worker first gets the one it is built on.
template <typename T, typename... Ctor>
struct ObjectBuilder<T, Worker&, Ctor...> {
  std::shared_ptr<const WorkerClassData> data;

  void operator()(Worker& worker, Ctor... args) const {
    worker.reserve_object();
    auto object = std::make_unique<T>(worker, std::forward<Ctor>(args)...);
    worker.adopt_object(data.get(), &data->qualified_name, object.get(), &destroy_worker_object<T>);
    object.release();
  }
};

// The number of constructor parameters that take arguments (not the Worker).
template <typename... Ctor>
struct ConstructorArity {
  static constexpr std::size_t value = sizeof...(Ctor);
};
template <typename... Ctor>
struct ConstructorArity<Worker&, Ctor...> {
  static constexpr std::size_t value = sizeof...(Ctor);
};

// The class's finalizer: destroys the worker's T, if it has one.
struct ObjectDestroyer {
  std::shared_ptr<const WorkerClassData> data;

  void operator()(Worker& worker) const { worker.destroy_object(data.get()); }
};

// The worker's T, built first with the registered defaults when the pool's
// initializer did not build it.
template <typename T>
T& worker_object(Worker& worker, const WorkerClassData& data, const HookFn& build) {
  if (void* found = worker.object(&data)) {
    return *static_cast<T*>(found);
  }
  const std::string where = "worker class '" + data.qualified_name + "' cannot be built on worker " +
                            std::to_string(worker.id()) + " for a method call";
  if (!data.lazy_problem.empty()) {
    throw InitializerError(where + ": " + data.lazy_problem + "; name " + data.qualified_name +
                           " as the pool's initializer with its arguments, or give every constructor parameter a "
                           "default");
  }
  try {
    static const Args no_args;
    static const Kwargs no_kwargs;
    build(worker, no_args, no_kwargs);
  } catch (...) {
    std::throw_with_nested(InitializerError(where + ": its constructor threw (cause nested)"));
  }
  return *static_cast<T*>(worker.object(&data));
}

// The parts of a member function pointer: class, result, parameters.
template <typename M>
struct MethodTraits;
template <typename C, typename R, typename... A>
struct MethodTraits<R (C::*)(A...)> {
  using Class = C;
  using Result = R;
  using Params = std::tuple<A...>;
};
template <typename C, typename R, typename... A>
struct MethodTraits<R (C::*)(A...) const> : MethodTraits<R (C::*)(A...)> {};
template <typename C, typename R, typename... A>
struct MethodTraits<R (C::*)(A...) noexcept> : MethodTraits<R (C::*)(A...)> {};
template <typename C, typename R, typename... A>
struct MethodTraits<R (C::*)(A...) const noexcept> : MethodTraits<R (C::*)(A...)> {};

// A method as a task: `TaskContext&` first (always, so the worker is at
// hand), then the method's value parameters. A method that takes
// TaskContext& itself gets it passed on.
template <typename T, typename M, typename Params = typename MethodTraits<M>::Params>
struct MethodCall;
template <typename T, typename M, typename... A>
struct MethodCall<T, M, std::tuple<A...>> {
  using R = typename MethodTraits<M>::Result;
  // A reference result is copied out: the object outlives the call, the
  // result's conversion does not need it to.
  using Result = std::conditional_t<std::is_reference_v<R>, std::remove_cvref_t<R>, R>;

  std::shared_ptr<const WorkerClassData> data;
  HookFn build;
  M method;

  Result operator()(TaskContext& context, A... args) const {
    T& object = worker_object<T>(context.worker(), *data, build);
    return std::invoke(method, object, std::forward<A>(args)...);
  }
};
template <typename T, typename M, typename... A>
struct MethodCall<T, M, std::tuple<TaskContext&, A...>> {
  using R = typename MethodTraits<M>::Result;
  using Result = std::conditional_t<std::is_reference_v<R>, std::remove_cvref_t<R>, R>;

  std::shared_ptr<const WorkerClassData> data;
  HookFn build;
  M method;

  Result operator()(TaskContext& context, A... args) const {
    T& object = worker_object<T>(context.worker(), *data, build);
    return std::invoke(method, object, context, std::forward<A>(args)...);
  }
};

}  // namespace troupe::detail
