#!/usr/bin/env python3
"""Python peer of troupe-compare's runner comparisons.

Run by troupe-compare in the same run as troupe's side (Debian's
/usr/bin/python3). Prints one number:

  ppe_keyed N W    items/s: a keyed batch as a Python host writes it, a dict
                   of futures from ProcessPoolExecutor.submit (one per key),
                   then a dict of results

Workers are started before the clock (a warm-up map).
"""
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def double(x):
    return 2 * x


def ppe_keyed(n, workers):
    with ProcessPoolExecutor(workers) as executor:
        list(executor.map(double, range(100)))

        start = time.perf_counter()
        futures = {f"k{i}": executor.submit(double, i) for i in range(n)}
        results = {key: f.result() for key, f in futures.items()}
        elapsed = time.perf_counter() - start
        assert len(results) == n
        return n / elapsed


def main(argv):
    mode = argv[1]
    args = [int(a) for a in argv[2:]]
    if mode == "ppe_keyed":
        value = ppe_keyed(*args)
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    print(f"{value:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
