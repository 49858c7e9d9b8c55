#!/usr/bin/env bash
# The README's test command: installs the Debian packages troupe needs,
# builds with a preset (default: dev) and runs the whole test suite.
#   scripts/test.sh [dev|release|asan|tsan]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-dev}"
bash scripts/install-deps.sh
# The MPI tests start mpirun, which refuses root unless told twice.
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
jobs="$(nproc)"
cmake --preset "$preset"
cmake --build --preset "$preset" -j "$jobs"
ctest --preset "$preset" -j "$jobs"
