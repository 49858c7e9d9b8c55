// troupe/outcome.hpp
//
// troupe::Outcome<T>: the result of one item of bulk work, a value or the
// error it raised, so one failed item does not hide the others.
//
// Guarantees: an Outcome holds exactly one of the two; value() on an error
// rethrows that error (the original exception object, not a copy).
// Hazards: error() is null on success; rethrow() on success does nothing.
#pragma once

#include <exception>
#include <type_traits>
#include <utility>
#include <variant>

namespace troupe {

template <class T>
class Outcome {
  static_assert(!std::is_reference_v<T>, "Outcome<T&> is not supported; store a value or a pointer");

 public:
  using value_type = T;

  // A default Outcome holds a default-constructed value.
  Outcome() = default;
  Outcome(T value) : data_(std::in_place_index<0>, std::move(value)) {}                   // NOLINT: implicit on purpose
  Outcome(std::exception_ptr error) : data_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  static Outcome failure(std::exception_ptr error) { return Outcome(std::move(error)); }

  bool ok() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  // The value; rethrows the error when there is one.
  T& value() & {
    rethrow();
    return std::get<0>(data_);
  }
  const T& value() const& {
    rethrow();
    return std::get<0>(data_);
  }
  T&& value() && {
    rethrow();
    return std::get<0>(std::move(data_));
  }

  // The error, or null on success.
  std::exception_ptr error() const noexcept { return ok() ? nullptr : std::get<1>(data_); }

  // Throws the error, if any.
  void rethrow() const {
    if (!ok()) {
      std::rethrow_exception(std::get<1>(data_));
    }
  }

 private:
  std::variant<T, std::exception_ptr> data_;
};

// Outcome<void>: success, or an error.
template <>
class Outcome<void> {
 public:
  using value_type = void;

  Outcome() = default;
  Outcome(std::exception_ptr error) : error_(std::move(error)) {}  // NOLINT: implicit on purpose

  static Outcome failure(std::exception_ptr error) { return Outcome(std::move(error)); }

  bool ok() const noexcept { return error_ == nullptr; }
  explicit operator bool() const noexcept { return ok(); }
  void value() const { rethrow(); }
  std::exception_ptr error() const noexcept { return error_; }
  void rethrow() const {
    if (error_) {
      std::rethrow_exception(error_);
    }
  }

 private:
  std::exception_ptr error_;
};

}  // namespace troupe
