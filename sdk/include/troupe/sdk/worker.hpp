// troupe/sdk/worker.hpp
//
// troupe::Worker: one worker (a pool thread or a worker process) and the
// typed state its initializer leaves for the tasks that run on it.
//
// Guarantees: state lives until the worker exits, after its finalizer ran;
// it is destroyed in reverse order of emplacement. Worker objects (one per
// worker_class, troupe/sdk/worker_class.hpp) are destroyed before the state,
// newest first, by the pool on the worker's own thread. A Worker is used by
// one thread at a time (its own), so it has no locks.
#pragma once

#include <cstddef>
#include <exception>
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
  ~Worker() {
    discard_objects();
    clear();
  }

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

  // ---- worker objects: the storage behind worker_class<T> -----------------
  // `key` identifies the class (one registration); `destroy` deletes the
  // object and may throw what its destructor throws.
  using ObjectDestroyer = void (*)(void* object);

  // The object of class `key` on this worker, or null.
  void* object(const void* key) const noexcept {
    for (const ObjectSlot& slot : objects_) {
      if (slot.key == key) {
        return slot.object;
      }
    }
    return nullptr;
  }

  // Room for one more object, so adopt_object() cannot fail after an object
  // was built.
  void reserve_object() { objects_.reserve(objects_.size() + 1); }

  // Takes ownership of `object` as the object of class `key` (named
  // `class_name` in errors); an object already there is destroyed first.
  void adopt_object(const void* key, const std::string* class_name, void* object, ObjectDestroyer destroy) {
    destroy_object(key);
    objects_.push_back(ObjectSlot{key, class_name, object, destroy});
  }

  // Destroys the object of class `key`, if any; what its destructor throws
  // propagates (nested in a troupe::Error naming the class and the worker).
  void destroy_object(const void* key) {
    for (auto it = objects_.begin(); it != objects_.end(); ++it) {
      if (it->key == key) {
        const ObjectSlot slot = *it;
        objects_.erase(it);
        destroy_slot(slot);
        return;
      }
    }
  }

  // Destroys every object, newest first, each even when another's destructor
  // threw; then rethrows the first failure. The pools call it as the worker
  // retires, after its finalizer.
  void destroy_objects() {
    std::exception_ptr first;
    while (!objects_.empty()) {
      const ObjectSlot slot = objects_.back();
      objects_.pop_back();
      try {
        destroy_slot(slot);
      } catch (...) {
        if (!first) {
          first = std::current_exception();
        }
      }
    }
    if (first) {
      std::rethrow_exception(first);
    }
  }

 private:
  struct ObjectSlot {
    const void* key;
    const std::string* class_name;
    void* object;
    ObjectDestroyer destroy;
  };

  void destroy_slot(const ObjectSlot& slot) const {
    try {
      slot.destroy(slot.object);
    } catch (...) {
      std::throw_with_nested(Error("worker class '" + *slot.class_name + "': its destructor threw on worker " +
                                   std::to_string(id_) + " (cause nested)"));
    }
  }

  // Only where a pool could not retire the worker in order (its initializer
  // failed and broke the pool first): a second error has nowhere to go.
  void discard_objects() noexcept {
    try {
      destroy_objects();
    } catch (...) {  // NOLINT(bugprone-empty-catch): see above
    }
  }

  std::size_t id_;
  std::string pool_name_;
  const troupe_task_services* services_ = nullptr;
  // type_info equality matches a named type across libraries (libstdc++
  // compares names) but keeps anonymous-namespace types of two plugins apart.
  std::vector<std::pair<const std::type_info*, std::shared_ptr<void>>> state_;
  std::vector<ObjectSlot> objects_;
};

}  // namespace troupe
