"""What each worker of `kerasdl train --workers 2` reads: its own share of the files.

Makes an image folder and a CSV file (in a temporary folder), trains one epoch on each
with two loopback workers, and counts what each worker's training pipeline read
(`KERASDL_SHARD_RECORD`: one line per image file decoded, per CSV row parsed). Prints
one JSON object: the training examples, and per worker the examples read, distinct, and
shared with the other worker.

    python benchmarks/worker_shards.py [--images 200] [--rows 2000]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def make_folder(folder, count, size=16, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    for index in range(count):
        name, level = (("bright", 200), ("dark", 50))[index % 2]
        (folder / name).mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(-40, 40, (size, size, 3)) + level
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / name / f"{index}.png")


def make_csv(path, rows, seed=0):
    x = np.random.default_rng(seed).normal(size=(rows, 3))
    with open(path, "w") as handle:
        handle.write("a,b,c,y\n")
        handle.writelines(f"{a:.4f},{b:.4f},{c:.4f},{2 * a - b + 0.1 * c:.4f}\n" for a, b, c in x)


def measure(args, record):
    env = {**os.environ, "KERASDL_SHARD_RECORD": str(record), "KERASDL_CSV_STREAM_MB": "0"}
    result = subprocess.run([sys.executable, "-m", "kerasdl", "train", *args, "--epochs", "1",
                             "--workers", "2"], env=env, capture_output=True, text=True)
    if result.returncode:
        print(result.stderr[-4000:], file=sys.stderr)
        sys.exit(f"Error: {' '.join(args)} failed (its stderr above).")
    run = Path(result.stdout.strip())
    train = json.loads((run / "config.json").read_text())["spec"]["num_examples"]["train"]
    shares = [(record / f"worker{index}.txt").read_text().split() for index in (0, 1)]
    return {"training_examples": train,
            "per_worker": [{"read": len(share), "distinct": len(set(share)),
                            "also_read_by_the_other": len(set(share) & set(other))}
                           for share, other in zip(shares, shares[::-1])]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--rows", type=int, default=2000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kerasdl-shards-") as folder:
        folder = Path(folder)
        make_folder(folder / "images", options.images)
        make_csv(folder / "table.csv", options.rows)
        figures = {
            "image_folder": measure(["cnn", "--data", str(folder / "images"), "--image-size",
                                     "16", "--output", str(folder / "run-images")],
                                    folder / "record-images"),
            "streamed_csv": measure(["regression", "--data", str(folder / "table.csv"),
                                     "--target", "y", "--output", str(folder / "run-csv")],
                                    folder / "record-csv"),
        }
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
