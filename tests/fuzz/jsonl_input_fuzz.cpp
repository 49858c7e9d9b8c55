// Arbitrary bytes as a jsonl input file, a `from` upstream output and an
// output to resume from: reading them ends in items or an InputError,
// never a crash or another exception. Items keep the promises their
// consumers rely on: line-number keys grow, an error item has a line-number
// key, and a scan's valid prefix is a prefix that scans whole.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <variant>
#include <vector>

#include "fuzz_target.hpp"
#include "pipeline/job_input.hpp"
#include "pipeline/job_output.hpp"
#include "troupe/errors.hpp"

namespace {

using troupe::InputError;
using troupe::JobInputSpec;
namespace pipeline = troupe::detail::pipeline;

// One file per process, rewritten for each input, removed at exit.
class FuzzFile {
 public:
  FuzzFile() {
    std::string name = (std::filesystem::temp_directory_path() / "troupe_jsonl_fuzz_XXXXXX").string();
    const int fd = ::mkstemp(name.data());
    if (fd < 0) {
      troupe_fuzz_fail("cannot create a temporary file");
    }
    ::close(fd);
    path_ = name;
  }
  ~FuzzFile() { std::filesystem::remove(path_); }
  FuzzFile(const FuzzFile&) = delete;
  FuzzFile& operator=(const FuzzFile&) = delete;

  const std::filesystem::path& write(const std::uint8_t* data, std::size_t size) {
    std::FILE* file = std::fopen(path_.c_str(), "wb");
    if (file == nullptr || (size > 0 && std::fwrite(data, 1, size, file) != size) || std::fclose(file) != 0) {
      troupe_fuzz_fail("cannot write the temporary file");
    }
    return path_;
  }
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

FuzzFile& fuzz_file() {
  static FuzzFile file;
  return file;
}

void read_jsonl(const std::filesystem::path& path, bool with_key_field) {
  JobInputSpec spec;
  spec.kind = JobInputSpec::Kind::jsonl;
  spec.path = path;
  if (with_key_field) {
    spec.key_field = "id";
  }
  auto input = pipeline::open_input(spec);
  std::int64_t last_line = 0;
  std::uint64_t expected_position = 0;
  while (auto item = input->next()) {
    if (item->position != expected_position++) {
      troupe_fuzz_fail("jsonl positions are not 0, 1, 2, ...");
    }
    if (item->error || !with_key_field) {
      const auto* line = std::get_if<std::int64_t>(&item->key);
      if (line == nullptr || *line <= last_line) {
        troupe_fuzz_fail("a jsonl item without its own key field is not keyed by a growing line number");
      }
      last_line = *line;
    }
    if (item->error) {
      try {
        std::rethrow_exception(item->error);
      } catch (const InputError&) {
      } catch (...) {
        troupe_fuzz_fail("a jsonl item error is not an InputError");
      }
    }
  }
}

void read_from(const std::filesystem::path& path) {
  JobInputSpec spec;
  spec.kind = JobInputSpec::Kind::from;
  spec.from = "upstream";
  try {
    auto input = pipeline::open_input(spec, path);
    while (auto item = input->next()) {
      if (item->error) {
        troupe_fuzz_fail("a from item without key_field has an error");
      }
    }
  } catch (const InputError&) {
  }
}

void scan(const std::filesystem::path& path, std::size_t size) {
  pipeline::OutputScan result;
  try {
    result = pipeline::scan_output(path);
  } catch (const InputError&) {
    return;
  }
  if (result.valid_bytes > size) {
    troupe_fuzz_fail("scan_output's valid prefix is longer than the file");
  }
  if (result.ok_count != result.ok.size() || result.failed_count != result.failed.size()) {
    troupe_fuzz_fail("scan_output's counts disagree with its sets");
  }
  if (!result.torn_tail && result.valid_bytes != size) {
    troupe_fuzz_fail("scan_output left bytes out without calling the tail torn");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& path = fuzz_file().write(data, size);
  try {
    read_jsonl(path, false);
    read_jsonl(path, true);
  } catch (const InputError&) {
    troupe_fuzz_fail("a readable jsonl file threw instead of giving items");
  }
  read_from(path);
  scan(path, size);
  return 0;
}

std::vector<std::string> troupe_fuzz_seeds() {
  return {
      "",
      "\n",
      "{\"id\":1}\n{\"id\":\"a\"}\n",
      "1\n2\n3",
      "{\"a\":[1,2,{\"b\":null}]}\r\n\r\n\"s\"\n",
      "{\"id\":18446744073709551615}\n{\"id\":-9223372036854775808}\n",
      "not json\n{\"id\":true}\n[\n",
      "{\"key\":1,\"ok\":true,\"value\":{\"n\":1},\"attempts\":1,\"worker\":0,\"ms\":0.5}\n"
      "{\"key\":\"b\",\"ok\":false,\"error\":{\"type\":\"E\",\"message\":\"m\",\"causes\":[],\"traceback\":\"\"},"
      "\"attempts\":2,\"worker\":null,\"ms\":3}\n",
      "{\"key\":1,\"ok\":true,\"value\":1}\n{\"key\":2,\"ok\":tr",
      "\xEF\xBB\xBF{\"id\":\"\xC3\xA9\"}\n\"\xFF\"\n",
  };
}
