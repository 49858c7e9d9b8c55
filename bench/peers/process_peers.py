#!/usr/bin/env python3
"""Python peers of troupe-compare's process-pool comparisons.

Run by troupe-compare in the same run as troupe's side (Debian's
/usr/bin/python3, python3-joblib for loky). Each mode prints one number:

  ppe_submit N W       tasks/s: ProcessPoolExecutor, submit N tiny tasks, then await all
  loky_submit N W      tasks/s: the same with loky
  ppe_map N W CHUNK    items/s: ProcessPoolExecutor.map(chunksize=CHUNK) over N ints
  pool_map N W CHUNK   items/s: multiprocessing.Pool.map(chunksize=CHUNK) over N ints
  ppe_cold W RUNS      ms: ProcessPoolExecutor construction to the first result (median of RUNS)

Workers are started before the clock (a warm-up map) except for ppe_cold.
Each rate is one timed run: troupe-compare calls this script once per round,
between troupe's rounds, and takes the median of the rounds.
"""
import multiprocessing as mp
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def double(x):
    return 2 * x


def submit_each(make_executor, n, workers):
    with make_executor(workers) as executor:
        list(executor.map(double, range(100)))

        start = time.perf_counter()
        futures = [executor.submit(double, i) for i in range(n)]
        for f in futures:
            f.result()
        return n / (time.perf_counter() - start)


def loky_executor(workers):
    from joblib.externals.loky import ProcessPoolExecutor as LokyExecutor

    return LokyExecutor(max_workers=workers)


def ppe_map(n, workers, chunk):
    with ProcessPoolExecutor(workers) as executor:
        list(executor.map(double, range(100)))

        start = time.perf_counter()
        total = sum(executor.map(double, range(n), chunksize=chunk))
        assert total == n * (n - 1)
        return n / (time.perf_counter() - start)


def pool_map(n, workers, chunk):
    with mp.Pool(workers) as pool:
        pool.map(double, range(100))

        start = time.perf_counter()
        total = sum(pool.map(double, range(n), chunksize=chunk))
        assert total == n * (n - 1)
        return n / (time.perf_counter() - start)


def ppe_cold(workers, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        executor = ProcessPoolExecutor(workers)
        executor.submit(double, 1).result()
        times.append((time.perf_counter() - start) * 1000)
        executor.shutdown(wait=True)
    return statistics.median(times)


def main(argv):
    mode = argv[1]
    args = [int(a) for a in argv[2:]]
    if mode == "ppe_submit":
        value = submit_each(ProcessPoolExecutor, *args)
    elif mode == "loky_submit":
        value = submit_each(loky_executor, *args)
    elif mode == "ppe_map":
        value = ppe_map(*args)
    elif mode == "pool_map":
        value = pool_map(*args)
    elif mode == "ppe_cold":
        value = ppe_cold(*args)
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    print(f"{value:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
