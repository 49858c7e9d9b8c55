// The checks on a plugin file before dlopen maps it: damaged, truncated,
// foreign and non-regular files are PluginErrors naming the file, never a
// SIGBUS or a hang; a second path to a loaded file is that plugin.
#include "plugin/plugin_file.hpp"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <string>

#include "support/paths.hpp"
#include "troupe/registry.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using troupe::test::fixture_path;
using troupe::test::plugin_path;

std::string load_error(const fs::path& path) {
  try {
    troupe::Registry registry;
    registry.load(path);
  } catch (const troupe::PluginError& e) {
    return e.what();
  }
  return "(no PluginError)";
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("troupe-plugin-file-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_all(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A copy of a real plugin with its ELF header edited by `edit`.
template <typename Edit>
fs::path edited_plugin(const TempDir& dir, const std::string& name, Edit edit) {
  std::string bytes = read_all(fixture_path("grouped_tasks"));
  ElfW(Ehdr) header{};
  std::memcpy(&header, bytes.data(), sizeof header);
  edit(header, bytes);
  std::memcpy(bytes.data(), &header, sizeof header);
  const fs::path path = dir.path() / name;
  write_all(path, bytes);
  return path;
}

TEST(PluginFile, TruncatedPluginIsRefusedBeforeDlopenMapsIt) {
  // Cut inside its segments: dlopen would map past the end of the file and fault.
  TempDir dir;
  const std::string bytes = read_all(plugin_path("testing"));
  ASSERT_GT(bytes.size(), 16384u);
  std::size_t load_end = 0;  // past it lie only sections dlopen does not map (debug info, symbols)
  ElfW(Ehdr) header{};
  std::memcpy(&header, bytes.data(), sizeof header);
  for (std::size_t i = 0; i < header.e_phnum; ++i) {
    ElfW(Phdr) segment{};
    std::memcpy(&segment, bytes.data() + header.e_phoff + i * sizeof segment, sizeof segment);
    if (segment.p_type == PT_LOAD) {
      load_end = std::max<std::size_t>(load_end, segment.p_offset + segment.p_filesz);
    }
  }
  for (const std::size_t keep : {load_end / 2, load_end - 1, std::size_t{1024}}) {
    const fs::path path = dir.path() / ("libcut-" + std::to_string(keep) + ".so");
    write_all(path, bytes.substr(0, keep));
    EXPECT_THAT(load_error(path), AllOf(HasSubstr(path.string()), HasSubstr("is truncated or damaged"),
                                        HasSubstr("past the end of the file (" + std::to_string(keep) + " bytes)")))
        << keep;
  }
}

TEST(PluginFile, FileShorterThanAnElfHeaderIsTruncated) {
  TempDir dir;
  const fs::path path = dir.path() / "libshort.so";
  write_all(path,
            "\x7f"
            "ELF\x02\x01\x01");
  EXPECT_THAT(load_error(path), AllOf(HasSubstr(path.string()), HasSubstr("is truncated: 7 bytes")));
}

TEST(PluginFile, FifoIsRefusedWithoutBlocking) {
  TempDir dir;
  const fs::path path = dir.path() / "libfifo.so";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  auto error = std::async(std::launch::async, [&] { return load_error(path); });
  if (error.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    // Release the blocked reader so the test fails instead of hanging.
    const int writer = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);
    ::close(writer);
    FAIL() << "loading a FIFO blocked";
  }
  EXPECT_THAT(error.get(), AllOf(HasSubstr(path.string()), HasSubstr("is a FIFO, not a regular file")));
}

TEST(PluginFile, CharacterDeviceIsRefused) {
  EXPECT_THAT(load_error("/dev/null"), HasSubstr("'/dev/null' is a character device, not a regular file"));
}

TEST(PluginFile, ElfOfAnotherClassIsRefusedByName) {
  TempDir dir;
  auto path = edited_plugin(dir, "lib32.so", [](auto& h, auto&) { h.e_ident[EI_CLASS] = ELFCLASS32; });
  EXPECT_THAT(load_error(path), AllOf(HasSubstr(path.string()), HasSubstr("is a 32-bit ELF file")));
}

TEST(PluginFile, ElfForAnotherMachineIsRefusedByName) {
  TempDir dir;
  auto path = edited_plugin(dir, "libother.so",
                            [](auto& h, auto&) { h.e_machine = h.e_machine == EM_AARCH64 ? EM_X86_64 : EM_AARCH64; });
  EXPECT_THAT(load_error(path), AllOf(HasSubstr(path.string()), HasSubstr("was built for"),
                                      HasSubstr("rebuild the plugin for this machine")));
}

TEST(PluginFile, ExecutableIsNotASharedLibrary) {
  TempDir dir;
  auto path = edited_plugin(dir, "libexec.so", [](auto& h, auto&) { h.e_type = ET_EXEC; });
  EXPECT_THAT(load_error(path), AllOf(HasSubstr(path.string()), HasSubstr("is an executable, not a shared library")));
}

TEST(PluginFile, ProgramHeadersPastTheEndAreRefused) {
  TempDir dir;
  auto path =
      edited_plugin(dir, "libphoff.so", [](auto& h, const std::string& bytes) { h.e_phoff = bytes.size() - 8; });
  EXPECT_THAT(load_error(path), AllOf(HasSubstr(path.string()), HasSubstr("program headers end past the end")));
}

TEST(PluginFile, SegmentPastTheEndIsRefused) {
  TempDir dir;
  auto path = edited_plugin(dir, "libseg.so", [](auto& h, std::string& bytes) {
    ElfW(Phdr) segment{};
    std::memcpy(&segment, bytes.data() + h.e_phoff, sizeof segment);
    segment.p_offset = ~segment.p_offset;  // wraps past any size
    std::memcpy(bytes.data() + h.e_phoff, &segment, sizeof segment);
  });
  EXPECT_THAT(load_error(path), AllOf(HasSubstr(path.string()), HasSubstr("segment 0")));
}

TEST(PluginFile, HardLinkToALoadedPluginIsThatPlugin) {
  TempDir dir;
  const fs::path original = dir.path() / "libgrouped.so";
  const fs::path link = dir.path() / "libgrouped-link.so";
  fs::copy_file(fixture_path("grouped_tasks"), original);
  fs::create_hard_link(original, link);
  troupe::Registry registry;
  const troupe::Plugin& first = registry.load(original);
  const troupe::Plugin& second = registry.load(link);
  EXPECT_EQ(&first, &second);
}

TEST(PluginFile, EntryPointThatThrowsIsAPluginErrorNamingTheFile) {
  EXPECT_THAT(load_error(fixture_path("entry_throws")),
              AllOf(HasSubstr("libfixture_entry_throws.so"), HasSubstr("entry point 'troupe_plugin_entry' threw"),
                    HasSubstr("entry point could not start")));
}

}  // namespace
