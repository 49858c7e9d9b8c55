// troupe/sdk/config.hpp
//
// Versions and the build key that a plugin and the engine must share.
//
// The build key names everything that must match for C++ objects to cross
// the plugin boundary: compiler family and major version, the standard
// library and its ABI, the Itanium C++ ABI version, the Value library's
// version and the SDK ABI version. The engine compares it, as a plain C
// string, before touching any C++ object a plugin made.
#pragma once

#include <nlohmann/json.hpp>

#define TROUPE_VERSION_MAJOR 0
#define TROUPE_VERSION_MINOR 1
#define TROUPE_VERSION_PATCH 0
#define TROUPE_VERSION_STRING "0.1.0"

// Bump when anything in sdk/ that crosses the boundary changes layout or
// meaning: the C header, PluginDescriptor, TaskInfo, Worker, TaskContext.
// 1: first release. 2: TaskContext carries a services table
// (troupe_task_services, grown by appending), TaskInfo a group.
#define TROUPE_SDK_ABI_VERSION 2

#define TROUPE_DETAIL_STR_(x) #x
#define TROUPE_DETAIL_STR(x) TROUPE_DETAIL_STR_(x)

#if defined(__clang__)
#define TROUPE_DETAIL_COMPILER_KEY "clang-" TROUPE_DETAIL_STR(__clang_major__)
#elif defined(__GNUC__)
#define TROUPE_DETAIL_COMPILER_KEY "gcc-" TROUPE_DETAIL_STR(__GNUC__)
#else
#define TROUPE_DETAIL_COMPILER_KEY "unknown-compiler"
#endif

// <nlohmann/json.hpp> has pulled in the standard library's config macros.
#if defined(_LIBCPP_VERSION)
#define TROUPE_DETAIL_STDLIB_KEY "libc++-abi" TROUPE_DETAIL_STR(_LIBCPP_ABI_VERSION)
#elif defined(__GLIBCXX__)
#if defined(_GLIBCXX_DEBUG)
#define TROUPE_DETAIL_STDLIB_DEBUG ";glibcxx-debug"
#else
#define TROUPE_DETAIL_STDLIB_DEBUG ""
#endif
#define TROUPE_DETAIL_STDLIB_KEY \
  "libstdc++-cxx11abi" TROUPE_DETAIL_STR(_GLIBCXX_USE_CXX11_ABI) TROUPE_DETAIL_STDLIB_DEBUG
#else
#define TROUPE_DETAIL_STDLIB_KEY "unknown-stdlib"
#endif

#if defined(__GXX_ABI_VERSION)
#define TROUPE_DETAIL_CXXABI_KEY "cxxabi" TROUPE_DETAIL_STR(__GXX_ABI_VERSION)
#else
#define TROUPE_DETAIL_CXXABI_KEY "cxxabi-unknown"
#endif

#define TROUPE_DETAIL_JSON_KEY                                                           \
  "nlohmann-json-" TROUPE_DETAIL_STR(NLOHMANN_JSON_VERSION_MAJOR) "." TROUPE_DETAIL_STR( \
      NLOHMANN_JSON_VERSION_MINOR) "." TROUPE_DETAIL_STR(NLOHMANN_JSON_VERSION_PATCH) "-" TROUPE_DETAIL_STR(NLOHMANN_JSON_ABI_TAGS)

// e.g. "gcc-12;libstdc++-cxx11abi1;cxxabi1017;nlohmann-json-3.11.2-json_abi;troupe-sdk-abi2"
// clang-format off
#define TROUPE_BUILD_KEY                                                                  \
  TROUPE_DETAIL_COMPILER_KEY ";" TROUPE_DETAIL_STDLIB_KEY ";" TROUPE_DETAIL_CXXABI_KEY ";" \
  TROUPE_DETAIL_JSON_KEY ";troupe-sdk-abi" TROUPE_DETAIL_STR(TROUPE_SDK_ABI_VERSION)
// clang-format on

// Types that cross the plugin boundary keep default visibility even in
// plugins built with -fvisibility=hidden, so their type_info compares equal
// across libraries and `catch (const troupe::Error&)` works in the host.
#define TROUPE_SDK_VISIBLE __attribute__((visibility("default")))
