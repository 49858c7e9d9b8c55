// A job's items, streamed from its JobInputSpec in bounded memory (one
// line, one directory listing at a time), each with its key.
#pragma once

#include <cstdint>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>

#include "pipeline/job_key.hpp"
#include "troupe/engine_spec.hpp"
#include "troupe/sdk/value.hpp"

namespace troupe::detail::pipeline {

struct InputItem {
  JobKey key;
  std::uint64_t position = 0;  // 0-based order in the input
  Value value;                 // the task's first argument
  // Set for an item that cannot be run (a JSONL line that does not parse,
  // a missing or non-string/integer key field): an InputError naming the
  // file:line and the reason. The job records it as a failed item (key =
  // line number) and goes on.
  std::exception_ptr error = nullptr;
};

class JobInput {
 public:
  virtual ~JobInput() = default;
  // The next item, or nullopt at the end. Throws InputError when the input
  // as a whole fails (a file that cannot be read, a directory that
  // vanished), naming the file and the reason.
  virtual std::optional<InputItem> next() = 0;
};

// Opens `spec`; throws InputError naming the file when it cannot be
// opened. `from` inputs read `upstream_output` (the upstream job's JSON
// Lines): its ok records, `value` as the item, the upstream key kept.
std::unique_ptr<JobInput> open_input(const JobInputSpec& spec, const std::filesystem::path& upstream_output = {});

}  // namespace troupe::detail::pipeline
