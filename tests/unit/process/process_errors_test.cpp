// Error records across the process boundary (engine/src/process/process_errors.cpp):
// cutting a record to fit a frame, and rebuilding a long chain on the host.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "process/error_record.hpp"
#include "process/frame_codec.hpp"
#include "troupe/errors.hpp"
#include "troupe/process_errors.hpp"

namespace troupe::detail::process {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::size_t encoded_size(const Value& v) {
  std::vector<std::uint8_t> bytes;
  MsgpackWriter(bytes).value(v);
  return bytes.size();
}

Value record_with_causes(std::size_t causes, std::size_t bytes) {
  Value record = error_record("outer::Error", std::string(bytes, 'o'));
  for (std::size_t i = 0; i < causes; ++i) {
    record["causes"].push_back(Value{{"type", "cause::Error"}, {"message", std::string(bytes, 'c')}});
  }
  return record;
}

TEST(ErrorRecord, RecordThatFitsComesBackUnchanged) {
  const Value record = record_with_causes(3, 100);
  EXPECT_EQ(fit_error_record(record, 4096), record);
}

TEST(ErrorRecord, RecordOverTheLimitIsCutAndMarked) {
  Value record = record_with_causes(2, 10000);
  record["trace"] = std::string(10000, 't');
  const Value fitted = fit_error_record(record, 4096);
  EXPECT_LE(encoded_size(fitted), 4096u);
  EXPECT_EQ(fitted.at("type"), "outer::Error");
  EXPECT_THAT(fitted.at("message").get<std::string>(), StartsWith("ooo"));
  EXPECT_THAT(fitted.at("message").get<std::string>(), HasSubstr(" of 10000 bytes]"));
  EXPECT_THAT(fitted.at("trace").get<std::string>(), HasSubstr("[... cut: "));
  ASSERT_EQ(fitted.at("causes").size(), 2u);
  EXPECT_THAT(fitted.at("causes")[1].at("message").get<std::string>(), HasSubstr("[... cut: "));
}

TEST(ErrorRecord, ChainTooLongForTheLimitLosesItsLastCausesMarked) {
  const Value fitted = fit_error_record(record_with_causes(31, 2000), 1024);
  EXPECT_LE(encoded_size(fitted), 1024u);
  const auto& causes = fitted.at("causes");
  ASSERT_GE(causes.size(), 1u);
  EXPECT_LT(causes.size(), 31u);
  EXPECT_THAT(causes.back().at("message").get<std::string>(), HasSubstr("more causes cut)"));
}

TEST(ErrorRecord, CutKeepsMultibyteCharactersWhole) {
  std::string message;
  for (int i = 0; i < 3000; ++i) {
    message += "\xc3\xa9";  // é: two bytes
  }
  const Value fitted = fit_error_record(error_record("e::Error", message), 1001);
  EXPECT_LE(encoded_size(fitted), 1001u);
  EXPECT_NO_THROW((void)fitted.dump());  // nlohmann refuses a cut UTF-8 sequence
}

// A 32-level chain of 100 KB messages: each link's what() names its causes,
// but cut short, so the whole chain holds about twice the messages, not
// their square (56 MB before).
TEST(ErrorRecord, LongChainIsRebuiltInLinearMemory) {
  const std::size_t bytes = 100'000;
  const std::size_t causes = 31;
  const auto error = exception_from_record(record_with_causes(causes, bytes));
  std::size_t held = 0;
  std::size_t links = 0;
  for (std::exception_ptr link = error; link != nullptr; ++links) {
    try {
      std::rethrow_exception(link);
    } catch (const RemoteError& e) {
      held += std::strlen(e.what()) + e.remote_message().size();
      EXPECT_EQ(e.remote_message().size(), bytes);
      link = nested_cause(e);
    }
  }
  EXPECT_EQ(links, causes + 1);
  const std::size_t messages = (causes + 1) * bytes;
  EXPECT_LE(held, 2 * messages + 1'000'000);
}

}  // namespace
}  // namespace troupe::detail::process
