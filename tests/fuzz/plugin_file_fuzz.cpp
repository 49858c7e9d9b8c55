// The plugin loader's checks before dlopen against mutated ELF headers and
// program headers: every file is accepted or refused with PluginError,
// never anything else, never a crash or a hang; an accepted file has its
// program headers and every segment within its size (what dlopen relies
// on to map it without faulting). The file is a memfd, reached by path as
// the loader reaches a plugin; nothing is ever dlopened.
#include <elf.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "fuzz_target.hpp"
#include "plugin/plugin_file.hpp"
#include "troupe/sdk/errors.hpp"

namespace {

using Ehdr = ElfW(Ehdr);
using Phdr = ElfW(Phdr);

int memfd() {
  static const int fd = ::memfd_create("troupe-plugin-file-fuzz", MFD_CLOEXEC);
  if (fd < 0) {
    troupe_fuzz_fail("memfd_create failed");
  }
  return fd;
}

// An independent reading of "within the file", for accepted inputs.
void check_accepted(const std::string& bytes) {
  Ehdr header{};
  std::memcpy(&header, bytes.data(), sizeof header);
  const std::uint64_t size = bytes.size();
  const std::uint64_t table_end = header.e_phoff + std::uint64_t{header.e_phnum} * sizeof(Phdr);
  if (header.e_phoff > size || table_end > size) {
    troupe_fuzz_fail("accepted a file whose program headers end past it");
  }
  for (std::size_t i = 0; i < header.e_phnum; ++i) {
    Phdr segment{};
    std::memcpy(&segment, bytes.data() + header.e_phoff + i * sizeof segment, sizeof segment);
    if (segment.p_offset > size || segment.p_filesz > size - segment.p_offset) {
      troupe_fuzz_fail("accepted a file with segment " + std::to_string(i) + " past its end");
    }
  }
}

// A small well-formed shared object image: header, `loads` PT_LOAD
// segments and a PT_DYNAMIC inside the last one.
std::string image(std::size_t loads, std::size_t body) {
  Ehdr header{};
  std::memcpy(header.e_ident, ELFMAG, SELFMAG);
  header.e_ident[EI_CLASS] = sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32;
  header.e_ident[EI_DATA] = ELFDATA2LSB;
  header.e_ident[EI_VERSION] = EV_CURRENT;
  header.e_type = ET_DYN;
#if defined(__x86_64__)
  header.e_machine = EM_X86_64;
#elif defined(__aarch64__)
  header.e_machine = EM_AARCH64;
#endif
  header.e_version = EV_CURRENT;
  header.e_phoff = sizeof header;
  header.e_phentsize = sizeof(Phdr);
  header.e_phnum = static_cast<ElfW(Half)>(loads + 1);
  header.e_ehsize = sizeof header;
  const std::size_t data_start = sizeof header + (loads + 1) * sizeof(Phdr);
  std::string out(data_start + loads * body, '\0');
  std::memcpy(out.data(), &header, sizeof header);
  for (std::size_t i = 0; i <= loads; ++i) {
    Phdr segment{};
    const bool dynamic = i == loads;
    segment.p_type = dynamic ? PT_DYNAMIC : PT_LOAD;
    segment.p_offset = dynamic ? data_start + (loads - 1) * body : data_start + i * body;
    segment.p_vaddr = segment.p_offset;
    segment.p_filesz = dynamic ? body / 2 : body;
    segment.p_memsz = segment.p_filesz;
    segment.p_align = dynamic ? 8 : 4096;
    std::memcpy(out.data() + sizeof header + i * sizeof segment, &segment, sizeof segment);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const int fd = memfd();
  if (::ftruncate(fd, 0) != 0 || (size > 0 && ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size))) {
    troupe_fuzz_fail("cannot write the memfd");
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  try {
    troupe::detail::PluginFile file(path, "fuzz-input.so");
    file.check_elf();
    check_accepted(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const troupe::PluginError& e) {
    if (std::string(e.what()).find("'fuzz-input.so'") == std::string::npos) {
      troupe_fuzz_fail(std::string("a refusal that does not name the file: ") + e.what());
    }
  } catch (const std::exception& e) {
    troupe_fuzz_fail(std::string("unexpected exception: ") + e.what());
  }
  return 0;
}

std::vector<std::string> troupe_fuzz_seeds() {
  std::string wrong_machine = image(2, 64);
  wrong_machine[18] ^= 0x01;
  std::string cut = image(2, 128);
  cut.resize(cut.size() - 100);
  return {image(1, 32), image(2, 64), image(4, 16), wrong_machine, cut, std::string(ELFMAG) + "\x02\x01\x01"};
}
