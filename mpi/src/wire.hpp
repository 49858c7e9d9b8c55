// What rank 0 and the serving ranks say to each other. Each message is one
// MPI message of bytes on MPI_COMM_WORLD whose tag is its type; the body is
// a sequence of MessagePack items (the process pool's codec).
//
//   open       0 -> r  str pool name, array of plugin paths, uint frames_per_worker, str local kind
//   hello      r -> 0  uint workers, str host, int pid, nil | error record (the local pool did not start)
//   work       0 -> r  uint n, n x frame: uint id, uint kind (0 call, 1 chunk), str task, uint timeout ns
//                      (0: none), then args, kwargs (call) or uint m, m x args (chunk)
//   results    r -> 0  stats, uint n, n x result: uint id, then a call's outcome or uint m, m x outcome
//                      (outcome: uint 0 value | 1 error record | 2 str cancelled message)
//   revoke     0 -> r  uint n, n x id
//   interrupt  0 -> r  (empty)
//   spawn      0 -> r  uint workers to start
//   test       0 -> r  (empty): run the local pool's test(); the answer is a tested message
//   tested     r -> 0  nil | error record
//   close      0 -> r  (empty): shut the local pool down
//   bye        r -> 0  stats, nil | error record (a finalizer that threw)
//   leave      0 -> r  (empty): return from serve()
//
// An error record carries the error's kind, so rank 0 rebuilds the type a
// local pool would have thrown (see encode_error).
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "process/frame_codec.hpp"
#include "troupe/outcome.hpp"
#include "troupe/pool_stats.hpp"
#include "troupe/sdk/value.hpp"

namespace troupe::mpi::detail {

using Bytes = std::vector<std::uint8_t>;
using troupe::detail::process::MsgpackReader;
using troupe::detail::process::MsgpackWriter;

enum Tag : int {
  open = 1,
  work = 2,
  revoke = 3,
  interrupt = 4,
  spawn = 5,
  test = 6,
  close = 7,
  leave = 8,
  hello = 10,
  results = 11,
  tested = 12,
  bye = 13,
};

enum class FrameKind : std::uint8_t { call = 0, chunk = 1 };
enum class OutcomeKind : std::uint8_t { value = 0, error = 1, cancelled = 2 };

// `error` as a record a rank sends: {kind, record (type, message, trace,
// causes), and the fields its kind needs}. Kinds: crash, timeout, cancelled,
// broken, other. Never throws.
Value encode_error(const std::exception_ptr& error) noexcept;
// The exception rank 0 completes a future with: the same type as on the
// rank (WorkerCrashedError naming the rank and host, TaskTimeoutError,
// CancelledError, BrokenPoolError), else the record's RemoteError chain
// (typed UnknownTaskError and ArgumentError included). `key` is rank 0's
// future id; `where` says "rank R (host)".
std::exception_ptr decode_error(const Value& record, std::uint64_t key, const std::string& where) noexcept;

// One outcome (of a call, or of an item of a chunk).
void write_outcome(MsgpackWriter& out, const Outcome<Value>& outcome);
// Reads one; errors decoded as decode_error does.
Outcome<Value> read_outcome(MsgpackReader& in, std::uint64_t key, const std::string& where);

void write_stats(MsgpackWriter& out, const PoolStats& stats);
PoolStats read_stats(MsgpackReader& in);

}  // namespace troupe::mpi::detail
