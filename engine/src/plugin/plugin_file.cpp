#include "plugin/plugin_file.hpp"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "troupe/sdk/errors.hpp"

namespace troupe::detail {
namespace {

namespace fs = std::filesystem;

using Ehdr = ElfW(Ehdr);
using Phdr = ElfW(Phdr);

#if __WORDSIZE == 64
constexpr unsigned char kNativeClass = ELFCLASS64;
#else
constexpr unsigned char kNativeClass = ELFCLASS32;
#endif
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr unsigned char kNativeData = ELFDATA2LSB;
#else
constexpr unsigned char kNativeData = ELFDATA2MSB;
#endif
#if defined(__x86_64__)
constexpr unsigned kNativeMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr unsigned kNativeMachine = EM_AARCH64;
#elif defined(__i386__)
constexpr unsigned kNativeMachine = EM_386;
#elif defined(__arm__)
constexpr unsigned kNativeMachine = EM_ARM;
#elif defined(__riscv)
constexpr unsigned kNativeMachine = EM_RISCV;
#elif defined(__powerpc64__)
constexpr unsigned kNativeMachine = EM_PPC64;
#elif defined(__s390x__)
constexpr unsigned kNativeMachine = EM_S390;
#else
constexpr unsigned kNativeMachine = EM_NONE;  // unknown here: dlopen checks the machine
#endif

std::string machine_name(unsigned machine) {
  switch (machine) {
    case EM_X86_64:
      return "x86-64";
    case EM_AARCH64:
      return "aarch64";
    case EM_386:
      return "i386";
    case EM_ARM:
      return "arm";
    case EM_RISCV:
      return "riscv";
    case EM_PPC64:
      return "ppc64";
    case EM_S390:
      return "s390";
    default:
      return "machine " + std::to_string(machine);
  }
}

std::string quoted(const fs::path& path) {
  return "'" + path.string() + "'";
}

const char* file_kind(mode_t mode) {
  if (S_ISFIFO(mode)) {
    return "a FIFO";
  }
  if (S_ISSOCK(mode)) {
    return "a socket";
  }
  if (S_ISCHR(mode)) {
    return "a character device";
  }
  if (S_ISBLK(mode)) {
    return "a block device";
  }
  if (S_ISDIR(mode)) {
    return "a directory";
  }
  return "not a regular file";
}

[[noreturn]] void refuse(const fs::path& shown, const std::string& what) {
  throw PluginError("plugin file " + quoted(shown) + " " + what);
}

// [offset, offset + length) within `size`, without overflow.
bool within(std::uint64_t offset, std::uint64_t length, std::uint64_t size) {
  return offset <= size && length <= size - offset;
}

// Reads exactly `length` bytes at `offset`; false on a short read.
bool read_at(int fd, void* out, std::size_t length, std::uint64_t offset) {
  auto* bytes = static_cast<unsigned char*>(out);
  while (length > 0) {
    const ssize_t n = ::pread(fd, bytes, length, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    bytes += n;
    length -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return true;
}

const char* type_name(unsigned type) {
  switch (type) {
    case ET_EXEC:
      return "an executable";
    case ET_REL:
      return "a relocatable object (.o)";
    case ET_CORE:
      return "a core dump";
    default:
      return "not a shared object";
  }
}

void check_header(const Ehdr& header, std::uint64_t size, const fs::path& shown) {
  const unsigned char* ident = header.e_ident;
  if (ident[EI_CLASS] != kNativeClass) {
    refuse(shown, std::string("is a ") + (ident[EI_CLASS] == ELFCLASS32 ? "32-bit" : "64-bit") +
                      " ELF file but this engine is " + (kNativeClass == ELFCLASS64 ? "64-bit" : "32-bit") +
                      " (or its ELF class byte is damaged); rebuild the plugin for this machine.");
  }
  if (ident[EI_DATA] != kNativeData || ident[EI_VERSION] != EV_CURRENT || header.e_version != EV_CURRENT) {
    refuse(shown, "has an ELF header of another byte order or version, or a damaged one; rebuild the plugin.");
  }
  if (header.e_type != ET_DYN) {
    refuse(shown, std::string("is ") + type_name(header.e_type) +
                      ", not a shared library; a plugin is a .so built with troupe_add_plugin().");
  }
  if (kNativeMachine != EM_NONE && header.e_machine != kNativeMachine) {
    refuse(shown, "was built for " + machine_name(header.e_machine) + " but this engine runs on " +
                      machine_name(kNativeMachine) + "; rebuild the plugin for this machine.");
  }
  if (header.e_phentsize != sizeof(Phdr) || header.e_phnum == 0 || header.e_phnum == PN_XNUM) {
    refuse(shown, "has a damaged ELF header (" + std::to_string(header.e_phnum) + " program headers of " +
                      std::to_string(header.e_phentsize) + " bytes); rebuild the plugin.");
  }
  if (!within(header.e_phoff, std::uint64_t{header.e_phnum} * sizeof(Phdr), size)) {
    refuse(shown, "is truncated or damaged: its program headers end past the end of the file (" + std::to_string(size) +
                      " bytes); rebuild or copy the plugin again.");
  }
}

void check_segments(const std::vector<Phdr>& segments, std::uint64_t size, const fs::path& shown) {
  std::size_t loads = 0;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const Phdr& segment = segments[i];
    if (!within(segment.p_offset, segment.p_filesz, size)) {
      refuse(shown, "is truncated or damaged: segment " + std::to_string(i) + " (bytes " +
                        std::to_string(segment.p_offset) + " + " + std::to_string(segment.p_filesz) +
                        ") lies past the end of the file (" + std::to_string(size) +
                        " bytes); rebuild or copy the plugin again.");
    }
    if (segment.p_type == PT_LOAD) {
      ++loads;
      if (segment.p_filesz > segment.p_memsz) {
        refuse(shown, "is damaged: loadable segment " + std::to_string(i) +
                          " is larger in the file than in memory; rebuild the plugin.");
      }
    }
  }
  if (loads == 0) {
    refuse(shown, "has no loadable segment; it is not a usable shared library. Rebuild the plugin.");
  }
}

}  // namespace

PluginFile::PluginFile(const fs::path& path, const fs::path& shown) : shown_(shown) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; the fstat below refuses it.
  fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd_ < 0) {
    const int error = errno;
    refuse(shown, std::string("cannot be read: ") + std::strerror(error) +
                      "; check the permissions of the file and its directories.");
  }
  struct stat info {};
  if (::fstat(fd_, &info) != 0) {
    const int error = errno;
    ::close(fd_);
    refuse(shown, std::string("cannot be examined: ") + std::strerror(error));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd_);
    refuse(shown, std::string("is ") + file_kind(info.st_mode) + ", not a regular file; give the plugin's .so file.");
  }
  id_ = {info.st_dev, info.st_ino};
  size_ = static_cast<std::uint64_t>(info.st_size);
}

PluginFile::~PluginFile() {
  ::close(fd_);
}

void PluginFile::check_elf() const {
  Ehdr header{};
  const bool complete = read_at(fd_, &header, sizeof header, 0) && size_ >= sizeof header;
  if (!complete || std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0) {
    const bool has_magic =
        size_ >= SELFMAG && read_at(fd_, &header, SELFMAG, 0) && std::memcmp(header.e_ident, ELFMAG, SELFMAG) == 0;
    if (!has_magic) {
      refuse(shown_, "is not a shared library (no ELF header). A plugin is a .so built with troupe_add_plugin().");
    }
    refuse(shown_, "is truncated: " + std::to_string(size_) + " bytes, less than an ELF header (" +
                       std::to_string(sizeof header) + " bytes); rebuild or copy the plugin again.");
  }
  check_header(header, size_, shown_);
  std::vector<Phdr> segments(header.e_phnum);
  if (!read_at(fd_, segments.data(), segments.size() * sizeof(Phdr), header.e_phoff)) {
    refuse(shown_, "cannot be read to its end (it shrank while being read?); try again.");
  }
  check_segments(segments, size_, shown_);
}

}  // namespace troupe::detail
