// Operations on a shared dict's mapping (shared_layout.hpp): a chained hash
// table with one robust process-shared mutex per bucket, over a heap of
// power-of-two blocks with a free list per size (a larger free block is
// split when a size runs out). Keys and values are bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "shared/shared_layout.hpp"
#include "troupe/sdk/abi.hpp"

namespace troupe::detail::shared {

// The mapping size a dict of `capacity` heap bytes needs.
std::size_t dict_mapping_size(std::size_t capacity);
// Lays out an empty dict in `base` (dict_mapping_size(capacity) bytes, zeroed).
void init_dict(void* base, std::size_t capacity);

class DictView {
 public:
  DictView(void* base, std::string_view name) : base_(static_cast<char*>(base)), name_(name) {}

  // False when absent; else the value went to `out`.
  bool get(std::string_view key, troupe_bytes_sink& out);
  void set(std::string_view key, std::string_view value);
  bool erase(std::string_view key);
  // 0 stored, 1 erased or left absent, 2 fn failed (nothing changed).
  int update(std::string_view key, troupe_dict_update_fn* fn, void* user);
  void snapshot(troupe_dict_entry_fn* fn, void* user);

 private:
  class BucketLock;

  DictHeader& header() const { return *reinterpret_cast<DictHeader*>(base_); }
  Bucket& bucket_of(std::uint64_t hash) const;
  Entry& at(std::uint64_t offset) const { return *reinterpret_cast<Entry*>(base_ + offset); }
  std::uint64_t* find(Bucket& b, std::uint64_t hash, std::string_view key) const;
  void store(Bucket& b, std::uint64_t* link, std::uint64_t hash, std::string_view key, std::string_view value);
  void unlink(Bucket& b, std::uint64_t* link);
  void repair(Bucket& b);
  bool linked(const Bucket& b, std::uint64_t offset) const;

  // The allocator (its own lock).
  std::uint64_t allocate(std::size_t bytes);
  void release(std::uint64_t offset);
  std::uint64_t take_block(unsigned size_class);
  [[noreturn]] void full(std::size_t bytes) const;

  char* base_;
  std::string_view name_;
};

}  // namespace troupe::detail::shared
