#include "throw_trace.hpp"

#include <dlfcn.h>

#include <boost/stacktrace.hpp>
#include <mutex>
#include <optional>
#include <sstream>
#include <typeinfo>
#include <unordered_map>

namespace {

thread_local std::optional<boost::stacktrace::stacktrace> t_last_throw;
thread_local bool t_capturing = false;

using CxaThrow = void (*)(void*, std::type_info*, void (*)(void*));

CxaThrow real_cxa_throw() {
  static const CxaThrow real = reinterpret_cast<CxaThrow>(::dlsym(RTLD_NEXT, "__cxa_throw"));
  return real;
}

std::string take_trace_impl() {
  if (!t_last_throw) {
    return {};
  }
  static std::mutex cache_mutex;
  static std::unordered_map<const void*, std::string> cache;  // symbolizing is slow; frames repeat
  std::string text;
  std::size_t index = 0;
  for (const auto& frame : *t_last_throw) {
    std::string line;
    {
      std::lock_guard lock(cache_mutex);
      auto it = cache.find(frame.address());
      if (it == cache.end()) {
        std::ostringstream out;
        out << frame;
        it = cache.emplace(frame.address(), out.str()).first;
      }
      line = it->second;
    }
    text += std::to_string(index++) + "# " + line + "\n";
  }
  t_last_throw.reset();
  return text;
}

}  // namespace

namespace troupe::worker {

void forget_last_throw() {
  t_last_throw.reset();
}

std::string take_trace() {
  return take_trace_impl();
}

}  // namespace troupe::worker

// Every throw in the worker (plugins included) records where it happened, so
// a remote error carries the throw site's stack, not the catch site's.
namespace __cxxabiv1 {
extern "C" [[noreturn]] void __cxa_throw(void* object, std::type_info* type, void (*destructor)(void*)) {
  if (!t_capturing) {
    t_capturing = true;
    try {
      t_last_throw.emplace(1, 48);
    } catch (...) {
      t_last_throw.reset();
    }
    t_capturing = false;
  }
  real_cxa_throw()(object, type, destructor);
  __builtin_unreachable();
}
}  // namespace __cxxabiv1
