// troupe/sdk/abi.hpp
//
// The plain C header every plugin's entry point returns first.
//
// Guarantees: the first four fields keep their offsets in every SDK ABI
// version, so an engine can read and refuse a plugin of another version
// without touching anything else. `describe` is called only after
// `abi_version` and `build_key` matched the engine's.
#pragma once

#include <stddef.h>
#include <stdint.h>

extern "C" {

struct troupe_plugin_header {
  uint32_t struct_size;
  uint32_t abi_version;
  const char* build_key;
  const char* plugin_name;
  const char* plugin_version;
  const char* sdk_version;
  // Fills the troupe::PluginDescriptor pointed to by `descriptor`; may throw.
  void (*describe)(void* descriptor);
};

// What the engine offers a running task beyond the TaskContext members
// (shared counters and dicts, progress, logging). The engine owns it and
// fills `struct_size` with the bytes it provides; later SDKs append members
// and read one only when it lies within `struct_size`, so growing the table
// needs no ABI bump. TaskContext::services() is null when the engine
// offers none.
//
// Shared counters and dicts (troupe/sdk/shared.hpp wraps them): `shared` is
// the engine's state, passed back to find_counter/find_dict, which return a
// handle or null for a name the pool does not have. Keys are bytes, values
// bytes in the SDK's shared-value encoding. Dict calls return 0 when done,
// 1 when the key is absent (get, erase), -1 on an error whose message went
// to `error`. dict_update calls `fn` under the entry's lock with the current
// value (`present` 0 when absent); `fn` returns 0 to store `*out`, 1 to
// erase, 2 when it failed (nothing changes, dict_update returns 2).
struct troupe_bytes_sink {
  void* user;
  void (*append)(void* user, const char* data, size_t size);
};
typedef int troupe_dict_update_fn(void* user, const char* value, size_t size, int present, const char** out,
                                  size_t* out_size);
typedef void troupe_dict_entry_fn(void* user, const char* key, size_t key_size, const char* value, size_t size);

struct troupe_task_services {
  uint32_t struct_size;
  void* shared;
  void* (*find_counter)(void* shared, const char* name, size_t name_size);
  void* (*find_dict)(void* shared, const char* name, size_t name_size);
  int64_t (*counter_add)(void* counter, int64_t delta);  // the value after
  int64_t (*counter_load)(void* counter);
  int (*dict_get)(void* dict, const char* key, size_t key_size, struct troupe_bytes_sink* value,
                  struct troupe_bytes_sink* error);
  int (*dict_set)(void* dict, const char* key, size_t key_size, const char* value, size_t size,
                  struct troupe_bytes_sink* error);
  int (*dict_erase)(void* dict, const char* key, size_t key_size, struct troupe_bytes_sink* error);
  int (*dict_update)(void* dict, const char* key, size_t key_size, troupe_dict_update_fn* fn, void* user,
                     struct troupe_bytes_sink* error);
  int (*dict_snapshot)(void* dict, troupe_dict_entry_fn* fn, void* user, struct troupe_bytes_sink* error);
};

// The exported entry point (a Boost.DLL alias named troupe_plugin_entry in
// the "troupe" section) has this type.
typedef const troupe_plugin_header* troupe_plugin_entry_fn(void);
}

namespace troupe {
// The symbol every plugin exports.
inline constexpr const char* kPluginEntrySymbol = "troupe_plugin_entry";
// The section Boost.DLL puts it in, readable without loading the library.
inline constexpr const char* kPluginEntrySection = "troupe";
}  // namespace troupe
