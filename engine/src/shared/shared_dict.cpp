#include "shared/shared_dict.hpp"

#include <bit>
#include <cerrno>
#include <cstring>
#include <new>
#include <string>

#include "troupe/sdk/shared.hpp"

namespace troupe::detail::shared {

namespace {

constexpr std::uint64_t align_up(std::uint64_t n, std::uint64_t to) {
  return (n + to - 1) / to * to;
}

std::uint64_t bucket_count_for(std::size_t capacity) {
  const std::uint64_t wanted = std::bit_ceil(std::max<std::uint64_t>(capacity / 512, 16));
  return std::min<std::uint64_t>(wanted, 1u << 16);
}

std::uint64_t fnv1a(std::string_view key) {
  std::uint64_t h = 1469598103934665603ull;
  for (const char c : key) {
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  return h;
}

unsigned class_for(std::uint64_t bytes) {
  const std::uint64_t blocks = (bytes + min_block - 1) / min_block;
  return static_cast<unsigned>(std::bit_width(std::bit_ceil(blocks)) - 1);
}

void init_robust(pthread_mutex_t& m) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&m, &attr);
  pthread_mutexattr_destroy(&attr);
}

// Locks a robust mutex; `repair` runs when its owner died holding it.
template <class Repair>
void lock_robust(pthread_mutex_t& m, std::string_view dict, Repair&& repair) {
  const int rc = pthread_mutex_lock(&m);
  if (rc == EOWNERDEAD) {
    repair();
    pthread_mutex_consistent(&m);
    return;
  }
  if (rc != 0) {
    throw SharedStateError("shared dict '" + std::string(dict) + "': cannot take a lock: " + std::strerror(rc));
  }
}

}  // namespace

std::size_t dict_mapping_size(std::size_t capacity) {
  const std::uint64_t buckets_at = align_up(sizeof(DictHeader), 64);
  const std::uint64_t heap_at = align_up(buckets_at + bucket_count_for(capacity) * sizeof(Bucket), 64);
  return heap_at + align_up(capacity, min_block);
}

void init_dict(void* base, std::size_t capacity) {
  auto& h = *static_cast<DictHeader*>(base);
  h.capacity = capacity;
  h.bucket_count = bucket_count_for(capacity);
  h.buckets_at = align_up(sizeof(DictHeader), 64);
  h.heap_at = align_up(h.buckets_at + h.bucket_count * sizeof(Bucket), 64);
  h.heap_end = h.heap_at + align_up(capacity, min_block);
  h.bump = h.heap_at;
  init_robust(h.alloc_lock);
  auto* buckets = reinterpret_cast<Bucket*>(static_cast<char*>(base) + h.buckets_at);
  for (std::uint64_t i = 0; i < h.bucket_count; ++i) {
    init_robust(buckets[i].lock);
  }
}

class DictView::BucketLock {
 public:
  BucketLock(DictView& d, Bucket& b) : b_(b) {
    lock_robust(b.lock, d.name_, [&] { d.repair(b); });
  }
  ~BucketLock() { pthread_mutex_unlock(&b_.lock); }
  BucketLock(const BucketLock&) = delete;
  BucketLock& operator=(const BucketLock&) = delete;

 private:
  Bucket& b_;
};

Bucket& DictView::bucket_of(std::uint64_t hash) const {
  auto* buckets = reinterpret_cast<Bucket*>(base_ + header().buckets_at);
  return buckets[hash & (header().bucket_count - 1)];
}

std::uint64_t* DictView::find(Bucket& b, std::uint64_t hash, std::string_view key) const {
  std::uint64_t* link = &b.head;
  while (*link != 0) {
    Entry& e = at(*link);
    if (e.hash == hash && e.key_size == key.size() &&
        std::memcmp(reinterpret_cast<const char*>(&e + 1), key.data(), key.size()) == 0) {
      return link;
    }
    link = &e.next;
  }
  return link;  // the chain's terminating 0
}

bool DictView::linked(const Bucket& b, std::uint64_t offset) const {
  for (std::uint64_t at_ = b.head; at_ != 0; at_ = at(at_).next) {
    if (at_ == offset) {
      return true;
    }
  }
  return false;
}

// The owner died mid-change: the chain is the state before or after its one
// publishing store; free what that store left unreachable.
void DictView::repair(Bucket& b) {
  if (b.pending_new != 0 && !linked(b, b.pending_new)) {
    release(b.pending_new);
  }
  if (b.pending_old != 0 && !linked(b, b.pending_old)) {
    release(b.pending_old);
  }
  publish(b.pending_new, 0);
  publish(b.pending_old, 0);
}

// Writes the entry aside, then links it in place of the old one (or at the
// chain's end) with one store.
void DictView::store(Bucket& b, std::uint64_t* link, std::uint64_t hash, std::string_view key, std::string_view value) {
  const std::uint64_t old = *link;
  const std::uint64_t fresh = allocate(sizeof(Entry) + key.size() + value.size());
  publish(b.pending_new, fresh);
  Entry& e = at(fresh);
  e.next = old != 0 ? at(old).next : 0;
  e.hash = hash;
  e.key_size = static_cast<std::uint32_t>(key.size());
  e.value_size = static_cast<std::uint32_t>(value.size());
  char* data = reinterpret_cast<char*>(&e + 1);
  std::memcpy(data, key.data(), key.size());
  std::memcpy(data + key.size(), value.data(), value.size());
  publish(b.pending_old, old);
  publish(*link, fresh);
  if (old != 0) {
    release(old);
  }
  publish(b.pending_old, 0);
  publish(b.pending_new, 0);
}

void DictView::unlink(Bucket& b, std::uint64_t* link) {
  const std::uint64_t old = *link;
  publish(b.pending_old, old);
  publish(*link, at(old).next);
  release(old);
  publish(b.pending_old, 0);
}

bool DictView::get(std::string_view key, troupe_bytes_sink& out) {
  const auto hash = fnv1a(key);
  Bucket& b = bucket_of(hash);
  BucketLock lock(*this, b);
  const std::uint64_t* link = find(b, hash, key);
  if (*link == 0) {
    return false;
  }
  const Entry& e = at(*link);
  out.append(out.user, reinterpret_cast<const char*>(&e + 1) + e.key_size, e.value_size);
  return true;
}

void DictView::set(std::string_view key, std::string_view value) {
  const auto hash = fnv1a(key);
  Bucket& b = bucket_of(hash);
  BucketLock lock(*this, b);
  store(b, find(b, hash, key), hash, key, value);
}

bool DictView::erase(std::string_view key) {
  const auto hash = fnv1a(key);
  Bucket& b = bucket_of(hash);
  BucketLock lock(*this, b);
  std::uint64_t* link = find(b, hash, key);
  if (*link == 0) {
    return false;
  }
  unlink(b, link);
  return true;
}

int DictView::update(std::string_view key, troupe_dict_update_fn* fn, void* user) {
  const auto hash = fnv1a(key);
  Bucket& b = bucket_of(hash);
  BucketLock lock(*this, b);
  std::uint64_t* link = find(b, hash, key);
  const char* value = nullptr;
  std::size_t size = 0;
  if (*link != 0) {
    const Entry& e = at(*link);
    value = reinterpret_cast<const char*>(&e + 1) + e.key_size;
    size = e.value_size;
  }
  const char* out = nullptr;
  std::size_t out_size = 0;
  const int rc = fn(user, value, size, *link != 0 ? 1 : 0, &out, &out_size);
  if (rc == 0) {
    store(b, link, hash, key, std::string_view(out, out_size));
  } else if (rc == 1 && *link != 0) {
    unlink(b, link);
  }
  return rc == 0 || rc == 1 ? rc : 2;
}

void DictView::snapshot(troupe_dict_entry_fn* fn, void* user) {
  auto* buckets = reinterpret_cast<Bucket*>(base_ + header().buckets_at);
  for (std::uint64_t i = 0; i < header().bucket_count; ++i) {
    BucketLock lock(*this, buckets[i]);
    for (std::uint64_t offset = buckets[i].head; offset != 0; offset = at(offset).next) {
      const Entry& e = at(offset);
      const char* data = reinterpret_cast<const char*>(&e + 1);
      fn(user, data, e.key_size, data + e.key_size, e.value_size);
    }
  }
}

// ---- the allocator ------------------------------------------------------------------

// Pops a free block of `size_class`, else carves one from never-used space,
// else splits the smallest larger free block. 0 when none is left.
std::uint64_t DictView::take_block(unsigned size_class) {
  DictHeader& h = header();
  if (const std::uint64_t top = h.free_lists[size_class]; top != 0) {
    publish(h.free_lists[size_class], at(top).next);
    return top;
  }
  const std::uint64_t bytes = min_block << size_class;
  if (h.heap_end - h.bump >= bytes) {
    const std::uint64_t fresh = h.bump;
    publish(h.bump, fresh + bytes);
    return fresh;
  }
  for (unsigned larger = size_class + 1; larger < size_classes; ++larger) {
    const std::uint64_t top = h.free_lists[larger];
    if (top == 0) {
      continue;
    }
    publish(h.free_lists[larger], at(top).next);
    // Keep the first half, free the upper halves down to the wanted size.
    for (unsigned c = larger; c > size_class; --c) {
      const std::uint64_t half = top + (min_block << (c - 1));
      Entry& upper = at(half);
      upper.size_class = static_cast<std::uint8_t>(c - 1);
      upper.next = h.free_lists[c - 1];
      upper.state = block_free;
      publish(h.free_lists[c - 1], half);
    }
    return top;
  }
  return 0;
}

std::uint64_t DictView::allocate(std::size_t bytes) {
  const unsigned size_class = class_for(bytes);
  if (size_class >= size_classes || (min_block << size_class) > header().heap_end - header().heap_at) {
    full(bytes);
  }
  lock_robust(header().alloc_lock, name_, [] {});
  const std::uint64_t block = take_block(size_class);
  if (block != 0) {
    Entry& e = at(block);
    e.size_class = static_cast<std::uint8_t>(size_class);
    e.state = block_used;
  }
  pthread_mutex_unlock(&header().alloc_lock);
  if (block == 0) {
    full(bytes);
  }
  return block;
}

void DictView::release(std::uint64_t offset) {
  DictHeader& h = header();
  lock_robust(h.alloc_lock, name_, [] {});
  Entry& e = at(offset);
  if (e.state == block_used) {  // a repair may find a block its owner already freed
    e.next = h.free_lists[e.size_class];
    e.state = block_free;
    publish(h.free_lists[e.size_class], offset);
  }
  pthread_mutex_unlock(&h.alloc_lock);
}

void DictView::full(std::size_t bytes) const {
  throw SharedStateError("shared dict '" + std::string(name_) + "' is full: an entry of " + std::to_string(bytes) +
                         " bytes (key, value and 32 bytes of header, rounded up to a power of two) does not fit in "
                         "its capacity of " +
                         std::to_string(header().capacity) + " bytes; give it a larger capacity");
}

}  // namespace troupe::detail::shared
