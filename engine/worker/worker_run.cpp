// The frames a worker runs: tasks, map chunks (one item at a time through
// the shared chunk loop, outcomes streamed in parts), and recycling.
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "process/error_record.hpp"
#include "throw_trace.hpp"
#include "troupe/detail/chunk_loop.hpp"
#include "troupe/sdk/errors.hpp"
#include "troupe/sdk/task_context.hpp"
#include "worker_process.hpp"

namespace troupe::worker {

using tp::Message;

void WorkerProcess::handle(const tp::FrameView& frame) {
  tp::MsgpackReader reader(frame.body, frame.end);
  switch (frame.type) {
    case Message::task:
      run_task(reader);
      return;
    case Message::chunk:
      run_chunk(reader);
      return;
    case Message::revoke:
      forget_revokes(reader);
      return;
    case Message::descriptors:
      take_descriptors(reader);
      return;
    case Message::shutdown:
      shut_down();
    default:
      quit(4);  // a protocol error: the host sees an exit status
  }
}

const troupe::TaskInfo& WorkerProcess::lookup(std::string_view name) {
  auto it = tasks_.find(std::string(name));
  if (it == tasks_.end()) {
    it = tasks_.emplace(std::string(name), &registry_.task(name)).first;
  }
  return *it->second;
}

void WorkerProcess::begin_item(std::uint64_t id, std::uint64_t item, std::int64_t now) {
  running_id_.store(id, std::memory_order_relaxed);
  page_->item_started_ns.store(now, std::memory_order_relaxed);
  page_->item_deadline_ns.store(timeout_ns_ != 0 ? now + static_cast<std::int64_t>(timeout_ns_) : 0,
                                std::memory_order_relaxed);
  page_->item.store(item, std::memory_order_relaxed);
  page_->begun_id.store(id, std::memory_order_relaxed);
  page_->running_id.store(id, std::memory_order_release);
}

void WorkerProcess::end_frame_run() {
  running_id_.store(0, std::memory_order_relaxed);
  page_->rss.store(rss_, std::memory_order_relaxed);
  page_->running_id.store(0, std::memory_order_release);
}

void WorkerProcess::maybe_flush_before_task() {
  // A task that is not tiny should not hold back results already made.
  if (ewma_task_ns_ >= 20'000) {
    flush();
  }
}

void WorkerProcess::run_task(tp::MsgpackReader& reader) {
  tp::decode_task_head(reader, task_);
  timeout_ns_ = task_.timeout_ns;
  const std::uint64_t id = task_.id;
  const std::string_view name = task_.task;
  if (retiring_) {
    return;  // the host put it back in its queue
  }
  if (answer_if_revoked(id)) {
    return;
  }
  maybe_flush_before_task();
  cancel_.store(false, std::memory_order_relaxed);
  const auto start = now_ns();
  begin_item(id, 0, start);
  std::optional<troupe::Value> result;
  troupe::Value record;
  troupe::worker::forget_last_throw();
  try {
    decode_arguments(reader, name);
    const troupe::TaskInfo& info = lookup(name);
    troupe::TaskContext context(info.signature.qualified_name, *worker_, &cancel_);
    result = info.invoke(context, task_.args, task_.kwargs);
  } catch (...) {
    record = caught(troupe::worker::take_trace());
  }
  const auto end = now_ns();
  record_duration(end - start);
  const std::uint64_t rss = rss_after(end - start, end);
  const auto at = scratch_.size();
  if (result) {
    try {
      const auto size = tp::write_frame(scratch_, tp::Result{id, rss, std::move(*result)});
      if (size - 4 > max_frame_) {
        scratch_.resize(at);
        tp::write_frame(scratch_, tp::Failure{id, rss, too_large(name, size)});
      }
    } catch (const tp::FrameError& e) {
      scratch_.resize(at);
      tp::write_frame(scratch_, tp::Failure{id, rss, unsendable(name, e)});
    }
  } else {
    tp::write_frame(scratch_, tp::Failure{id, rss, std::move(record)});
  }
  after_task(rss);
  emit();
  end_frame_run();
}

// Arguments the codec cannot read (nested too deep; the host's encoder
// refuses those first) are the task's ArgumentError, not the worker's end.
void WorkerProcess::decode_arguments(tp::MsgpackReader& reader, std::string_view name) {
  try {
    tp::decode_task_arguments(reader, task_);
  } catch (const tp::FrameError& e) {
    throw troupe::ArgumentError("the arguments of " + std::string(name) + " cannot be read in the worker: " + e.what());
  }
}

troupe::Value WorkerProcess::unsendable(std::string_view name, const tp::FrameError& e) {
  return tp::error_record("troupe::Error",
                          "the result of " + std::string(name) + " cannot be sent to the host: " + e.what());
}

troupe::Value WorkerProcess::too_large(std::string_view name, std::size_t size) const {
  return tp::error_record("troupe::ResultTooLargeError",
                          "the result of " + std::string(name) + " is " + tp::format_bytes(size) +
                              " encoded, over the pool's max_frame of " + tp::format_bytes(max_frame_) +
                              "; return less (or a path to a file), or raise max_frame");
}

WorkerProcess::Part WorkerProcess::open_part(std::uint64_t id, std::uint64_t first, std::int64_t now) {
  Part part;
  part.frame = tp::begin_frame(scratch_, Message::chunk_part);
  tp::MsgpackWriter writer(scratch_);
  tp::encode(writer, tp::ChunkPart{id, first, 0});
  part.count_at = tp::chunk_part_count_offset(scratch_);
  part.opened_ns = now;
  return part;
}

void WorkerProcess::close_part(Part& part, bool last, std::uint64_t rss) {
  tp::MsgpackWriter writer(scratch_);
  writer.patch_u32(part.count_at, part.count);
  tp::encode(writer, tp::ChunkPartTail{last, rss});
  tp::end_frame(scratch_, part.frame);
}

bool WorkerProcess::run_item(ChunkRun& run, std::size_t i, std::size_t count) {
  begin_item(run.id, i, run.now);
  const auto item_at = scratch_.size();
  tp::MsgpackWriter writer(scratch_);
  bool ok = true;
  troupe::worker::forget_last_throw();
  try {
    if (!read_item_arguments(run)) {
      throw troupe::ArgumentError(run.unreadable);
    }
    troupe::TaskContext context(run.info->signature.qualified_name, *worker_, &cancel_);
    troupe::Value value = run.info->invoke(context, task_.args, no_kwargs_);
    try {
      tp::encode_item_ok(writer, value);
    } catch (const tp::FrameError& e) {
      scratch_.resize(item_at);
      tp::encode_item_error(writer, unsendable(run.name, e));
      ok = false;
    }
  } catch (...) {
    scratch_.resize(item_at);
    tp::encode_item_error(writer, caught(troupe::worker::take_trace()));
    ok = false;
  }
  run.now = now_ns();
  constexpr std::size_t trailer = 10;  // bool last + uint64 rss
  if (scratch_.size() - run.part.frame - 4 + trailer > max_frame_) {
    ok = fit_item(run, i, item_at) && ok;
  }
  ++run.part.count;
  if (run.now - run.part.opened_ns >= 100'000'000 && i + 1 < count) {
    close_part(run.part, false, rss_after(0, run.now));
    emit();
    flush();
    run.part = open_part(run.id, i + 1, run.now);
  }
  return ok;
}

// After an item whose arguments could not be read, the next items' bytes
// cannot be found: they fail with the same error, unread. False then.
bool WorkerProcess::read_item_arguments(ChunkRun& run) {
  if (!run.unreadable.empty()) {
    return false;
  }
  try {
    tp::decode_chunk_item(run.reader, task_.args);
    return true;
  } catch (const tp::FrameError& e) {
    run.unreadable =
        "the arguments of " + std::string(run.name) + " in this map chunk cannot be read in the worker: " + e.what();
    return false;
  }
}

void WorkerProcess::skip_item(ChunkRun& run, std::size_t) {
  read_item_arguments(run);
  tp::MsgpackWriter writer(scratch_);
  tp::encode_item_cancelled(writer);
  ++run.part.count;
}

bool WorkerProcess::fit_item(ChunkRun& run, std::size_t i, std::size_t item_at) {
  constexpr std::size_t trailer = 10;  // bool last + uint64 rss
  if (scratch_.size() - run.part.frame - 4 + trailer <= max_frame_) {
    return true;
  }
  const std::size_t item_size = scratch_.size() - item_at;
  if (run.part.count > 0) {
    std::vector<std::uint8_t> item(scratch_.begin() + static_cast<std::ptrdiff_t>(item_at), scratch_.end());
    scratch_.resize(item_at);
    close_part(run.part, false, rss_after(0, run.now));
    emit();
    run.part = open_part(run.id, i, run.now);
    scratch_.insert(scratch_.end(), item.begin(), item.end());
  }
  if (scratch_.size() - run.part.frame - 4 + trailer <= max_frame_) {
    return true;
  }
  scratch_.resize(scratch_.size() - item_size);
  tp::MsgpackWriter writer(scratch_);
  tp::encode_item_error(writer, too_large(run.name, item_size));
  return false;
}

void WorkerProcess::run_chunk(tp::MsgpackReader& reader) {
  tp::Chunk chunk;
  tp::decode(reader, chunk);
  timeout_ns_ = chunk.timeout_ns;
  const std::uint64_t id = chunk.id;
  const std::string_view name = chunk.task;
  const std::uint64_t count = chunk.count;
  if (retiring_) {
    return;
  }
  if (answer_if_revoked(id)) {
    return;
  }
  maybe_flush_before_task();
  cancel_.store(false, std::memory_order_relaxed);
  const troupe::TaskInfo* info = nullptr;
  if (count > 0) {  // an empty chunk is the pool's ping: no task to look up
    try {
      info = &lookup(name);
    } catch (...) {
      // The chunk as a whole cannot run: its future fails.
      tp::write_frame(scratch_, tp::Failure{id, rss_, caught(std::string())});
      after_task(rss_);
      emit();
      return;
    }
  }
  const auto chunk_start = now_ns();
  ChunkRun run{id, name, info, reader, chunk_start, {}, {}};
  run.part = open_part(id, 0, run.now);
  // The host forwards a cancel through the shared page; reading it before
  // each item stops the chunk within one item (the monitor's 100 ms poll
  // only feeds TaskContext::cancelled()).
  const auto is_cancelled = [&] {
    return cancel_.load(std::memory_order_relaxed) || page_->cancel_id.load(std::memory_order_acquire) == id;
  };
  troupe::detail::run_chunk_items(
      count, is_cancelled, [&](std::size_t i) { return run_item(run, i, count); },
      [&](std::size_t i) { skip_item(run, i); });
  const auto now = run.now;
  record_duration(now - chunk_start);
  const std::uint64_t rss = rss_after(now - chunk_start, now);
  close_part(run.part, true, rss);
  after_task(rss);
  emit();
  end_frame_run();
}

void WorkerProcess::after_task(std::uint64_t rss) {
  ++tasks_done_;
  std::optional<tp::RetireReason> reason;
  if (max_memory_ != 0 && rss > max_memory_) {
    reason = tp::RetireReason::max_memory;
  } else if (max_tasks_ != 0 && tasks_done_ >= max_tasks_) {
    reason = tp::RetireReason::max_tasks;
  }
  if (reason) {
    retiring_ = true;
    tp::write_frame(scratch_, tp::Retiring{*reason, rss});
  }
}

}  // namespace troupe::worker
