// troupe/log.hpp: the library's one logger, replaced, levelled and silenced
// by the host. A throwing done callback is the library's warning to see.
#include "troupe/log.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include <atomic>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "troupe/thread_pool.hpp"

namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using troupe::LogLevel;

// Every test starts and ends with the default logger.
class Log : public ::testing::Test {
 protected:
  Log() { troupe::set_logger(nullptr); }
  ~Log() override { troupe::set_logger(nullptr); }
};

// Makes the library log a warning: a done callback that throws.
void callback_throws() {
  troupe::ThreadPool pool({.max_workers = 1});
  auto f = pool.submit([] { return 1; });
  f.wait();
  f.add_done_callback([](const troupe::Future<int>&) { throw std::runtime_error("callback boom"); });
}

struct Captured {
  std::mutex mutex;
  std::vector<std::pair<LogLevel, std::string>> messages;
};

TEST_F(Log, DefaultWritesWarningsToStderr) {
  EXPECT_EQ(troupe::log_level(), LogLevel::warn);
  ::testing::internal::CaptureStderr();
  callback_throws();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(err, HasSubstr("troupe: warning: a future's done callback threw (ignored): "
                             "std::runtime_error: callback boom\n"));
}

TEST_F(Log, LevelOffSilencesTheLibrary) {
  troupe::set_log_level(LogLevel::off);
  EXPECT_EQ(troupe::log_level(), LogLevel::off);
  ::testing::internal::CaptureStderr();
  callback_throws();
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), IsEmpty());
}

TEST_F(Log, SinkReceivesLevelAndTextInsteadOfStderr) {
  Captured captured;
  troupe::set_log_sink([&](LogLevel level, std::string_view text) {
    std::lock_guard lock(captured.mutex);
    captured.messages.emplace_back(level, std::string(text));
  });
  ::testing::internal::CaptureStderr();
  callback_throws();
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), IsEmpty());
  std::lock_guard lock(captured.mutex);
  ASSERT_EQ(captured.messages.size(), 1u);
  EXPECT_EQ(captured.messages[0].first, LogLevel::warn);
  EXPECT_EQ(captured.messages[0].second, "a future's done callback threw (ignored): std::runtime_error: callback boom");
}

TEST_F(Log, SinkLevelFiltersMessages) {
  Captured captured;
  troupe::set_log_sink(
      [&](LogLevel level, std::string_view text) {
        std::lock_guard lock(captured.mutex);
        captured.messages.emplace_back(level, std::string(text));
      },
      LogLevel::error);
  callback_throws();  // a warning, below the sink's level
  std::lock_guard lock(captured.mutex);
  EXPECT_THAT(captured.messages, IsEmpty());
}

TEST_F(Log, HostLoggerReplacesTheDefault) {
  std::ostringstream out;
  auto host = std::make_shared<spdlog::logger>("host", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  host->set_pattern("[%n %l] %v");
  troupe::set_logger(host);
  EXPECT_EQ(troupe::get_logger(), host);
  ::testing::internal::CaptureStderr();
  callback_throws();
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), IsEmpty());
  EXPECT_THAT(out.str(), HasSubstr("[host warning] a future's done callback threw (ignored): "));
  troupe::set_logger(nullptr);
  EXPECT_NE(troupe::get_logger(), host);
  EXPECT_EQ(troupe::log_level(), LogLevel::warn);
}

TEST_F(Log, ReplacingTheLoggerWhileTasksLogIsSafe) {
  std::atomic<int> delivered{0};
  troupe::set_log_sink([&](LogLevel, std::string_view) { delivered.fetch_add(1); });
  std::atomic<bool> stop{false};
  std::thread swapper([&] {
    while (!stop.load()) {
      troupe::set_log_sink([&](LogLevel, std::string_view) { delivered.fetch_add(1); });
      troupe::set_log_level(LogLevel::warn);
    }
  });
  troupe::ThreadPool pool({.max_workers = 2});
  std::vector<troupe::Future<int>> futures;
  for (int i = 0; i < 200; ++i) {
    futures.push_back(pool.submit([i] { return i; }));
  }
  for (auto& f : futures) {
    f.add_done_callback([](const troupe::Future<int>&) { throw std::runtime_error("boom"); });
  }
  pool.shutdown({.wait = true});  // its workers have exited, so every callback has run
  stop = true;
  swapper.join();
  EXPECT_EQ(delivered.load(), 200);  // every warning reached one of the sinks
}

}  // namespace
