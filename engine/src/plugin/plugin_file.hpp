// A plugin file opened and checked before dlopen may map it.
//
// dlopen trusts the file: a program header or PT_LOAD segment past the end
// of a truncated file becomes a SIGBUS when the mapping is touched, and
// opening a FIFO blocks until someone writes to it. So the loader opens the
// path without blocking, makes sure it is a regular file, and reads the ELF
// header and program headers itself: the ELF class, byte order, type and
// machine must be this process's, and every program header and segment
// must lie within the file's size. Anything else is a troupe::PluginError
// naming the file.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>

namespace troupe::detail {

// The file's identity: a hard link or another path to it is the same file.
struct FileId {
  dev_t device = 0;
  ino_t inode = 0;
  friend auto operator<=>(const FileId&, const FileId&) = default;
};

class PluginFile {
 public:
  // Opens `path` with O_NONBLOCK and refuses anything but a regular file.
  // `shown` is the path as the user gave it, for messages.
  PluginFile(const std::filesystem::path& path, const std::filesystem::path& shown);
  ~PluginFile();
  PluginFile(const PluginFile&) = delete;
  PluginFile& operator=(const PluginFile&) = delete;

  FileId id() const noexcept { return id_; }

  // Throws PluginError unless the file is an ELF shared object of this
  // process's class and machine whose program headers and segments lie
  // within the file.
  void check_elf() const;

 private:
  int fd_ = -1;
  FileId id_;
  std::uint64_t size_ = 0;
  std::filesystem::path shown_;
};

}  // namespace troupe::detail
