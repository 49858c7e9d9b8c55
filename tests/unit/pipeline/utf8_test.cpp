// valid_utf8 (engine/src/pipeline/utf8.cpp): what JSON output can hold.
#include "pipeline/utf8.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using troupe::detail::pipeline::valid_utf8;

const std::string kFffd = "\xEF\xBF\xBD";

TEST(ValidUtf8, ValidTextIsUnchanged) {
  for (const std::string& text :
       std::vector<std::string>{"", "plain ascii", "caf\xC3\xA9", "\xE2\x82\xAC 5", "\xF0\x9F\x98\x80",
                                "\xF4\x8F\xBF\xBF", std::string("nul\0inside", 10)}) {
    EXPECT_EQ(valid_utf8(text), text);
  }
}

TEST(ValidUtf8, StrayAndTruncatedBytesBecomeOneReplacementEach) {
  EXPECT_EQ(valid_utf8("\xFF"), kFffd);
  EXPECT_EQ(valid_utf8("a\x80z"), "a" + kFffd + "z");
  EXPECT_EQ(valid_utf8("end \xE2\x82"), "end " + kFffd);  // a sequence cut short at the end
  EXPECT_EQ(valid_utf8("\xC3(x"), kFffd + "(x");
  EXPECT_EQ(valid_utf8("\xFE\xFF"), kFffd + kFffd);
}

TEST(ValidUtf8, OverlongSurrogatesAndPastUnicodeAreRefused) {
  EXPECT_EQ(valid_utf8("\xC0\xAF"), kFffd);          // overlong '/'
  EXPECT_EQ(valid_utf8("\xE0\x80\xAF"), kFffd);      // overlong, 3 bytes
  EXPECT_EQ(valid_utf8("\xED\xA0\x80"), kFffd);      // U+D800, a surrogate
  EXPECT_EQ(valid_utf8("\xF4\x90\x80\x80"), kFffd);  // U+110000
  EXPECT_EQ(valid_utf8("\xF0\x80\x80\x80"), kFffd);  // overlong, 4 bytes
}

}  // namespace
