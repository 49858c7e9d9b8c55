// find_wide_integer and integer_fits (engine/src/common/json_integers.cpp):
// the integer literals that a JSON or YAML reader would quietly round.
#include "troupe/detail/json_integers.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace {

using ::testing::HasSubstr;
using troupe::detail::find_wide_integer;
using troupe::detail::integer_fits;
using troupe::detail::wide_integer_message;

TEST(JsonIntegers, TheSixtyFourBitLimitsFitAndOnePastDoesNot) {
  EXPECT_TRUE(integer_fits("0"));
  EXPECT_TRUE(integer_fits("+7"));
  EXPECT_TRUE(integer_fits("18446744073709551615"));
  EXPECT_TRUE(integer_fits("-9223372036854775808"));
  EXPECT_TRUE(integer_fits("00000000000000000000000042"));
  EXPECT_FALSE(integer_fits("18446744073709551616"));
  EXPECT_FALSE(integer_fits("-9223372036854775809"));
  EXPECT_FALSE(integer_fits(""));
  EXPECT_FALSE(integer_fits("-"));
  EXPECT_FALSE(integer_fits("1.5"));
}

TEST(JsonIntegers, FindsTheFirstWideIntegerAnywhereInTheValue) {
  const auto wide = find_wide_integer(R"({"a": [1, 2], "b": {"c": -9223372036854775809}, "d": 99999999999999999999})");
  ASSERT_TRUE(wide.has_value());
  EXPECT_EQ(wide->literal, "-9223372036854775809");
  EXPECT_EQ(wide->offset, 25u);
  EXPECT_EQ(find_wide_integer("18446744073709551616")->literal, "18446744073709551616");
  EXPECT_EQ(find_wide_integer(R"(["\\", "x\"", 18446744073709551616])")->literal, "18446744073709551616");
}

TEST(JsonIntegers, FloatsStringsAndIntegersThatFitAreNotReported) {
  for (const char* json :
       {"18446744073709551615", "-9223372036854775808", "1e30", "1.5", "18446744073709551616.0", "1E+400",
        "184467440737095516160e-1", R"("18446744073709551616")", R"(["a \"99999999999999999999\" b", 3])",
        R"({"99999999999999999999": 1})", R"("\\" 1)", "[true, null, false]"}) {
    EXPECT_FALSE(find_wide_integer(json).has_value()) << json;
  }
}

TEST(JsonIntegers, TheMessageSaysTheRangeAndHowToPassIt) {
  EXPECT_EQ(wide_integer_message("18446744073709551616"),
            "the integer 18446744073709551616 is outside -2^63..2^64-1, which no integer type holds; pass it as a "
            "string (\"18446744073709551616\"), or as a float written with a decimal point or an exponent "
            "(18446744073709551616.0) if losing its low digits is fine");
  EXPECT_THAT(wide_integer_message(std::string(500, '9')),
              HasSubstr("the integer 999999999999999999999999999999... (500 characters) is outside"));
}

}  // namespace
