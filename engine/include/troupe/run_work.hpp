// troupe/run_work.hpp
//
// troupe::RunWork: one piece of a Runner's work, a plugin call (any
// executor) or a C++ callable (ThreadPool only), implicitly made from
// either: runner.add("d1", troupe::Call{"text.words", {doc}}) or
// runner.add("d2", [&] { return count(x); }).
#pragma once

#include <functional>
#include <type_traits>
#include <utility>
#include <variant>

#include "troupe/sdk/call.hpp"
#include "troupe/sdk/value.hpp"

namespace troupe {

// One piece of work: a plugin call (any executor) or a C++ callable
// returning something a Value can hold, or nothing (ThreadPool only).
class RunWork {
 public:
  using Callable = std::function<Value()>;

  RunWork(Call call) : work_(std::move(call)) {}  // NOLINT: implicit on purpose
  template <class F>
  requires(!std::is_convertible_v<F, Call> && std::is_invocable_v<F&>) RunWork(F fn)  // NOLINT: implicit on purpose
      : work_(Callable([fn = std::move(fn)]() mutable -> Value {
          if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
            fn();
            return Value();
          } else {
            return Value(fn());
          }
        })) {}

  bool is_call() const noexcept { return work_.index() == 0; }
  const Call& call() const { return std::get<0>(work_); }
  Call& call() { return std::get<0>(work_); }
  const Callable& callable() const { return std::get<1>(work_); }

 private:
  std::variant<Call, Callable> work_;
};

}  // namespace troupe
