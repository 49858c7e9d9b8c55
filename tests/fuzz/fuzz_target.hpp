// The contract between a fuzz target and its two drivers.
//
// A target defines LLVMFuzzerTestOneInput (libFuzzer's entry point: it must
// accept any bytes; a crash, a sanitizer report or troupe_fuzz_fail() is a
// finding) and troupe_fuzz_seeds() (well-formed inputs to start from). The
// drivers: libFuzzer itself (TROUPE_BUILD_LIBFUZZER, clang), or
// replay_main.cpp, which the test suite runs under every preset.
//
// Open-ended runs, with clang:
//   cmake -S . -B build/fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DTROUPE_BUILD_LIBFUZZER=ON
//   cmake --build build/fuzz --target frame_codec_fuzz_libfuzzer
//   build/dev/tests/frame_codec_fuzz --write-seeds /tmp/seeds      # the seeds as a corpus
//   build/fuzz/fuzz/frame_codec_fuzz_libfuzzer /tmp/seeds -max_total_time=600
// A crash file it writes replays with: build/dev/tests/frame_codec_fuzz --runs 0 crash-...
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

// Well-formed inputs of the target's format.
std::vector<std::string> troupe_fuzz_seeds();

// A property that must hold for every input did not: report and abort, so
// both drivers keep the input.
[[noreturn]] inline void troupe_fuzz_fail(const std::string& what) {
  std::fprintf(stderr, "fuzz property violated: %s\n", what.c_str());
  std::abort();
}
