#include "troupe/detail/spelling.hpp"

#include <gtest/gtest.h>

namespace {

using troupe::detail::closest_matches;
using troupe::detail::did_you_mean;
using troupe::detail::edit_distance;

TEST(Spelling, EditDistanceCountsTranspositionsOnce) {
  EXPECT_EQ(edit_distance("words", "words"), 0u);
  EXPECT_EQ(edit_distance("wrods", "words"), 1u);
  EXPECT_EQ(edit_distance("wrds", "words"), 1u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
}

TEST(Spelling, SuggestsNearestFirstAndNothingFarAway) {
  std::vector<std::string> names{"text.words", "text.tokenize", "text.word_counts"};
  EXPECT_EQ(closest_matches("text.wrds", names), (std::vector<std::string>{"text.words"}));
  EXPECT_TRUE(closest_matches("image.resize", names).empty());
  EXPECT_EQ(did_you_mean("tokenize", names), "; did you mean 'text.tokenize'?");
  EXPECT_EQ(did_you_mean("zzz", names), "");
}

}  // namespace
