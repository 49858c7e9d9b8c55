#include "shared/shared_state.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>

#include "shared/shared_dict.hpp"
#include "troupe/sdk/shared.hpp"

namespace troupe::detail::shared {

namespace {

std::string errno_text(int error) {
  return std::strerror(error);
}

const char* kind_name(Kind kind) {
  return kind == Kind::counter ? "counter" : "dict";
}

CounterBlock& counter_of(void* handle) {
  return *static_cast<CounterBlock*>(static_cast<SharedObject*>(handle)->base);
}

DictView dict_of(void* handle) {
  auto* object = static_cast<SharedObject*>(handle);
  return DictView(object->base, object->name);
}

void report(troupe_bytes_sink* error, const std::string& message) {
  if (error != nullptr) {
    error->append(error->user, message.data(), message.size());
  }
}

// Runs `body` (an int-returning dict call) with every exception turned into
// -1 and its message.
template <class Body>
int guarded(troupe_bytes_sink* error, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::exception& e) {
    report(error, e.what());
  } catch (...) {
    report(error, "unknown error in a shared dict");
  }
  return -1;
}

void fill_table(troupe_task_services& t, SharedState* state) {
  t.struct_size = sizeof(troupe_task_services);
  t.shared = state;
  t.find_counter = [](void* shared, const char* name, std::size_t size) -> void* {
    return static_cast<SharedState*>(shared)->find(std::string_view(name, size), Kind::counter);
  };
  t.find_dict = [](void* shared, const char* name, std::size_t size) -> void* {
    return static_cast<SharedState*>(shared)->find(std::string_view(name, size), Kind::dict);
  };
  t.counter_add = [](void* counter, std::int64_t delta) -> std::int64_t {
    return counter_of(counter).value.fetch_add(delta, std::memory_order_seq_cst) + delta;
  };
  t.counter_load = [](void* counter) -> std::int64_t {
    return counter_of(counter).value.load(std::memory_order_seq_cst);
  };
  t.dict_get = [](void* dict, const char* key, std::size_t key_size, troupe_bytes_sink* value,
                  troupe_bytes_sink* error) -> int {
    return guarded(error, [&] { return dict_of(dict).get(std::string_view(key, key_size), *value) ? 0 : 1; });
  };
  t.dict_set = [](void* dict, const char* key, std::size_t key_size, const char* value, std::size_t size,
                  troupe_bytes_sink* error) -> int {
    return guarded(error, [&] {
      dict_of(dict).set(std::string_view(key, key_size), std::string_view(value, size));
      return 0;
    });
  };
  t.dict_erase = [](void* dict, const char* key, std::size_t key_size, troupe_bytes_sink* error) -> int {
    return guarded(error, [&] { return dict_of(dict).erase(std::string_view(key, key_size)) ? 0 : 1; });
  };
  t.dict_update = [](void* dict, const char* key, std::size_t key_size, troupe_dict_update_fn* fn, void* user,
                     troupe_bytes_sink* error) -> int {
    return guarded(error, [&] { return dict_of(dict).update(std::string_view(key, key_size), fn, user); });
  };
  t.dict_snapshot = [](void* dict, troupe_dict_entry_fn* fn, void* user, troupe_bytes_sink* error) -> int {
    return guarded(error, [&] {
      dict_of(dict).snapshot(fn, user);
      return 0;
    });
  };
}

void* map_fd(int fd, std::size_t size) {
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    throw Error("cannot map a shared object of " + std::to_string(size) + " bytes: " + errno_text(errno));
  }
  return base;
}

}  // namespace

SharedState::SharedState() {
  fill_table(services_, this);
}

SharedState::~SharedState() {
  for (auto& [name, object] : objects_) {
    ::munmap(object->base, object->size);
    if (object->fd >= 0) {
      ::close(object->fd);
    }
  }
}

SharedObject* SharedState::find(std::string_view name, Kind kind) const {
  std::shared_lock lock(mutex_);
  const auto it = objects_.find(name);
  return it != objects_.end() && it->second->kind == kind ? it->second.get() : nullptr;
}

SharedObject& SharedState::counter(std::string_view name) {
  return create(name, Kind::counter, 0);
}

SharedObject& SharedState::dict(std::string_view name, std::size_t capacity) {
  if (capacity == 0) {
    throw ArgumentError("shared dict '" + std::string(name) + "': capacity must be at least 1 byte");
  }
  return create(name, Kind::dict, capacity);
}

SharedObject& SharedState::create(std::string_view name, Kind kind, std::size_t capacity) {
  if (name.empty() || name.size() > max_name_size) {
    throw ArgumentError("a shared " + std::string(kind_name(kind)) + " needs a name of 1 to " +
                        std::to_string(max_name_size) + " bytes, not '" + std::string(name) + "'");
  }
  std::unique_lock lock(mutex_);
  if (const auto it = objects_.find(name); it != objects_.end()) {
    SharedObject& existing = *it->second;
    if (existing.kind != kind) {
      throw UsageError("shared " + std::string(kind_name(kind)) + " '" + std::string(name) + "': the name is a " +
                       kind_name(existing.kind) + " on this pool");
    }
    const auto have = kind == Kind::dict ? static_cast<DictHeader*>(existing.base)->capacity : 0;
    if (have != capacity) {
      throw UsageError("shared dict '" + std::string(name) + "' exists with capacity " + std::to_string(have) +
                       " bytes, not " + std::to_string(capacity));
    }
    return existing;
  }
  const std::size_t size = kind == Kind::counter ? sizeof(CounterBlock) : dict_mapping_size(capacity);
  const std::string memfd_name = "troupe-shared-" + std::string(name);
  const int fd = ::memfd_create(memfd_name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    throw Error("cannot create shared " + std::string(kind_name(kind)) + " '" + std::string(name) +
                "' (memfd_create): " + errno_text(errno));
  }
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0 ||
      ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    const int error = errno;
    ::close(fd);
    throw Error("cannot size shared " + std::string(kind_name(kind)) + " '" + std::string(name) + "' (" +
                std::to_string(size) + " bytes): " + errno_text(error));
  }
  void* base = nullptr;
  try {
    base = map_fd(fd, size);
  } catch (...) {
    ::close(fd);
    throw;
  }
  auto& header = *static_cast<ObjectHeader*>(base);
  header.kind = kind;
  header.name_size = static_cast<std::uint32_t>(name.size());
  std::memcpy(header.name, name.data(), name.size());
  header.mapping_size = size;
  if (kind == Kind::dict) {
    init_dict(base, capacity);
  }
  std::atomic_ref<std::uint64_t>(header.magic).store(magic, std::memory_order_release);
  auto object = std::make_unique<SharedObject>();
  object->kind = kind;
  object->name = std::string(name);
  object->base = base;
  object->size = size;
  object->fd = fd;
  object->descriptor_id = next_id_++;
  SharedObject& added = *object;
  objects_.emplace(added.name, std::move(object));
  if (on_create_) {
    on_create_(added.descriptor_id, fd);
  }
  return added;
}

void SharedState::on_create(std::function<void(std::uint64_t, int)> fn) {
  std::unique_lock lock(mutex_);
  on_create_ = std::move(fn);
}

std::vector<std::pair<std::uint64_t, int>> SharedState::descriptors() const {
  std::shared_lock lock(mutex_);
  std::vector<std::pair<std::uint64_t, int>> all;
  for (const auto& [name, object] : objects_) {
    all.emplace_back(object->descriptor_id, object->fd);
  }
  return all;
}

void SharedState::attach(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<std::size_t>(st.st_size) < sizeof(ObjectHeader)) {
    throw Error("descriptor " + std::to_string(fd) + " is no troupe shared object");
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  void* base = map_fd(fd, size);
  const auto& header = *static_cast<const ObjectHeader*>(base);
  if (header.magic != magic || header.name_size == 0 || header.name_size > max_name_size ||
      header.mapping_size != size) {
    ::munmap(base, size);
    throw Error("descriptor " + std::to_string(fd) + " is no troupe shared object");
  }
  std::string name(header.name, header.name_size);
  std::unique_lock lock(mutex_);
  if (objects_.contains(name)) {
    ::munmap(base, size);
    return;
  }
  auto object = std::make_unique<SharedObject>();
  object->kind = header.kind;
  object->name = name;
  object->base = base;
  object->size = size;
  objects_.emplace(std::move(name), std::move(object));
}

Value SharedState::values() const {
  std::shared_lock lock(mutex_);
  Value counters = Value::object();
  Value dicts = Value::object();
  for (const auto& [name, object] : objects_) {
    if (object->kind == Kind::counter) {
      counters[name] = counter_of(object.get()).value.load(std::memory_order_seq_cst);
      continue;
    }
    Value entries = Value::object();
    dict_of(object.get())
        .snapshot(
            [](void* user, const char* key, std::size_t key_size, const char* value, std::size_t size) {
              (*static_cast<Value*>(user))[std::string(key, key_size)] = decode(std::string_view(value, size));
            },
            &entries);
    dicts[name] = std::move(entries);
  }
  return Value{{"counters", std::move(counters)}, {"dicts", std::move(dicts)}};
}

}  // namespace troupe::detail::shared
