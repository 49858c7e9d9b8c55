// KeySet: integer keys as runs of consecutive keys whose positions are
// consecutive too (so a run of any length costs one map node and still knows
// every key's position), and every other key in an open-addressing table of
// 12-byte slots: the key itself (integers) or its 64-bit hash (strings), and
// the position that first had it.
#include "pipeline/job_key.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace troupe::detail::pipeline {

Value key_to_json(const JobKey& key) {
  return std::visit([](const auto& k) { return Value(k); }, key);
}

std::optional<JobKey> key_from_json(const Value& json) {
  if (json.is_number_unsigned()) {
    const auto n = json.get<std::uint64_t>();
    if (n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::nullopt;
    }
    return JobKey(static_cast<std::int64_t>(n));
  }
  if (json.is_number_integer()) {
    return JobKey(json.get<std::int64_t>());
  }
  if (json.is_string()) {
    return JobKey(json.get<std::string>());
  }
  return std::nullopt;
}

std::string describe(const JobKey& key) {
  return key_to_json(key).dump(-1, ' ', false, Value::error_handler_t::replace);
}

namespace {

__extension__ typedef unsigned __int128 Wide;  // NOLINT: the one way to name it under -Wpedantic

// splitmix64's finalizer: spreads integer keys (often consecutive) and
// string hashes alike over the table.
std::uint64_t mix(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Linear probing over 12-byte slots of {word, position}, where `word` is
// the key (integers) or its hash (strings); occupancy in a separate bitmap
// so every word value is a valid key. Kept between 80% and 92% full (it
// grows by 15% when full to 92%), so a key costs 13 to 15 bytes of table.
// A position past 2^32 - 2 (inputs of over four billion items) goes to a
// side map, found through a marker in the slot.
class SlotTable {
 public:
  std::size_t size() const noexcept { return size_; }
  std::size_t memory_bytes() const noexcept {
    return slots_.capacity() * sizeof(Slot) + used_.capacity() * sizeof(std::uint64_t) +
           far_positions_.size() * kFarEntryBytes;
  }

  std::optional<std::uint64_t> find(std::uint64_t word) const noexcept {
    if (slots_.empty()) {
      return std::nullopt;
    }
    for (std::size_t i = home(word);; i = next(i)) {
      if (!used(i)) {
        return std::nullopt;
      }
      if (slots_[i].word() == word) {
        return position_of(slots_[i]);
      }
    }
  }

  // Adds `word` unless present; returns the position it had.
  std::optional<std::uint64_t> insert(std::uint64_t word, std::uint64_t position) {
    if (auto earlier = find(word)) {
      return earlier;
    }
    if ((size_ + 1) * 100 > slots_.size() * kMaxLoadPercent) {
      grow();
    }
    if (position >= kFarPosition) {
      far_positions_[word] = position;
    }
    place(Slot::of(word, position));
    ++size_;
    return std::nullopt;
  }

  // Removes `word` (present), shifting later slots of its cluster back so
  // probing never stops early at the hole.
  void erase(std::uint64_t word) {
    std::size_t hole = home(word);
    while (slots_[hole].word() != word) {
      hole = next(hole);
    }
    if (slots_[hole].position == kFarPosition) {
      far_positions_.erase(word);
    }
    for (std::size_t i = next(hole); used(i); i = next(i)) {
      const std::size_t want = home(slots_[i].word());
      // The slot at i may move to the hole when its home is not cyclically in (hole, i].
      const bool stays = hole < i ? (want > hole && want <= i) : (want > hole || want <= i);
      if (!stays) {
        slots_[hole] = slots_[i];
        hole = i;
      }
    }
    set_used(hole, false);
    --size_;
  }

 private:
  // Three 32-bit halves, so a slot is 12 bytes, not 16.
  struct Slot {
    std::uint32_t low;
    std::uint32_t high;
    std::uint32_t position;  // kFarPosition: in far_positions_

    static Slot of(std::uint64_t word, std::uint64_t position) noexcept {
      return {static_cast<std::uint32_t>(word), static_cast<std::uint32_t>(word >> 32),
              static_cast<std::uint32_t>(std::min<std::uint64_t>(position, kFarPosition))};
    }
    std::uint64_t word() const noexcept { return (std::uint64_t{high} << 32) | low; }
  };
  static_assert(sizeof(Slot) == 12);

  static constexpr std::uint32_t kFarPosition = std::numeric_limits<std::uint32_t>::max();
  static constexpr std::size_t kMaxLoadPercent = 92;
  // An unordered_map node (next pointer, pair) and its bucket, rounded up
  // to malloc's granularity.
  static constexpr std::size_t kFarEntryBytes = 48;

  std::uint64_t position_of(const Slot& slot) const noexcept {
    if (slot.position != kFarPosition) {
      return slot.position;
    }
    return far_positions_.find(slot.word())->second;
  }
  std::size_t home(std::uint64_t word) const noexcept {
    // The high half of hash * capacity: any capacity, no modulo.
    return static_cast<std::size_t>((static_cast<Wide>(mix(word)) * slots_.size()) >> 64);
  }
  std::size_t next(std::size_t i) const noexcept { return i + 1 == slots_.size() ? 0 : i + 1; }
  bool used(std::size_t i) const noexcept { return (used_[i / 64] >> (i % 64)) & 1U; }
  void set_used(std::size_t i, bool on) noexcept {
    if (on) {
      used_[i / 64] |= std::uint64_t{1} << (i % 64);
    } else {
      used_[i / 64] &= ~(std::uint64_t{1} << (i % 64));
    }
  }
  void place(const Slot& slot) noexcept {
    std::size_t i = home(slot.word());
    while (used(i)) {
      i = next(i);
    }
    slots_[i] = slot;
    set_used(i, true);
  }
  void grow() {
    std::vector<Slot> old_slots = std::move(slots_);
    std::vector<std::uint64_t> old_used = std::move(used_);
    const std::size_t capacity = old_slots.empty() ? 64 : old_slots.size() + old_slots.size() * 15 / 100;
    slots_.assign(capacity, Slot{0, 0, 0});
    slots_.shrink_to_fit();
    used_.assign((capacity + 63) / 64, 0);
    used_.shrink_to_fit();
    for (std::size_t i = 0; i < old_slots.size(); ++i) {
      if ((old_used[i / 64] >> (i % 64)) & 1U) {
        place(old_slots[i]);
      }
    }
  }

  std::vector<Slot> slots_;
  std::vector<std::uint64_t> used_;
  std::unordered_map<std::uint64_t, std::uint64_t> far_positions_;
  std::size_t size_ = 0;
};

// Keys first..last (inclusive, so INT64_MAX fits), key k first seen at
// position base + (k - first).
struct Run {
  std::int64_t last;
  std::uint64_t base;
};

// Unsigned distance, defined for any two int64 values with from <= to.
std::uint64_t distance(std::int64_t from, std::int64_t to) noexcept {
  return static_cast<std::uint64_t>(to) - static_cast<std::uint64_t>(from);
}

// What a std::map node holding a run costs: the red-black links and colour,
// the pair, rounded up to malloc's 16-byte granularity.
constexpr std::size_t kRunNodeBytes = (4 * sizeof(void*) + sizeof(std::pair<const std::int64_t, Run>) + 15) / 16 * 16;

}  // namespace

struct KeySet::State {
  std::map<std::int64_t, Run> runs;  // by first key
  SlotTable loose_integers;          // integers in no run
  SlotTable strings;                 // by hash
  std::uint64_t size = 0;
  // The run the last integer key went to: in-order keys extend it without
  // a search.
  std::map<std::int64_t, Run>::iterator hint = runs.end();

  // Adds `key` at the end of the hinted run when it continues it and
  // touches nothing else; false when the general path must decide.
  bool extend_hint(std::int64_t key, std::uint64_t position) {
    if (hint == runs.end() || hint->second.last == std::numeric_limits<std::int64_t>::max() ||
        key != hint->second.last + 1 || hint->second.base + distance(hint->first, key) != position) {
      return false;
    }
    const auto after = std::next(hint);
    if (after != runs.end() && after->first - 1 <= key) {
      return false;  // the next run starts at key or key + 1
    }
    if (loose_integers.size() != 0 && (loose_integers.find(static_cast<std::uint64_t>(key)) ||
                                       (key != std::numeric_limits<std::int64_t>::max() &&
                                        loose_integers.find(static_cast<std::uint64_t>(key + 1))))) {
      return false;
    }
    hint->second.last = key;
    return true;
  }

  // The run holding `key`, if any.
  std::map<std::int64_t, Run>::iterator run_of(std::int64_t key) {
    auto it = runs.upper_bound(key);
    if (it == runs.begin()) {
      return runs.end();
    }
    --it;
    return key <= it->second.last ? it : runs.end();
  }

  std::optional<std::uint64_t> find_integer(std::int64_t key) {
    if (auto run = run_of(key); run != runs.end()) {
      return run->second.base + distance(run->first, key);
    }
    return loose_integers.find(static_cast<std::uint64_t>(key));
  }

  // A new key joins the run or loose key just before it and the one just
  // after it when its position continues theirs; otherwise it is loose.
  void add_integer(std::int64_t key, std::uint64_t position) {
    std::int64_t first = key;
    std::int64_t last = key;
    std::uint64_t base = position;
    bool joined = false;
    auto left = runs.end();  // extended in place: the common in-order case
    if (key != std::numeric_limits<std::int64_t>::min()) {
      const std::int64_t before = key - 1;
      if (auto run = run_of(before); run != runs.end()) {
        if (run->second.base + distance(run->first, before) + 1 == position) {
          left = run;
          joined = true;
        }
      } else if (auto loose = loose_integers.find(static_cast<std::uint64_t>(before));
                 loose && *loose + 1 == position) {
        loose_integers.erase(static_cast<std::uint64_t>(before));
        first = before;
        base = *loose;
        joined = true;
      }
    }
    if (key != std::numeric_limits<std::int64_t>::max()) {
      const std::int64_t after = key + 1;
      if (auto run = runs.find(after); run != runs.end()) {
        if (run->second.base == position + 1) {
          last = run->second.last;
          runs.erase(run);
          joined = true;
        }
      } else if (auto loose = loose_integers.find(static_cast<std::uint64_t>(after)); loose && *loose == position + 1) {
        loose_integers.erase(static_cast<std::uint64_t>(after));
        last = after;
        joined = true;
      }
    }
    if (left != runs.end()) {
      left->second.last = last;
    } else if (joined) {
      runs.emplace(first, Run{last, base});
    } else {
      loose_integers.insert(static_cast<std::uint64_t>(key), position);
    }
  }
};

namespace {

std::uint64_t string_hash(std::string_view text) noexcept {
  return std::hash<std::string_view>{}(text);
}

}  // namespace

KeySet::KeySet() : state_(std::make_unique<State>()) {}
KeySet::~KeySet() = default;
KeySet::KeySet(KeySet&&) noexcept = default;
KeySet& KeySet::operator=(KeySet&&) noexcept = default;

std::optional<std::uint64_t> KeySet::insert(const JobKey& key, std::uint64_t position) {
  if (const auto* number = std::get_if<std::int64_t>(&key)) {
    if (state_->extend_hint(*number, position)) {
      ++state_->size;
      return std::nullopt;
    }
    if (auto earlier = state_->find_integer(*number)) {
      return earlier;
    }
    state_->add_integer(*number, position);
    state_->hint = state_->run_of(*number);
    ++state_->size;
    return std::nullopt;
  }
  auto earlier = state_->strings.insert(string_hash(std::get<std::string>(key)), position);
  if (!earlier) {
    ++state_->size;
  }
  return earlier;
}

bool KeySet::contains(const JobKey& key) const {
  if (const auto* number = std::get_if<std::int64_t>(&key)) {
    return state_->find_integer(*number).has_value();
  }
  return state_->strings.find(string_hash(std::get<std::string>(key))).has_value();
}

std::uint64_t KeySet::size() const noexcept {
  return state_->size;
}

std::size_t KeySet::memory_bytes() const noexcept {
  return sizeof(State) + state_->runs.size() * kRunNodeBytes + state_->loose_integers.memory_bytes() +
         state_->strings.memory_bytes();
}

}  // namespace troupe::detail::pipeline
