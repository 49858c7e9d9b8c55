#!/usr/bin/env bash
# Runs the resume tests (tests/integration/cli_resume_test.cpp: `troupe run`
# killed with SIGKILL, or stopped with SIGINT, at random moments, then
# --resume until it ends; the output must hold every key exactly once; and
# a second SIGINT ending the running items) RUNS times (default 10) and
# reports how many passed; exits 1 unless all did.
#   bash tests/scripts/resume_chaos.sh [BUILD_DIR] [RUNS]
set -u
build=${1:-build/dev}
runs=${2:-10}
binary="$build/tests/cli_resume_test"
if [[ ! -x "$binary" ]]; then
  echo "resume_chaos.sh: no $binary; build the target cli_resume_test first" >&2
  exit 2
fi
passed=0
log="/tmp/resume_chaos.$$.log"
for ((i = 1; i <= runs; i++)); do
  if "$binary" --gtest_brief=1 > "$log" 2>&1; then
    passed=$((passed + 1))
  else
    echo "run $i failed:" >&2
    tail -n 30 "$log" >&2
  fi
done
rm -f "$log"
echo "resume chaos: $passed of $runs runs passed"
[[ $passed -eq $runs ]]
