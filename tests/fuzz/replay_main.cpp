// Runs a fuzz target without libFuzzer, as the test suite does: the
// target's seeds, then `--runs` inputs mutated from them by a fixed-seed
// generator, so a failure replays exactly with the same arguments. Files
// named on the command line (a libFuzzer crash, say) are run first.
//   <target> [--runs N] [--seed S] [--write-seeds DIR] [FILE...]
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_target.hpp"

namespace {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  std::uint64_t next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return state_;
  }
  std::size_t below(std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(next() % n); }

 private:
  std::uint64_t state_;
};

// Bytes that sit on format boundaries: MessagePack type bytes, sign and
// width edges, digits and unit letters for the text formats.
constexpr std::array<std::uint8_t, 24> kInteresting = {0x00, 0x01, 0x7f, 0x80, 0xff, 0xc0, 0xc2, 0xc3,
                                                       0xc4, 0xc6, 0xca, 0xcb, 0xcf, 0xd3, 0xd9, 0xdb,
                                                       0xdc, 0xdd, 0xde, 0xdf, '9',  '.',  'G',  '-'};

std::string mutate(std::string input, const std::vector<std::string>& pool, Rng& rng) {
  const std::size_t edits = 1 + rng.below(4);
  for (std::size_t e = 0; e < edits; ++e) {
    const std::size_t at = rng.below(input.size() + 1);
    switch (rng.below(7)) {
      case 0:  // flip a bit
        if (!input.empty()) {
          input[std::min(at, input.size() - 1)] ^= static_cast<char>(1u << rng.below(8));
        }
        break;
      case 1:  // an interesting byte
        if (!input.empty()) {
          input[std::min(at, input.size() - 1)] = static_cast<char>(kInteresting[rng.below(kInteresting.size())]);
        }
        break;
      case 2: {  // insert random bytes
        std::string bytes(1 + rng.below(8), '\0');
        for (char& c : bytes) {
          c = static_cast<char>(rng.next());
        }
        input.insert(at, bytes);
        break;
      }
      case 3:  // erase a range
        input.erase(at, 1 + rng.below(16));
        break;
      case 4: {  // duplicate a range
        const std::string piece = input.substr(at, 1 + rng.below(32));
        input.insert(rng.below(input.size() + 1), piece);
        break;
      }
      case 5: {  // splice: this input's head, another's tail
        const std::string& other = pool[rng.below(pool.size())];
        input = input.substr(0, at) + other.substr(rng.below(other.size() + 1));
        break;
      }
      default:  // overwrite with random bytes
        for (std::size_t i = at; i < std::min(input.size(), at + 1 + rng.below(4)); ++i) {
          input[i] = static_cast<char>(rng.next());
        }
        break;
    }
  }
  return input;
}

void run_one(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t runs = 20000;
  std::uint64_t seed = 1;
  std::string write_dir;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--runs" || arg == "--seed" || arg == "--write-seeds") && i + 1 < argc) {
      const std::string value = argv[++i];
      if (arg == "--runs") {
        runs = std::stoull(value);
      } else if (arg == "--seed") {
        seed = std::stoull(value);
      } else {
        write_dir = value;
      }
    } else if (arg.starts_with("--")) {
      std::fprintf(stderr, "usage: %s [--runs N] [--seed S] [--write-seeds DIR] [FILE...]\n", argv[0]);
      return 2;
    } else {
      files.push_back(arg);
    }
  }

  std::vector<std::string> pool = troupe_fuzz_seeds();
  if (!write_dir.empty()) {
    std::filesystem::create_directories(write_dir);
    for (std::size_t i = 0; i < pool.size(); ++i) {
      std::ofstream(std::filesystem::path(write_dir) / ("seed-" + std::to_string(i)), std::ios::binary) << pool[i];
    }
    std::printf("wrote %zu seeds to %s\n", pool.size(), write_dir.c_str());
    return 0;
  }
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "cannot read %s\n", file.c_str());
      return 2;
    }
    run_one(std::string(std::istreambuf_iterator<char>(in), {}));
  }
  for (const auto& s : pool) {
    run_one(s);
  }
  // Mutants of mutants reach deeper; the pool stays bounded.
  constexpr std::size_t kPoolLimit = 512;
  Rng rng(seed);
  for (std::size_t i = 0; i < runs; ++i) {
    std::string input = mutate(pool[rng.below(pool.size())], pool, rng);
    run_one(input);
    if (pool.size() < kPoolLimit) {
      pool.push_back(std::move(input));
    } else if (rng.below(4) == 0) {
      pool[rng.below(pool.size())] = std::move(input);
    }
  }
  std::printf("%zu files, %zu seeds and %zu mutated inputs ran clean (seed %llu)\n", files.size(),
              troupe_fuzz_seeds().size(), runs, static_cast<unsigned long long>(seed));
  return 0;
}
