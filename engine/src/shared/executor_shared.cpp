// Executor's shared-state members, the same for every pool kind.
#include "shared/shared_state.hpp"
#include "troupe/executor.hpp"

namespace troupe {

namespace {

detail::shared::SharedState& state_of(const Executor& executor, detail::shared::SharedState* state) {
  static_cast<void>(executor);
  if (state == nullptr) {
    throw UsageError("this executor keeps no shared counters or dicts (ThreadPool and ProcessPool do)");
  }
  return *state;
}

}  // namespace

SharedCounter Executor::counter(std::string_view name) {
  auto& state = state_of(*this, shared_state());
  auto& object = state.counter(name);
  return SharedCounter(*state.services(), &object, object.name);
}

SharedDict Executor::dict(std::string_view name, const DictOptions& options) {
  auto& state = state_of(*this, shared_state());
  auto& object = state.dict(name, options.capacity);
  return SharedDict(*state.services(), &object, object.name);
}

Value Executor::shared_values() const {
  return state_of(*this, shared_state()).values();
}

}  // namespace troupe
