// troupe/sdk/worker.hpp
//
// troupe::Worker: one worker (a pool thread or a worker process) and the
// typed state its initializer leaves for the tasks that run on it.
//
// Guarantees: state lives until the worker exits, after its finalizer ran;
// it is destroyed in reverse order of emplacement. A Worker is used by one
// thread at a time (its own), so it has no locks.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "troupe/sdk/abi.hpp"
#include "troupe/sdk/errors.hpp"
#include "troupe/sdk/type_name.hpp"

namespace troupe {

class TROUPE_SDK_VISIBLE Worker {
 public:
  explicit Worker(std::size_t id, std::string pool_name = {}) : id_(id), pool_name_(std::move(pool_name)) {}
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() { clear(); }

  // The worker's number in its pool, from 0; stable for the worker's life.
  std::size_t id() const noexcept { return id_; }
  const std::string& pool_name() const noexcept { return pool_name_; }

  // Constructs a T, then replaces any T already there (so the new T may be
  // built from the old one: w.emplace<T>(w.get<T>())).
  template <typename T, typename... Args>
  T& emplace(Args&&... args) {
    auto object = std::make_shared<T>(std::forward<Args>(args)...);
    T& ref = *object;
    for (auto& [type, slot] : state_) {
      if (*type == typeid(T)) {
        slot = std::move(object);
        return ref;
      }
    }
    state_.emplace_back(&typeid(T), std::shared_ptr<void>(std::move(object)));
    return ref;
  }

  // The worker's T; throws troupe::Error when no initializer emplaced one.
  template <typename T>
  T& get() {
    if (T* found = find<T>()) {
      return *found;
    }
    throw Error("worker " + std::to_string(id_) + " has no state of type '" + detail::type_name<T>() +
                "'; emplace it in the pool's initializer (worker.emplace<T>(...))");
  }

  // The worker's T, or nullptr.
  template <typename T>
  T* find() noexcept {
    for (auto& [type, object] : state_) {
      if (*type == typeid(T)) {
        return static_cast<T*>(object.get());
      }
    }
    return nullptr;
  }

  // Destroys the worker's T, if any.
  template <typename T>
  void reset() noexcept {
    for (auto it = state_.begin(); it != state_.end(); ++it) {
      if (*it->first == typeid(T)) {
        state_.erase(it);
        return;
      }
    }
  }

  // Destroys all state, newest first.
  void clear() noexcept {
    while (!state_.empty()) {
      state_.pop_back();
    }
  }

  // The services table of the pool this worker belongs to (shared counters
  // and dicts), or null; the engine sets it and keeps it alive.
  const troupe_task_services* services() const noexcept { return services_; }
  void set_services(const troupe_task_services* services) noexcept { services_ = services; }

 private:
  std::size_t id_;
  std::string pool_name_;
  const troupe_task_services* services_ = nullptr;
  // type_info equality matches a named type across libraries (libstdc++
  // compares names) but keeps anonymous-namespace types of two plugins apart.
  std::vector<std::pair<const std::type_info*, std::shared_ptr<void>>> state_;
};

}  // namespace troupe
