// Feeds a fuzz input to a FrameBuffer the way a socket would: the first
// byte picks the read size, the rest arrives in reads of that size, and
// every complete frame goes to `check_frame`. A FrameError (a frame the
// buffer refuses) ends the input, as it ends a worker's channel.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "process/frame_codec.hpp"

namespace troupe::fuzz {

template <class CheckFrame>
void feed_frames(const std::uint8_t* data, std::size_t size, std::size_t max_frame, CheckFrame&& check_frame) {
  namespace tp = troupe::detail::process;
  if (size == 0) {
    return;
  }
  const std::size_t read_size = 1 + data[0] % 64;
  tp::FrameBuffer frames(max_frame);
  try {
    for (std::size_t at = 1; at < size; at += read_size) {
      const std::size_t n = std::min(read_size, size - at);
      auto space = frames.prepare(n);
      std::memcpy(space.data(), data + at, n);
      frames.commit(n);
      tp::FrameView view{};
      while (frames.next(view)) {
        check_frame(view);
      }
    }
  } catch (const tp::FrameError&) {
  }
}

}  // namespace troupe::fuzz
