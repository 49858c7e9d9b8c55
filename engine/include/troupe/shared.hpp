// troupe/shared.hpp
//
// Shared counters and dicts on a pool, host side: pool.counter("hits") and
// pool.dict("cache", {.capacity = 64 << 20}) (troupe::Executor) return the
// troupe::SharedCounter and troupe::SharedDict of troupe/sdk/shared.hpp
// that tasks reach through ctx.counter(name) and ctx.dict(name).
//
// Guarantees: on a ThreadPool the state lives in the host process; on a
// ProcessPool in one anonymous memfd per object, mapped by the host and every
// worker (started before or after the object was created), with nothing to
// clean up after a crash. A dict's capacity is the bytes its entries may take
// (each entry: key, value and 32 bytes, rounded up to a power of two); freed
// and overwritten space is reused.
#pragma once

#include <cstddef>

#include "troupe/sdk/shared.hpp"

namespace troupe {

struct DictOptions {
  std::size_t capacity = std::size_t{1} << 20;  // bytes
};

}  // namespace troupe
