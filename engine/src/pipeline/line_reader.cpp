#include "pipeline/line_reader.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "troupe/errors.hpp"

namespace troupe::detail::pipeline {
namespace {

constexpr std::size_t kChunk = 64 * 1024;

}  // namespace

LineReader::LineReader(const std::filesystem::path& path, std::string_view what) : path_(path), what_(what) {
  do {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd_ < 0 && errno == EINTR);
  if (fd_ < 0) {
    const int error = errno;  // before building the message can change it
    throw InputError(what_ + " '" + path.string() + "': cannot open: " + std::strerror(error));
  }
}

LineReader::~LineReader() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

// Reads one more chunk after the unread bytes; false at the end of the file.
bool LineReader::fill() {
  if (eof_) {
    return false;
  }
  if (begin_ > 0) {
    buffer_.erase(0, begin_);
    buffer_offset_ += begin_;
    begin_ = 0;
  }
  const std::size_t kept = buffer_.size();
  buffer_.resize(kept + kChunk);
  ssize_t got = 0;
  do {
    got = ::read(fd_, buffer_.data() + kept, kChunk);
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    const int error = errno;
    buffer_.resize(kept);
    throw InputError(what_ + " '" + path_.string() + "': cannot read: " + std::strerror(error));
  }
  buffer_.resize(kept + static_cast<std::size_t>(got));
  if (got == 0) {
    eof_ = true;
    return false;
  }
  return true;
}

std::optional<Line> LineReader::next() {
  std::size_t searched = begin_;
  for (;;) {
    const std::size_t newline = buffer_.find('\n', searched);
    if (newline != std::string::npos) {
      Line line{std::string_view(buffer_).substr(begin_, newline - begin_), ++line_number_, buffer_offset_ + begin_,
                true};
      begin_ = newline + 1;
      return line;
    }
    searched = buffer_.size() - begin_;  // relative: fill() moves the unread bytes to the front
    if (!fill()) {
      break;
    }
  }
  if (begin_ == buffer_.size()) {
    return std::nullopt;
  }
  Line line{std::string_view(buffer_).substr(begin_), ++line_number_, buffer_offset_ + begin_, false};
  begin_ = buffer_.size();
  return line;
}

}  // namespace troupe::detail::pipeline
