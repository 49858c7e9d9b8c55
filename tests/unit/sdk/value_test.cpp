// Value conversions and round trips: what plugin authors rely on when their
// typed parameters and results cross C++, JSON and MessagePack.
#include <troupe/sdk.hpp>

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace {

struct Point {
  int x = 0;
  int y = 0;
  bool operator==(const Point&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Point, x, y)

template <typename T>
T round_trip_msgpack(const T& value) {
  troupe::Value v = value;
  auto bytes = troupe::Value::to_msgpack(v);
  return troupe::Value::from_msgpack(bytes).get<T>();
}

TEST(Value, ArithmeticAndStringsRoundTrip) {
  EXPECT_EQ(round_trip_msgpack(42), 42);
  EXPECT_EQ(round_trip_msgpack(-7LL), -7LL);
  EXPECT_EQ(round_trip_msgpack(18446744073709551615ULL), 18446744073709551615ULL);
  EXPECT_DOUBLE_EQ(round_trip_msgpack(2.5), 2.5);
  EXPECT_EQ(round_trip_msgpack(true), true);
  EXPECT_EQ(round_trip_msgpack(std::string("héllo")), "héllo");
}

TEST(Value, ContainersRoundTrip) {
  std::vector<int> list{1, 2, 3};
  EXPECT_EQ(round_trip_msgpack(list), list);
  std::map<std::string, double> dict{{"a", 1.5}, {"b", -2}};
  EXPECT_EQ(round_trip_msgpack(dict), dict);
  std::pair<int, std::string> pair{1, "one"};
  EXPECT_EQ(round_trip_msgpack(pair), pair);
  std::tuple<int, bool, std::string> tuple{1, false, "x"};
  EXPECT_EQ(round_trip_msgpack(tuple), tuple);
  std::vector<std::vector<int>> nested{{1}, {}, {2, 3}};
  EXPECT_EQ(round_trip_msgpack(nested), nested);
}

TEST(Value, OptionalIsNullWhenEmpty) {
  std::optional<int> empty;
  std::optional<int> full = 5;
  EXPECT_TRUE(troupe::Value(empty).is_null());
  EXPECT_EQ(troupe::Value(full), troupe::Value(5));
  EXPECT_EQ(troupe::Value(nullptr).get<std::optional<int>>(), std::nullopt);
  EXPECT_EQ(troupe::Value(7).get<std::optional<int>>(), 7);
  std::vector<std::optional<std::string>> mixed{"a", std::nullopt};
  EXPECT_EQ(round_trip_msgpack(mixed), mixed);
}

TEST(Value, UserStructsConvertThroughAdl) {
  Point p{3, -4};
  troupe::Value v = p;
  EXPECT_EQ(v, (troupe::Value{{"x", 3}, {"y", -4}}));
  EXPECT_EQ(round_trip_msgpack(p), p);
  EXPECT_EQ(troupe::Value::parse(R"({"x":1,"y":2})").get<Point>(), (Point{1, 2}));
}

TEST(Value, BinaryRoundTripsThroughMessagePack) {
  troupe::Value v = troupe::binary({0, 1, 2, 255});
  ASSERT_TRUE(v.is_binary());
  auto back = troupe::Value::from_msgpack(troupe::Value::to_msgpack(v));
  ASSERT_TRUE(back.is_binary());
  EXPECT_EQ(back.get_binary(), v.get_binary());
}

TEST(TypeName, DescribesParameterTypes) {
  using troupe::detail::type_name;
  EXPECT_EQ(type_name<int>(), "int");
  EXPECT_EQ(type_name<unsigned long>(), "uint");
  EXPECT_EQ(type_name<double>(), "float");
  EXPECT_EQ(type_name<const std::string&>(), "string");
  EXPECT_EQ(type_name<std::vector<int>>(), "list[int]");
  EXPECT_EQ((type_name<std::map<std::string, double>>()), "dict[string, float]");
  EXPECT_EQ(type_name<std::optional<bool>>(), "bool?");
  EXPECT_EQ((type_name<std::tuple<int, std::string>>()), "tuple[int, string]");
  EXPECT_EQ(type_name<troupe::Value>(), "any");
  EXPECT_EQ(type_name<Point>(), "Point");
}

}  // namespace
