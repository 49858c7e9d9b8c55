// troupe/log.hpp
//
// The one logger all library output goes through (spdlog). By default it
// writes warnings and worse to stderr as `troupe: warning: ...`; the host
// can level it, silence it (LogLevel::off), hand it its own spdlog logger,
// or route every message to a callback.
//
// Guarantees: the library never writes to stderr or stdout itself; each
// setter takes effect for messages logged after it returns. Thread safety:
// every function may be called from any thread. This header does not
// include spdlog: set_logger()'s caller includes <spdlog/logger.h> of the
// spdlog version libtroupe was built with. libtroupe compiles spdlog and fmt
// in (header-only), so it does not load them: each troupe-worker's start-up
// would pay for mapping them.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

namespace spdlog {
class logger;
}  // namespace spdlog

namespace troupe {

// spdlog's levels, in order.
enum class LogLevel { trace, debug, info, warn, error, critical, off };

// Replaces the library's logger; null restores the default (stderr, warn).
void set_logger(std::shared_ptr<spdlog::logger> logger);
// The logger in use now.
std::shared_ptr<spdlog::logger> get_logger();

// Sets the current logger's level; LogLevel::off silences the library.
void set_log_level(LogLevel level);
LogLevel log_level();

// Routes each message at or above `level` to `sink` (level, message text,
// without pattern) instead of stderr; a null sink restores the default.
// The sink may run on any thread, one call at a time; it must not throw.
using LogSink = std::function<void(LogLevel, std::string_view)>;
void set_log_sink(LogSink sink, LogLevel level = LogLevel::warn);

}  // namespace troupe
