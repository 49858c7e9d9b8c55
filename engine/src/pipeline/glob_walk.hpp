// The paths an absolute glob pattern names, in sorted order, read one
// directory at a time: memory is the listings on the way down, never the
// tree.
//
// `*`, `?` and `[...]` match within one path component and never a leading
// '.'; `**` as a whole component matches any number of directories (zero
// included) and does not enter hidden ones; symbolic links to directories
// are neither entered nor produced. Only
// entries that are not directories are produced. Order: as
// std::filesystem::path compares, component by component (each directory's
// entries by bytes), so "a/z.txt" comes before "a.txt".
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace troupe::detail::pipeline {

class GlobWalk {
 public:
  // Throws InputError when `pattern` is not absolute.
  explicit GlobWalk(const std::string& pattern);

  // The next matching path, or nullopt at the end. A missing start
  // directory matches nothing; a directory that cannot be read below it
  // throws InputError naming it and the reason.
  std::optional<std::filesystem::path> next();

 private:
  enum class Type : unsigned char { directory, other, unknown };
  struct Entry {
    std::string name;
    Type type;
  };
  struct Frame {
    std::filesystem::path directory;
    std::vector<std::size_t> states;  // pattern components still to match
    std::vector<Entry> entries;       // those that may match, sorted by name
    std::size_t cursor = 0;
  };

  void enter(std::filesystem::path directory, std::vector<std::size_t> states, bool root);

  std::vector<std::size_t> closure(std::vector<std::size_t> states) const;
  bool matches(std::size_t state, const std::string& name) const;

  std::string pattern_;
  std::vector<std::string> components_;  // after the literal prefix
  std::vector<Frame> stack_;
  std::optional<std::filesystem::path> literal_;  // a pattern without wildcards
};

}  // namespace troupe::detail::pipeline
