#!/usr/bin/env python3
"""Python peer of troupe-compare's mpi.* lines: mpi4py.futures.MPIPoolExecutor.

Run by troupe-compare under Open MPI, with mpi4py's own launcher, so rank 0
runs this script and the other ranks are the executor's workers:

  mpirun -np 3 /usr/bin/python3 -m mpi4py.futures mpi_peers.py map N CHUNK

  map N CHUNK   items/s: MPIPoolExecutor().map(double, range(N), chunksize=CHUNK)

The workers are started before the clock (a warm-up map). Prints one number.
"""
import sys
import time

from mpi4py.futures import MPIPoolExecutor


def double(x):
    return 2 * x


def main():
    mode, n, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if mode != "map":
        sys.exit(f"mpi_peers.py: unknown mode {mode!r}")
    with MPIPoolExecutor() as executor:
        list(executor.map(double, range(100), chunksize=1))
        start = time.perf_counter()
        seen = sum(1 for _ in executor.map(double, range(n), chunksize=chunk))
        elapsed = time.perf_counter() - start
    if seen != n:
        sys.exit(f"mpi_peers.py: {seen} of {n} results")
    print(f"{n / elapsed:.6g}")


if __name__ == "__main__":
    main()
