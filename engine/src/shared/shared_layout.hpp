// The bytes of one shared counter or dict, as host and workers map them
// (one memfd each). Every field lives at a fixed offset from the mapping's
// start, and links are offsets, so each process may map it anywhere.
//
// Crash safety: a process may die at any instruction, holding a bucket's
// lock or the allocator's. Each change becomes visible through one aligned
// 8-byte release store (a link, a free-list head, the bump offset), so what
// the next owner of the lock finds is the state before or after that store.
// A bucket remembers the entry it is writing and the one it replaces
// (pending_new, pending_old); the owner-died path frees whichever of them is
// no longer linked. At worst an allocator step cut short leaks one block.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace troupe::detail::shared {

inline constexpr std::uint64_t magic = 0x74726f7570657368ull;  // "troupesh"
inline constexpr std::size_t max_name_size = 100;

enum class Kind : std::uint32_t { counter = 1, dict = 2 };

struct ObjectHeader {
  std::uint64_t magic;
  Kind kind;
  std::uint32_t name_size;
  char name[max_name_size + 4];
  std::uint64_t mapping_size;
};

struct CounterBlock {
  ObjectHeader header;
  alignas(64) std::atomic<std::int64_t> value;
};

inline constexpr std::size_t size_classes = 48;
inline constexpr std::uint64_t min_block = 32;  // class c holds blocks of min_block << c bytes

enum BlockState : std::uint8_t { block_used = 1, block_free = 2 };

// A heap block: an entry (key then value after the header) or a free block.
struct Entry {
  std::uint64_t next;  // the bucket chain, or the free list
  std::uint64_t hash;
  std::uint32_t key_size;
  std::uint32_t value_size;
  std::uint8_t size_class;
  std::uint8_t state;
  std::uint8_t pad[6];
};
static_assert(sizeof(Entry) == min_block);

struct Bucket {
  pthread_mutex_t lock;       // robust, process-shared
  std::uint64_t head;         // first entry, 0 = none
  std::uint64_t pending_new;  // an entry being written and not yet linked
  std::uint64_t pending_old;  // an entry being unlinked
};

struct DictHeader {
  ObjectHeader header;
  std::uint64_t capacity;  // heap bytes
  std::uint64_t bucket_count;
  std::uint64_t buckets_at;
  std::uint64_t heap_at;
  std::uint64_t heap_end;
  pthread_mutex_t alloc_lock;  // robust, process-shared
  std::uint64_t bump;          // the first never-used heap byte
  std::uint64_t free_lists[size_classes];
};

// The store that makes a step visible.
inline void publish(std::uint64_t& slot, std::uint64_t value) {
  std::atomic_ref<std::uint64_t>(slot).store(value, std::memory_order_release);
}

}  // namespace troupe::detail::shared
