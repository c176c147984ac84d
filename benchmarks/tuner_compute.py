"""How much compute do Hyperband and Bayesian optimisation need to match RandomSearch?

Runs the three tuners on the cnn recipe with the embedded digits (same seed, same
per-trial epoch budget) through `kerasdl tune`, takes RandomSearch's best validation
accuracy as the bar, and reports for each tuner the epochs summed over its trials,
in trial order, until a trial came within 0.5 points of that bar.

Usage:
    python benchmarks/tuner_compute.py [--trials 10] [--epochs 15] [--workdir DIR]
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd


def search(tuner, trials, epochs, workdir):
    out = Path(workdir) / tuner
    subprocess.run([sys.executable, "-m", "kerasdl", "tune", "cnn", "--tuner", tuner,
                    "--max-trials", str(trials), "--epochs", str(epochs), "--no-retrain",
                    "--output", str(out)], check=True, capture_output=True)
    frame = pd.read_csv(out / "results.csv").sort_values("trial_id")
    frame = frame[frame["status"] == "COMPLETED"]
    spent = frame["epochs"].tolist()  # trained in each trial (hyperband: from initial_epoch)
    return frame["val_accuracy"].tolist(), spent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--workdir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or tmp
        found = {tuner: search(tuner, args.trials, args.epochs, workdir)
                 for tuner in ("random", "bayesian", "hyperband")}
    bar = max(found["random"][0]) - 0.005
    print(f"RandomSearch best val_accuracy: {max(found['random'][0]):.4f}; bar: {bar:.4f}")
    print("| tuner | trials | best val_accuracy | epochs to reach the bar | epochs in all |")
    print("|---|---|---|---|---|")
    for tuner, (scores, spent) in found.items():
        total, reached = 0, None
        for score, epochs in zip(scores, spent):
            total += epochs
            if reached is None and score >= bar:
                reached = total
        print(f"| {tuner} | {len(scores)} | {max(scores):.4f} | "
              f"{reached if reached is not None else 'not reached'} | {sum(spent)} |")


if __name__ == "__main__":
    main()
