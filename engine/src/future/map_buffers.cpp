// Chunk result buffers on tbbmalloc (see troupe/detail/map_chunk.hpp).
#include <oneapi/tbb/scalable_allocator.h>

#include <cstddef>
#include <new>

#include "troupe/detail/map_chunk.hpp"

namespace troupe::detail {

namespace {
// scalable_malloc's own alignment; larger ones take the aligned path.
constexpr std::size_t kPlainAlignment = 16;
}  // namespace

void* map_buffer_allocate(std::size_t bytes, std::size_t alignment) {
  void* p = alignment <= kPlainAlignment ? scalable_malloc(bytes) : scalable_aligned_malloc(bytes, alignment);
  if (p == nullptr) {
    throw std::bad_alloc();
  }
  return p;
}

void map_buffer_deallocate(void* p, std::size_t alignment) noexcept {
  if (alignment <= kPlainAlignment) {
    scalable_free(p);
  } else {
    scalable_aligned_free(p);
  }
}

}  // namespace troupe::detail
