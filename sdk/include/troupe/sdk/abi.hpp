// troupe/sdk/abi.hpp
//
// The plain C header every plugin's entry point returns first.
//
// Guarantees: the first four fields keep their offsets in every SDK ABI
// version, so an engine can read and refuse a plugin of another version
// without touching anything else. `describe` is called only after
// `abi_version` and `build_key` matched the engine's.
#pragma once

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
struct troupe_task_services {
  uint32_t struct_size;
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
