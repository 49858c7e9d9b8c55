// troupe/detail/progress_meter.hpp: one run's live counters and the thread
// that renders them through a Progress. Not part of the public API.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "troupe/progress.hpp"

namespace troupe::detail {

// Thread-safe: any thread may count; counting is a few relaxed atomic adds.
// With Progress::none() nothing renders and no thread is started.
class ProgressMeter {
 public:
  ProgressMeter(const Progress& how, std::string label, std::optional<std::uint64_t> total);
  ~ProgressMeter();  // finish()
  ProgressMeter(const ProgressMeter&) = delete;
  ProgressMeter& operator=(const ProgressMeter&) = delete;

  void add_ok(std::uint64_t n = 1) noexcept;
  void add_failed(std::uint64_t n = 1) noexcept;
  void add_retried(std::uint64_t n = 1) noexcept;
  void set_total(std::optional<std::uint64_t> total) noexcept;

  ProgressSnapshot snapshot() const;
  // Draws the last line (finished = true) and stops the renderer; idempotent.
  void finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace troupe::detail
