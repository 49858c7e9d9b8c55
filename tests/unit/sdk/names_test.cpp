// The rules for task, initializer and finalizer names, checked when a
// plugin registers them: visible UTF-8 without dots.
#include "troupe/sdk/names.hpp"

#include <troupe/sdk.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

struct BadName {
  std::string name;
  std::string shown;    // as the message escapes it
  std::string problem;  // part of the message
};

std::vector<BadName> bad_names() {
  return {
      {"", "", "is empty"},
      {"a.b", "a.b", "contains a dot"},
      {"two words", "two\\x20words", "whitespace"},
      {"tab\there", "tab\\x09here", "whitespace"},
      {"line\nbreak", "line\\x0abreak", "control"},
      {"bell\x07", "bell\\x07", "control"},
      {"del\x7f", "del\\x7f", "control"},
      {"c1\xc2\x85", "c1\\u0085", "control"},         // NEXT LINE
      {"nb\xc2\xa0sp", "nb\\u00a0sp", "whitespace"},  // NO-BREAK SPACE
      {"zero\xe2\x80\x8b"
       "width",
       "zero\\u200bwidth", "invisible"},  // ZERO WIDTH SPACE
      {"\xe2\x80\xae"
       "evil",
       "\\u202eevil", "invisible"},  // RIGHT-TO-LEFT OVERRIDE
      {"\xef\xbb\xbf"
       "bom",
       "\\ufeffbom", "invisible"},
      {"ideo\xe3\x80\x80sp", "ideo\\u3000sp", "whitespace"},   // IDEOGRAPHIC SPACE
      {"caf\xc3", "caf\\xc3", "not valid UTF-8 (at byte 3)"},  // truncated sequence
      {"\xff", "\\xff", "not valid UTF-8"},
      {"over\xc0\xaf", "over\\xc0\\xaf", "not valid UTF-8"},                  // overlong '/'
      {"sur\xed\xa0\x80", "sur\\xed\\xa0\\x80", "not valid UTF-8"},           // a UTF-16 surrogate
      {"big\xf4\x90\x80\x80", "big\\xf4\\x90\\x80\\x80", "not valid UTF-8"},  // past U+10FFFF
  };
}

TEST(PluginNames, TaskNamesMustBeVisibleUtf8WithoutDots) {
  for (const auto& bad : bad_names()) {
    troupe::PluginDescriptor descriptor;
    descriptor.name = "demo";
    troupe::PluginBuilder plugin(descriptor);
    try {
      plugin.task(bad.name, [] { return 1; });
      ADD_FAILURE() << "accepted task name '" << troupe::detail::escaped_name(bad.name) << "'";
    } catch (const troupe::PluginError& e) {
      EXPECT_THAT(e.what(), AllOf(HasSubstr("task name '" + bad.shown + "' in plugin 'demo'"), HasSubstr(bad.problem)));
    }
    EXPECT_TRUE(descriptor.tasks.empty());
  }
}

TEST(PluginNames, HookNamesFollowTheSameRules) {
  troupe::PluginDescriptor descriptor;
  descriptor.name = "demo";
  troupe::PluginBuilder plugin(descriptor);
  EXPECT_THROW(plugin.initializer("open\tdict", [] {}), troupe::PluginError);
  EXPECT_THROW(plugin.finalizer("close\xe2\x80\x8b", [] {}), troupe::PluginError);
  EXPECT_THROW(plugin.finalizer("\xc3", [] {}), troupe::PluginError);
}

TEST(PluginNames, VisibleUnicodeNamesAreAccepted) {
  troupe::PluginDescriptor descriptor;
  descriptor.name = "demo";
  troupe::PluginBuilder plugin(descriptor);
  for (const char* name : {"words", "snake_case-2", "größe", "日本語", "emoji\xf0\x9f\x98\x80", "a/b:c"}) {
    EXPECT_NO_THROW(plugin.task(name, [] { return 1; })) << name;
  }
  EXPECT_EQ(descriptor.tasks.size(), 6u);
}

TEST(PluginNames, EscapingKeepsVisibleTextAndEscapesTheRest) {
  EXPECT_EQ(troupe::detail::escaped_name("größe"), "größe");
  EXPECT_EQ(troupe::detail::escaped_name("a\\b"), "a\\x5cb");
  EXPECT_EQ(troupe::detail::escaped_name("\x01\xff"), "\\x01\\xff");
}

}  // namespace
