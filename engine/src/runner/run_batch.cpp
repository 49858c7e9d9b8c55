#include "runner/run_batch.hpp"

#include <type_traits>

namespace troupe::detail::runner {
namespace {

template <class T>
std::exception_ptr cancel_error(const Future<T>& future) {
  try {
    future.get();
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

}  // namespace

bool batchable(const RunWork& a, const RunWork& b) {
  if (a.is_call() != b.is_call()) {
    return false;
  }
  if (!a.is_call()) {
    return true;
  }
  return a.call().task == b.call().task && a.call().kwargs.empty() && b.call().kwargs.empty();
}

// A finished future's results, one per slot.
std::vector<ItemResult> results_of(Batch& batch) {
  const std::size_t n = batch.slots.size();
  return std::visit(
      [&](auto& future) {
        using F = std::decay_t<decltype(future)>;
        std::vector<ItemResult> out(n);
        if (future.state() == FutureState::cancelled) {
          // Ours (a stop) never ran; a pool's own cancellation is an error.
          std::exception_ptr error = cancel_error(future);
          for (auto& r : out) {
            r.cancelled = true;
            r.error = error;
          }
          return out;
        }
        if (future.state() == FutureState::failed) {
          for (auto& r : out) {
            r.error = future.exception();
          }
          return out;
        }
        if constexpr (std::is_same_v<F, Future<void>>) {
          return std::move(batch.results);
        } else if constexpr (std::is_same_v<F, Future<Value>>) {
          out[0].value = future.get();
          return out;
        } else {
          const auto& outcomes = future.get();
          for (std::size_t i = 0; i < n && i < outcomes.size(); ++i) {
            if (outcomes[i].ok()) {
              out[i].value = outcomes[i].value();
            } else {
              out[i].error = outcomes[i].error();
            }
          }
          return out;
        }
      },
      batch.future);
}

}  // namespace troupe::detail::runner
