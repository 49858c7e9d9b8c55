// Building exception chains: `outer` with `cause` as its nested exception,
// the shape every BrokenPoolError, InitializerError and mapped remote error
// takes (std::throw_with_nested needs an exception being handled).
#pragma once

#include <exception>
#include <utility>

namespace troupe::detail {

template <class E>
std::exception_ptr nest(const std::exception_ptr& cause, E outer) {
  try {
    std::rethrow_exception(cause);
  } catch (...) {
    try {
      std::throw_with_nested(std::move(outer));
    } catch (...) {
      return std::current_exception();
    }
  }
}

}  // namespace troupe::detail
