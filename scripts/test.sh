#!/usr/bin/env bash
# The README's test command: installs the Debian packages troupe needs,
# builds with a preset (default: dev) and runs the whole test suite.
#   scripts/test.sh [dev|release|asan|tsan]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-dev}"
bash scripts/install-deps.sh
jobs="$(nproc)"
cmake --preset "$preset"
cmake --build --preset "$preset" -j "$jobs"
ctest --preset "$preset" -j "$jobs"
