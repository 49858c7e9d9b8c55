// The library logger: one spdlog::logger behind a mutex, never destroyed, so
// code that logs during static destruction (a pool torn down at exit) still
// finds it.
#include "common/log.hpp"

#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>
#include <string>
#include <utility>

namespace troupe {
namespace {

static_assert(static_cast<int>(LogLevel::trace) == spdlog::level::trace &&
                  static_cast<int>(LogLevel::warn) == spdlog::level::warn &&
                  static_cast<int>(LogLevel::off) == spdlog::level::off,
              "troupe::LogLevel mirrors spdlog::level::level_enum");

spdlog::level::level_enum to_spdlog(LogLevel level) {
  return static_cast<spdlog::level::level_enum>(level);
}

std::shared_ptr<spdlog::logger> make_default_logger() {
  auto logger = std::make_shared<spdlog::logger>("troupe", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("%n: %l: %v");
  logger->set_level(spdlog::level::warn);
  return logger;
}

// Hands each message to the host's callback; base_sink serialises the calls.
class CallbackSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit CallbackSink(LogSink callback) : callback_(std::move(callback)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    callback_(static_cast<LogLevel>(msg.level), std::string_view(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}

 private:
  LogSink callback_;
};

struct LoggerState {
  std::mutex mutex;
  std::shared_ptr<spdlog::logger> logger = make_default_logger();
};

LoggerState& state() {
  static auto* instance = new LoggerState();
  return *instance;
}

std::shared_ptr<spdlog::logger> current() {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  return s.logger;
}

}  // namespace

void set_logger(std::shared_ptr<spdlog::logger> logger) {
  auto replacement = logger ? std::move(logger) : make_default_logger();
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.logger = std::move(replacement);
}

std::shared_ptr<spdlog::logger> get_logger() {
  return current();
}

void set_log_level(LogLevel level) {
  current()->set_level(to_spdlog(level));
}

LogLevel log_level() {
  return static_cast<LogLevel>(current()->level());
}

void set_log_sink(LogSink sink, LogLevel level) {
  if (!sink) {
    set_logger(nullptr);
    return;
  }
  auto logger = std::make_shared<spdlog::logger>("troupe", std::make_shared<CallbackSink>(std::move(sink)));
  logger->set_level(to_spdlog(level));
  set_logger(std::move(logger));
}

namespace detail {

bool log_enabled(LogLevel level) noexcept {
  try {
    return current()->should_log(to_spdlog(level));
  } catch (...) {
    return false;
  }
}

void log(LogLevel level, std::string_view message) noexcept {
  try {
    auto logger = current();
    logger->log(to_spdlog(level), spdlog::string_view_t(message.data(), message.size()));
    if (level >= LogLevel::critical) {
      logger->flush();
    }
  } catch (...) {
    // A logger that throws (a host sink, a full disk) must not take the
    // caller down: logging happens on noexcept paths.
  }
}

}  // namespace detail
}  // namespace troupe
