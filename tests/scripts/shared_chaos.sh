#!/usr/bin/env bash
# Runs the shared-state chaos test (tests/unit/shared/shared_chaos_test.cpp)
# RUNS times (default 20) and reports how many passed; exits 1 unless all did.
#   bash tests/scripts/shared_chaos.sh [BUILD_DIR] [RUNS]
set -u
build=${1:-build/dev}
runs=${2:-20}
binary="$build/tests/shared_chaos_test"
if [[ ! -x "$binary" ]]; then
  echo "shared_chaos.sh: no $binary; build the target shared_chaos_test first" >&2
  exit 2
fi
passed=0
for ((i = 1; i <= runs; i++)); do
  if "$binary" --gtest_brief=1 > "/tmp/shared_chaos.$$.log" 2>&1; then
    passed=$((passed + 1))
  else
    echo "run $i failed:" >&2
    tail -n 30 "/tmp/shared_chaos.$$.log" >&2
  fi
done
rm -f "/tmp/shared_chaos.$$.log"
echo "shared chaos: $passed of $runs runs passed"
[[ $passed -eq $runs ]]
