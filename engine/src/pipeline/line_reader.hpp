// A file read line by line through one buffer: memory is the longest line,
// never the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace troupe::detail::pipeline {

struct Line {
  std::string_view text;     // without '\n' (a '\r' before it stays)
  std::uint64_t number = 0;  // 1-based
  std::uint64_t offset = 0;  // of its first byte in the file
  bool terminated = false;   // ended by '\n' (false only for the last line)
};

class LineReader {
 public:
  // Throws InputError "`what` 'path': cannot open: reason".
  LineReader(const std::filesystem::path& path, std::string_view what);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line (valid until the next call), or nullopt at the end of the
  // file. An empty file has no lines; "a\n" has one. Throws InputError
  // naming the path when a read fails.
  std::optional<Line> next();

  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  bool fill();

  std::filesystem::path path_;
  std::string what_;
  int fd_ = -1;
  std::string buffer_;
  std::size_t begin_ = 0;            // unread bytes are buffer_[begin_, buffer_.size())
  std::uint64_t buffer_offset_ = 0;  // file offset of buffer_[0]
  std::uint64_t line_number_ = 0;
  bool eof_ = false;
};

}  // namespace troupe::detail::pipeline
