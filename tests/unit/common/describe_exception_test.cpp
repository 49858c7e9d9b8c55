// troupe::describe_exception and exception_chain: the one printer the
// library and the CLI share.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <exception>
#include <stdexcept>
#include <string>

#include "troupe/errors.hpp"
#include "troupe/process_errors.hpp"

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using troupe::ExceptionInfo;

template <class Throw>
std::exception_ptr caught(Throw&& fn) {
  try {
    fn();
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

std::exception_ptr initializer_error_with_cause() {
  return caught([] {
    try {
      throw std::invalid_argument("no database");
    } catch (...) {
      std::throw_with_nested(troupe::InitializerError("the initializer of worker 1 threw"));
    }
  });
}

TEST(DescribeException, NamesTheTypeNotTheNestedExceptionWrapper) {
  const auto text = troupe::describe_exception(initializer_error_with_cause());
  EXPECT_EQ(text,
            "troupe::InitializerError: the initializer of worker 1 threw\n"
            "  caused by: std::invalid_argument: no database");
  EXPECT_THAT(text, Not(HasSubstr("_Nested_exception")));
}

TEST(DescribeException, FollowsEveryLevel) {
  auto error = caught([] {
    try {
      try {
        throw std::out_of_range("index 9");
      } catch (...) {
        std::throw_with_nested(std::runtime_error("reading row"));
      }
    } catch (...) {
      std::throw_with_nested(troupe::BrokenPoolError("pool broke"));
    }
  });
  EXPECT_THAT(troupe::exception_chain(error), ElementsAre(ExceptionInfo{"troupe::BrokenPoolError", "pool broke"},
                                                          ExceptionInfo{"std::runtime_error", "reading row"},
                                                          ExceptionInfo{"std::out_of_range", "index 9"}));
}

TEST(DescribeException, RemoteErrorPrintsItsRemoteTypeAndEachCauseOnce) {
  // What a process pool delivers: the outer RemoteError's what() already
  // mentions its cause, which is also nested as a RemoteError.
  auto error = caught([] {
    try {
      throw troupe::RemoteError("std::invalid_argument", "why", "");
    } catch (...) {
      std::throw_with_nested(troupe::RemoteError("TestingError", "boom", "#0 trace",
                                                 "TestingError: boom (caused by std::invalid_argument: why)"));
    }
  });
  EXPECT_EQ(troupe::describe_exception(error),
            "TestingError: boom\n"
            "  caused by: std::invalid_argument: why");
}

TEST(DescribeException, ACauseEqualToAnEarlierLinkIsPrintedOnce) {
  auto error = caught([] {
    try {
      try {
        throw std::runtime_error("disk full");
      } catch (...) {
        std::throw_with_nested(std::runtime_error("disk full"));
      }
    } catch (...) {
      std::throw_with_nested(troupe::Error("saving failed"));
    }
  });
  EXPECT_EQ(troupe::describe_exception(error),
            "troupe::Error: saving failed\n  caused by: std::runtime_error: disk full");
}

TEST(DescribeException, NonStandardExceptionsAreNamedByType) {
  EXPECT_EQ(troupe::describe_exception(caught([] { throw 42; })), "int");
  auto nested = caught([] {
    try {
      throw 7L;
    } catch (...) {
      std::throw_with_nested(std::logic_error("outer"));
    }
  });
  EXPECT_EQ(troupe::describe_exception(nested), "std::logic_error: outer\n  caused by: long");
}

TEST(DescribeException, NullIsNoError) {
  EXPECT_EQ(troupe::describe_exception(nullptr), "no error");
  EXPECT_TRUE(troupe::exception_chain(nullptr).empty());
}

}  // namespace
