#include "pipeline/glob_walk.hpp"

#include <dirent.h>
#include <fnmatch.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "troupe/errors.hpp"

namespace troupe::detail::pipeline {
namespace {

bool has_wildcard(const std::string& component) {
  return component.find_first_of("*?[") != std::string::npos;
}

bool hidden(const std::string& name) {
  return !name.empty() && name.front() == '.';
}

struct DirCloser {
  void operator()(DIR* dir) const noexcept { ::closedir(dir); }
};

}  // namespace

GlobWalk::GlobWalk(const std::string& pattern) : pattern_(pattern) {
  if (pattern.empty() || pattern.front() != '/') {
    throw InputError("glob '" + pattern + "': the pattern must be an absolute path");
  }
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= pattern.size()) {
    std::size_t slash = pattern.find('/', start);
    if (slash == std::string::npos) {
      slash = pattern.size();
    }
    if (slash > start) {
      parts.push_back(pattern.substr(start, slash - start));
    }
    start = slash + 1;
  }
  std::filesystem::path prefix("/");
  std::size_t first_wild = 0;
  while (first_wild < parts.size() && !has_wildcard(parts[first_wild])) {
    prefix /= parts[first_wild];
    ++first_wild;
  }
  if (first_wild == parts.size()) {
    literal_ = prefix;
    return;
  }
  components_.assign(parts.begin() + static_cast<std::ptrdiff_t>(first_wild), parts.end());
  enter(prefix, closure({0}), true);
}

// `states` with each `**` also skipped over (it may match no directory).
std::vector<std::size_t> GlobWalk::closure(std::vector<std::size_t> states) const {
  for (std::size_t i = 0; i < states.size(); ++i) {
    const std::size_t s = states[i];
    if (s < components_.size() && components_[s] == "**") {
      states.push_back(s + 1);
    }
  }
  std::sort(states.begin(), states.end());
  states.erase(std::unique(states.begin(), states.end()), states.end());
  return states;
}

bool GlobWalk::matches(std::size_t state, const std::string& name) const {
  return ::fnmatch(components_[state].c_str(), name.c_str(), FNM_PERIOD) == 0;
}

void GlobWalk::enter(std::filesystem::path directory, std::vector<std::size_t> states, bool root) {
  std::unique_ptr<DIR, DirCloser> dir(::opendir(directory.c_str()));
  if (!dir) {
    if (root && (errno == ENOENT || errno == ENOTDIR)) {
      return;  // nothing can match below a start directory that is not there
    }
    const int error = errno;  // before building the message can change it
    throw InputError("glob '" + pattern_ + "': cannot read directory '" + directory.string() +
                     "': " + std::strerror(error));
  }
  Frame frame{std::move(directory), std::move(states), {}, 0};
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(dir.get());
    if (entry == nullptr) {
      if (errno != 0) {
        const int error = errno;  // before building the message can change it
        throw InputError("glob '" + pattern_ + "': cannot read directory '" + frame.directory.string() +
                         "': " + std::strerror(error));
      }
      break;
    }
    std::string name = entry->d_name;
    if (name == "." || name == "..") {
      continue;
    }
    bool wanted = false;
    for (std::size_t s : frame.states) {
      if (s < components_.size() &&
          ((components_[s] == "**" && !hidden(name)) || (components_[s] != "**" && matches(s, name)))) {
        wanted = true;
        break;
      }
    }
    if (!wanted) {
      continue;
    }
    Type type = Type::unknown;
    if (entry->d_type == DT_DIR) {
      type = Type::directory;
    } else if (entry->d_type != DT_UNKNOWN && entry->d_type != DT_LNK) {
      type = Type::other;
    }
    frame.entries.push_back({std::move(name), type});
  }
  std::sort(frame.entries.begin(), frame.entries.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  stack_.push_back(std::move(frame));
}

std::optional<std::filesystem::path> GlobWalk::next() {
  if (literal_) {
    std::error_code error;
    const auto status = std::filesystem::status(*literal_, error);
    auto path = std::move(*literal_);
    literal_.reset();
    if (!error && std::filesystem::exists(status) && !std::filesystem::is_directory(status)) {
      return path;
    }
    return std::nullopt;
  }
  while (!stack_.empty()) {
    Frame& top = stack_.back();
    if (top.cursor == top.entries.size()) {
      stack_.pop_back();
      continue;
    }
    const Entry& entry = top.entries[top.cursor++];
    std::vector<std::size_t> next_states;
    for (std::size_t s : top.states) {
      if (s >= components_.size()) {
        continue;
      }
      if (components_[s] == "**") {
        if (!hidden(entry.name)) {
          next_states.push_back(s);
        }
      } else if (matches(s, entry.name)) {
        next_states.push_back(s + 1);
      }
    }
    next_states = closure(std::move(next_states));
    std::filesystem::path path = top.directory / entry.name;
    Type type = entry.type;
    if (type == Type::unknown) {
      std::error_code error;
      const auto link = std::filesystem::symlink_status(path, error);
      if (error) {
        continue;  // gone since the listing: it no longer matches
      }
      if (std::filesystem::is_symlink(link)) {
        const auto target = std::filesystem::status(path, error);
        type = !error && std::filesystem::is_directory(target) ? Type::unknown : Type::other;
        if (type == Type::unknown) {
          continue;  // a link to a directory: neither entered nor produced
        }
      } else {
        type = std::filesystem::is_directory(link) ? Type::directory : Type::other;
      }
    }
    if (type == Type::directory) {
      next_states.erase(std::remove(next_states.begin(), next_states.end(), components_.size()), next_states.end());
      if (!next_states.empty()) {
        enter(std::move(path), std::move(next_states), false);  // invalidates `top`
      }
      continue;
    }
    if (std::binary_search(next_states.begin(), next_states.end(), components_.size())) {
      return path;
    }
  }
  return std::nullopt;
}

}  // namespace troupe::detail::pipeline
