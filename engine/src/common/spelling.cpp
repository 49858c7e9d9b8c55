#include "troupe/detail/spelling.hpp"

#include <algorithm>
#include <cctype>
#include <numeric>
#include <utility>

namespace troupe::detail {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment distance, case-insensitive.
  const std::size_t n = a.size();
  const std::size_t m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) {
    d[i][0] = i;
  }
  for (std::size_t j = 0; j <= m; ++j) {
    d[0][j] = j;
  }
  auto lower = [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  };
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::vector<std::string> closest_matches(std::string_view name, const std::vector<std::string>& candidates,
                                         std::size_t limit) {
  const std::size_t threshold = std::max<std::size_t>(2, name.size() / 3);
  std::vector<std::pair<std::size_t, std::string>> scored;
  for (const auto& candidate : candidates) {
    std::size_t distance = edit_distance(name, candidate);
    // A name that is a suffix of the candidate ("words" vs "text.words") is close too.
    if (candidate.size() > name.size() && !name.empty() &&
        candidate.compare(candidate.size() - name.size(), name.size(), name) == 0 &&
        candidate[candidate.size() - name.size() - 1] == '.') {
      distance = 1;
    }
    if (distance <= threshold) {
      scored.emplace_back(distance, candidate);
    }
  }
  std::stable_sort(scored.begin(), scored.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<std::string> out;
  for (auto& [distance, candidate] : scored) {
    if (out.size() == limit) {
      break;
    }
    out.push_back(std::move(candidate));
  }
  return out;
}

std::string did_you_mean(std::string_view name, const std::vector<std::string>& candidates) {
  auto matches = closest_matches(name, candidates);
  if (matches.empty()) {
    return {};
  }
  std::string out = "; did you mean ";
  for (std::size_t i = 0; i < matches.size(); ++i) {
    if (i != 0) {
      out += i + 1 == matches.size() ? " or " : ", ";
    }
    out += "'" + matches[i] + "'";
  }
  return out + "?";
}

}  // namespace troupe::detail
