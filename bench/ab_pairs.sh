#!/usr/bin/env bash
# Interleaved A/B of two troupe-compare builds: base, main, base, main, ...
#   bench/ab_pairs.sh GROUP N BASE_BIN MAIN_BIN   (GROUP as for --only)
# Prints each run's lines under a "== SIDE I" header; compare the medians.
set -euo pipefail
group=$1 n=$2 base=$3 main=$4
for i in $(seq 1 "$n"); do
  for side in base main; do
    bin=$base
    [[ $side == main ]] && bin=$main
    echo "== $side $i load $(cut -d' ' -f1 /proc/loadavg)"
    "$bin" --only "$group"
  done
done
