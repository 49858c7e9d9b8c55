// troupe/timeout.hpp
//
// troupe::Timeout: how long a wait may last (Future::get/wait/exception,
// wait(), as_completed, join, map timeouts): nullopt waits for ever, zero
// polls, any std::chrono::duration converts.
//
// Guarantees: a conversion never overflows: a duration beyond what
// nanoseconds hold (std::chrono::hours::max(), a huge floating-point one)
// saturates to the longest wait (about 292 years), a negative one counts as
// zero where it is used; a NaN duration is zero.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ratio>
#include <type_traits>

namespace troupe {

namespace detail {

// `d` in nanoseconds, clamped to nanoseconds::min()/max() instead of
// overflowing (NaN: zero).
template <class Rep, class Period>
constexpr std::chrono::nanoseconds saturating_ns(std::chrono::duration<Rep, Period> d) noexcept {
  using Ns = std::chrono::nanoseconds;
  using ToNs = std::ratio_divide<Period, std::nano>;
  // A margin below the limits keeps the exact conversion below from overflowing.
  constexpr long double kLimit = 9.2e18L;
  const long double approx = static_cast<long double>(d.count()) * ToNs::num / ToNs::den;
  if (approx != approx) {
    return Ns::zero();
  }
  if (approx >= kLimit) {
    return Ns::max();
  }
  if (approx <= -kLimit) {
    return Ns::min();
  }
  if constexpr (std::is_floating_point_v<Rep>) {
    return Ns(static_cast<Ns::rep>(approx));
  } else {
    return std::chrono::duration_cast<Ns>(d);
  }
}

}  // namespace detail

class Timeout {
 public:
  constexpr Timeout() noexcept = default;
  constexpr Timeout(std::nullopt_t) noexcept {}  // NOLINT(google-explicit-constructor)
  template <class Rep, class Period>
  constexpr Timeout(std::chrono::duration<Rep, Period> d) noexcept  // NOLINT(google-explicit-constructor)
      : value_(detail::saturating_ns(d)) {}
  template <class Rep, class Period>
  constexpr Timeout(const std::optional<std::chrono::duration<Rep, Period>>& d) noexcept {  // NOLINT
    if (d) {
      value_ = detail::saturating_ns(*d);
    }
  }

  constexpr bool has_value() const noexcept { return value_.has_value(); }
  constexpr explicit operator bool() const noexcept { return value_.has_value(); }
  // Only when has_value().
  constexpr std::chrono::nanoseconds operator*() const noexcept { return *value_; }
  constexpr const std::chrono::nanoseconds* operator->() const noexcept { return &*value_; }
  constexpr std::optional<std::chrono::nanoseconds> get() const noexcept { return value_; }

  friend constexpr bool operator==(const Timeout&, const Timeout&) noexcept = default;

 private:
  std::optional<std::chrono::nanoseconds> value_;
};

}  // namespace troupe
