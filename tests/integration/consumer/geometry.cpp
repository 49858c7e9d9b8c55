#include <troupe/sdk.hpp>

#include <cmath>

namespace geometry {

struct Point {
  double x = 0;
  double y = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Point, x, y)

double distance(const Point& a, const Point& b) {
  return std::hypot(a.x - b.x, a.y - b.y);
}

Point midpoint(const Point& a, const Point& b) {
  return Point{(a.x + b.x) / 2, (a.y + b.y) / 2};
}

}  // namespace geometry

TROUPE_PLUGIN(geometry, "2.1.0") {
  plugin.task("distance", geometry::distance, "Euclidean distance of two points", troupe::arg("a"), troupe::arg("b"));
  plugin.task("midpoint", geometry::midpoint, "The point halfway between two points", troupe::arg("a"),
              troupe::arg("b"));
}
