#!/usr/bin/env python3
"""Python peer of troupe-compare's pipeline.100k_python.

Run by troupe-compare in the same run as troupe's side (Debian's
/usr/bin/python3). Prints one number:

  ppe_pipeline INPUT OUTPUT W   items/s, timed from the interpreter's start
                                to its exit by the caller; this process
                                prints its own in-process rate too

What `troupe run` does for a job of testing.double over a JSONL file: read
the file, ProcessPoolExecutor(W).map(double, items, chunksize=1000), write one
JSON record per item ({"key", "ok", "value", "attempts", "worker", "ms"}),
each with one write as it arrives.
"""
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def double(x):
    start = time.perf_counter()
    value = 2 * x
    return value, os.getpid(), (time.perf_counter() - start) * 1000.0


def items(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def ppe_pipeline(input_path, output_path, workers):
    start = time.perf_counter()
    n = 0
    with ProcessPoolExecutor(workers) as executor, open(output_path, "w", encoding="utf-8") as out:
        for key, (value, worker, ms) in enumerate(executor.map(double, items(input_path), chunksize=1000), 1):
            out.write(json.dumps({"key": key, "ok": True, "value": value, "attempts": 1, "worker": worker,
                                  "ms": round(ms, 3)}) + "\n")
            out.flush()
            n += 1
    return n / (time.perf_counter() - start)


def main(argv):
    mode = argv[1]
    if mode == "ppe_pipeline":
        value = ppe_pipeline(argv[2], argv[3], int(argv[4]))
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    print(value)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
