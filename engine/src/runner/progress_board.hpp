// Several runs' progress lines on one terminal, one line each (a pipeline's
// jobs that run at once). Not part of the API.
#pragma once

#include "troupe/progress.hpp"

namespace troupe::detail {

// A Progress that several meters may share: each run (told apart by its
// snapshot's label) keeps a line of its own on the terminal `fd`, in the
// order the runs first reported; all lines are redrawn in place together at
// most ~10 times a second (and whenever a run finishes or a new one
// appears). A finished run's line stays with its last numbers. Lines are
// cut to the terminal's width so that moving the cursor back over them
// stays exact. `fd` must stay open while any run reports.
Progress progress_board(int fd);

}  // namespace troupe::detail
