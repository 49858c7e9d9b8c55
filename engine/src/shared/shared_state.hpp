// A pool's shared counters and dicts: one anonymous memfd each (sealed
// against shrinking and growing), mapped by the host and, on a ProcessPool,
// by every worker. The host creates them; a worker attaches the memfds it is
// handed (inherited at spawn, or passed over its channel) and finds each
// object's kind and name in the mapping's header. services() is the C table
// tasks reach them through (troupe/sdk/abi.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "shared/shared_layout.hpp"
#include "troupe/sdk/abi.hpp"
#include "troupe/sdk/value.hpp"

namespace troupe::detail::shared {

// Descriptor table ids (process/protocol.hpp Descriptors) from here on are
// shared objects; the rest of the id space is left to other uses.
inline constexpr std::uint64_t first_descriptor_id = 1ull << 40;

struct SharedObject {
  Kind kind = Kind::counter;
  std::string name;
  void* base = nullptr;
  std::size_t size = 0;
  int fd = -1;  // the host's memfd; -1 in a worker (the mapping outlives it)
  std::uint64_t descriptor_id = 0;
};

class SharedState {
 public:
  SharedState();
  ~SharedState();
  SharedState(const SharedState&) = delete;
  SharedState& operator=(const SharedState&) = delete;

  // Host: the counter or dict of that name, created on first use. A name
  // taken by the other kind, or a dict asked for with another capacity, is
  // a UsageError; a name empty or over 100 bytes an ArgumentError.
  SharedObject& counter(std::string_view name);
  SharedObject& dict(std::string_view name, std::size_t capacity);
  // Host: called with (descriptor id, memfd) for each object created from
  // now on, before counter()/dict() return (the process pool sends it to
  // its running workers).
  void on_create(std::function<void(std::uint64_t, int)> fn);
  // Host: every object's (descriptor id, memfd), for a worker starting now.
  std::vector<std::pair<std::uint64_t, int>> descriptors() const;

  // Worker: maps the memfd `fd` (the caller keeps it). A name already
  // attached is left as it is. Throws troupe::Error when `fd` is no shared
  // object.
  void attach(int fd);

  // {"counters": {name: value}, "dicts": {name: {key: value}}}.
  Value values() const;

  const troupe_task_services* services() const noexcept { return &services_; }
  SharedObject* find(std::string_view name, Kind kind) const;

 private:
  SharedObject& create(std::string_view name, Kind kind, std::size_t capacity);

  mutable std::shared_mutex mutex_;
  std::map<std::string, std::unique_ptr<SharedObject>, std::less<>> objects_;
  std::function<void(std::uint64_t, int)> on_create_;
  std::uint64_t next_id_ = first_descriptor_id;
  troupe_task_services services_{};
};

}  // namespace troupe::detail::shared
