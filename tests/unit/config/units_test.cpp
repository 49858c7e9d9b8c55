#include "troupe/config/units.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;
using troupe::config::ConfigValueError;
using troupe::config::parse_duration;
using troupe::config::parse_size;

TEST(Units, DurationsInEveryUnit) {
  EXPECT_EQ(parse_duration("250ms"), 250ms);
  EXPECT_EQ(parse_duration("30s"), 30s);
  EXPECT_EQ(parse_duration("5m"), 5min);
  EXPECT_EQ(parse_duration("1h"), 1h);
  EXPECT_EQ(parse_duration("1.5s"), 1500ms);
  EXPECT_EQ(parse_duration("10"), 10s);
  EXPECT_EQ(parse_duration(" 20us "), 20us);
  EXPECT_EQ(parse_duration("0"), 0s);
}

TEST(Units, BadDurationsSayWhatWasExpected) {
  EXPECT_THROW(parse_duration("soon"), ConfigValueError);
  EXPECT_THROW(parse_duration("-1s"), ConfigValueError);
  try {
    parse_duration("5 parsecs");
    FAIL();
  } catch (const ConfigValueError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("unknown duration unit 'parsecs'"));
  }
}

TEST(Units, SizesBinaryAndDecimal) {
  EXPECT_EQ(parse_size("512MiB"), 512ull << 20);
  EXPECT_EQ(parse_size("2GiB"), 2ull << 30);
  EXPECT_EQ(parse_size("1GB"), 1000000000ull);
  EXPECT_EQ(parse_size("4096"), 4096ull);
  EXPECT_EQ(parse_size("1.5KiB"), 1536ull);
}

TEST(Units, BadSizesSayWhatWasExpected) {
  EXPECT_THROW(parse_size("lots"), ConfigValueError);
  EXPECT_THROW(parse_size("12 parsecs"), ConfigValueError);
}

TEST(Units, OverflowAndFractionalBytesAreRejected) {
  EXPECT_THROW(parse_size("100000000TB"), ConfigValueError);
  EXPECT_THROW(parse_size("1.5"), ConfigValueError);
  EXPECT_THROW(parse_size("0.3KiB"), ConfigValueError);
  EXPECT_THROW(parse_duration("9223372037s"), ConfigValueError);
  EXPECT_EQ(parse_size("15TiB"), 15ull << 40);
}

}  // namespace
