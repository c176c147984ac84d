"""Peak memory of `kerasdl train regression` on a CSV file as it grows 16x (issue 16).

Generates CSV files of 100,000 and 1,600,000 rows x 20 numeric columns and a target
(once, into a cache folder), then runs, each in a fresh process,

    kerasdl train regression --data FILE --target y --batch-size 1024 --epochs 1

and reports its peak resident memory (the child's `ru_maxrss`), wall time, and the
ratio of the two peaks (target: <= 1.3; memory bounded by the chunk size, not the file).

Usage:
    python benchmarks/memory_csv.py [--rows 100000 1600000] [--cache /tmp/kerasdl-csv]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

COLUMNS = 20
MEASURE = ("import resource, subprocess, sys; "
           "code = subprocess.run(sys.argv[1:]).returncode; "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)")


def make_csv(path, rows, seed=0, chunk=200_000):
    """Writes `rows` rows of `x1..x20` and `y = x . w + noise`, chunk by chunk."""
    if path.is_file():
        return path
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=COLUMNS)
    partial = path.with_suffix(".partial")
    with open(partial, "w") as out:
        out.write(",".join([f"x{i + 1}" for i in range(COLUMNS)] + ["y"]) + "\n")
        for start in range(0, rows, chunk):
            count = min(chunk, rows - start)
            x = rng.normal(size=(count, COLUMNS))
            y = x @ weights + rng.normal(0, 0.5, count)
            np.savetxt(out, np.column_stack([x, y]), fmt="%.5f", delimiter=",")
    partial.rename(path)
    return path


def peak_rss(data, workdir):
    """Peak RSS (MB) and seconds of one training run in a fresh process."""
    command = [sys.executable, "-m", "kerasdl", "train", "regression", "--data", str(data),
               "--target", "y", "--batch-size", "1024", "--epochs", "1",
               "--output", str(workdir / f"run_{data.stem}")]
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True,
                            text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    seconds = time.perf_counter() - start
    kilobytes, code = result.stdout.strip().splitlines()[-1].split()
    if code != "0":
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return int(kilobytes) / 1024, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs=2, default=[100_000, 1_600_000])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "kerasdl-csv")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for rows in args.rows:
            data = make_csv(args.cache / f"rows_{rows}.csv", rows)
            megabytes, seconds = peak_rss(data, Path(workdir))
            results.append({"rows": rows, "file_mb": round(data.stat().st_size / 2 ** 20, 1),
                            "peak_rss_mb": round(megabytes), "seconds": round(seconds, 1)})
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    small, large = results
    print(json.dumps({"runs": results,
                      "rss_ratio": round(large["peak_rss_mb"] / small["peak_rss_mb"], 2),
                      "threshold_mb": float(os.environ.get("KERASDL_CSV_STREAM_MB", 64))},
                     indent=2))


if __name__ == "__main__":
    main()
