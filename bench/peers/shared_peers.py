#!/usr/bin/env python3
"""Python peers of troupe-compare's shared-state comparisons.

Run by troupe-compare in the same run as troupe's side (Debian's
/usr/bin/python3). Each mode prints one number:

  value_add N W      adds/s: W processes each add 1 to a multiprocessing.Value
                     N times, each under the Value's own lock
  manager_update N W updates/s: W processes each add 1 to one key of a
                     multiprocessing Manager dict N times, each under a
                     Manager lock (an atomic read-modify-write, as troupe's
                     dict.update is)

The processes start before the clock and wait at a barrier; the clock runs
from the barrier to the last one's end.
"""
import multiprocessing as mp
import sys
import time


def add_loop(value, n, barrier):
    barrier.wait()
    for _ in range(n):
        with value.get_lock():
            value.value += 1


def update_loop(table, lock, n, barrier):
    barrier.wait()
    for _ in range(n):
        with lock:
            table["k"] = table.get("k", 0) + 1


def timed(target, args, workers):
    barrier = mp.Barrier(workers + 1)
    procs = [mp.Process(target=target, args=(*args, barrier)) for _ in range(workers)]
    for p in procs:
        p.start()
    barrier.wait()
    start = time.perf_counter()
    for p in procs:
        p.join()
    return time.perf_counter() - start


def value_add(n, workers):
    value = mp.Value("q", 0)
    elapsed = timed(add_loop, (value, n), workers)
    if value.value != n * workers:
        raise SystemExit(f"multiprocessing.Value lost adds: {value.value} of {n * workers}")
    return n * workers / elapsed


def manager_update(n, workers):
    with mp.Manager() as manager:
        table = manager.dict()
        lock = manager.Lock()
        elapsed = timed(update_loop, (table, lock, n), workers)
        if table["k"] != n * workers:
            raise SystemExit(f"Manager dict lost updates: {table['k']} of {n * workers}")
        return n * workers / elapsed


def main(argv):
    mode = argv[1]
    args = [int(a) for a in argv[2:]]
    if mode == "value_add":
        value = value_add(*args)
    elif mode == "manager_update":
        value = manager_update(*args)
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    print(f"{value:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
