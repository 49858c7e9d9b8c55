// troupe/detail/spelling.hpp
//
// "Did you mean ...?" suggestions for names users type: tasks, config keys.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace troupe::detail {

// Edit distance (insertions, deletions, substitutions, transpositions).
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidates closest to `name`, best first, within a distance that
// scales with the name's length; empty when nothing is close.
std::vector<std::string> closest_matches(std::string_view name, const std::vector<std::string>& candidates,
                                         std::size_t limit = 3);

// "; did you mean 'a' or 'b'?" or "" when there is nothing close.
std::string did_you_mean(std::string_view name, const std::vector<std::string>& candidates);

}  // namespace troupe::detail
