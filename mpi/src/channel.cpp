#include "channel.hpp"

#include <string>

#include "troupe/sdk/errors.hpp"

namespace troupe::mpi::detail {

void check_mpi(int code, const char* what) {
  if (code == MPI_SUCCESS) {
    return;
  }
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(std::string(what) + " failed: " + std::string(text, static_cast<std::size_t>(length)));
}

Channel::~Channel() {
  try {
    flush();
  } catch (...) {
    // MPI failed under us; the job is ending anyway.
  }
}

void Channel::send(int rank, int tag, std::vector<std::uint8_t> body) {
  if (body.size() > kMaxMessage) {
    throw Error("a message of " + std::to_string(body.size()) + " bytes for rank " + std::to_string(rank) +
                " is over MPI's 2 GiB limit");
  }
  sends_.push_back({MPI_REQUEST_NULL, std::move(body)});
  Send& s = sends_.back();
  check_mpi(MPI_Isend(s.body.data(), static_cast<int>(s.body.size()), MPI_BYTE, rank, tag, MPI_COMM_WORLD, &s.request),
            "MPI_Isend");
}

bool Channel::poll(Received& message, int source, int tag) {
  int flag = 0;
  MPI_Status status;
  check_mpi(MPI_Iprobe(source, tag, MPI_COMM_WORLD, &flag, &status), "MPI_Iprobe");
  if (flag == 0) {
    return false;
  }
  int count = 0;
  check_mpi(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count");
  message.source = status.MPI_SOURCE;
  message.tag = status.MPI_TAG;
  message.body.resize(static_cast<std::size_t>(count));
  check_mpi(MPI_Recv(message.body.data(), count, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE),
            "MPI_Recv");
  return true;
}

void Channel::progress() {
  // Sends to different ranks may finish out of order: test each.
  for (auto it = sends_.begin(); it != sends_.end();) {
    int done = 0;
    check_mpi(MPI_Test(&it->request, &done, MPI_STATUS_IGNORE), "MPI_Test");
    it = done != 0 ? sends_.erase(it) : std::next(it);
  }
}

void Channel::flush() {
  while (!sends_.empty()) {
    check_mpi(MPI_Wait(&sends_.front().request, MPI_STATUS_IGNORE), "MPI_Wait");
    sends_.pop_front();
  }
}

}  // namespace troupe::mpi::detail
