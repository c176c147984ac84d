"""Searches of issue 19: what `--prune` saves, and what `--warm-start` buys.

1. Pruning: the same seeded random search of the cnn recipe on the embedded digits
   (6 trials x 6 epochs), with and without `--prune` (its defaults): the epochs trained,
   summed over the trials, and the best validation accuracy of each.
2. Warm start: an earlier random search (`--trials-earlier` trials), then two Bayesian
   searches with the same seed, one cold and one `--warm-start`ed from the earlier one:
   the new trials each needed to reach the earlier search's best validation accuracy
   (`--tolerance` below it counts), and the best each found.

3. Disk: the size of the search folder after a 6-trial random search and a Hyperband
   search (`--epochs 3`) of the cnn recipe, and how many weight files it holds; with
   `--kerasdl-path CHECKOUT` the same searches run with another checkout's kerasdl
   (for a before/after).

Parts 1 and 2 repeat for `--seeds` seeds (1337 on) and print the median with the range.
Settings that keep it affordable on a shared 2-core CPU: 16x16 images; the warm-start
part searches filters, dropout and learning rate with the other hyperparameters pinned
(3 dimensions: Bayesian optimisation fits its model after 9 trials).

Usage:
    python benchmarks/search.py [--seeds 3] [--part prune|warm|disk|all] [--workdir DIR]
    python benchmarks/search.py --part disk --kerasdl-path /path/to/older/checkout
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

COMMON = ["--image-size", "16", "--no-retrain"]
PINNED = ["--set", "batch_norm=true", "--set", "conv_blocks=2", "--set", "convs_per_block=1",
          "--set", "augment=false"]


def tune(out, *args, kerasdl_path=None):
    started = time.perf_counter()
    env = dict(os.environ)
    if kerasdl_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [kerasdl_path, env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-m", "kerasdl", "tune", "cnn", *COMMON, *args,
                           "--output", str(out)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"kerasdl tune failed:\n{done.stderr[-3000:]}")
    frame = pd.read_csv(out / "results.csv", dtype={"trial_id": str})
    return frame, time.perf_counter() - started


def spread(values, fmt="{:.3f}"):
    values = sorted(values)
    text = fmt.format(statistics.median(values))
    if len(values) > 1:
        text += f" ({fmt.format(values[0])}-{fmt.format(values[-1])})"
    return text


def prune_part(seeds, workdir):
    rows = []
    for seed in seeds:
        found = {}
        for label, extra in (("unpruned", []), ("pruned", ["--prune"])):
            frame, seconds = tune(Path(workdir) / f"prune-{label}-{seed}", "--tuner", "random",
                                  "--max-trials", "6", "--epochs", "6", "--seed", str(seed),
                                  *extra)
            done = frame[frame["status"] == "COMPLETED"]
            found[label] = (int(frame["epochs"].sum()), float(done["val_accuracy"].max()),
                            int((frame["status"] == "PRUNED").sum()), seconds)
        rows.append((seed, found))
        print(f"seed {seed}: {found}", file=sys.stderr, flush=True)
    ratio = [f["pruned"][0] / f["unpruned"][0] for _, f in rows]
    gap = [f["unpruned"][1] - f["pruned"][1] for _, f in rows]
    print("| seed | epochs unpruned | epochs pruned | pruned / unpruned | trials pruned | "
          "best val_accuracy unpruned | best pruned | difference |")
    print("|---|---|---|---|---|---|---|---|")
    for seed, f in rows:
        print(f"| {seed} | {f['unpruned'][0]} | {f['pruned'][0]} | "
              f"{f['pruned'][0] / f['unpruned'][0]:.2f} | {f['pruned'][2]} | "
              f"{f['unpruned'][1]:.4f} | {f['pruned'][1]:.4f} | "
              f"{f['unpruned'][1] - f['pruned'][1]:+.4f} |")
    print(f"\nPruned / unpruned epochs: median {spread(ratio, '{:.2f}')}; best val_accuracy "
          f"lost to pruning: median {spread(gap, '{:+.4f}')} (target: <= 0.70 and <= 0.01).")


def reached(frame, bar, imported):
    new = frame[frame["status"] != "IMPORTED"].sort_values(
        "trial_id", key=lambda ids: ids.astype(int))
    for count, (_, row) in enumerate(new.iterrows(), 1):
        if row["status"] == "COMPLETED" and row["val_accuracy"] >= bar:
            return count
    return None


def warm_part(seeds, workdir, earlier_trials, new_trials, tolerance):
    rows = []
    for seed in seeds:
        base = ["--epochs", "4", "--seed", str(seed), *PINNED]
        earlier_dir = Path(workdir) / f"earlier-{seed}"
        earlier, _ = tune(earlier_dir, "--tuner", "random", "--max-trials", str(earlier_trials),
                          *base)
        best = float(earlier[earlier["status"] == "COMPLETED"]["val_accuracy"].max())
        bar = best - tolerance
        cold, _ = tune(Path(workdir) / f"cold-{seed}", "--tuner", "bayesian", "--max-trials",
                       str(new_trials), *base)
        warm, _ = tune(Path(workdir) / f"warm-{seed}", "--tuner", "bayesian", "--max-trials",
                       str(new_trials), "--warm-start", str(earlier_dir), *base)
        found = {"best": best,
                 "cold": (reached(cold, bar, 0), float(cold["val_accuracy"].max())),
                 "warm": (reached(warm, bar, earlier_trials),
                          float(warm[warm["status"] == "COMPLETED"]["val_accuracy"].max()),
                          int((warm["status"] == "IMPORTED").sum()))}
        rows.append((seed, found))
        print(f"seed {seed}: {found}", file=sys.stderr, flush=True)
    print(f"\n| seed | earlier best ({earlier_trials} random trials) | new trials to reach it, "
          f"cold bayesian | warm bayesian | best new, cold | best new, warm | imported |")
    print("|---|---|---|---|---|---|---|")
    for seed, f in rows:
        def shown(n):
            return str(n) if n is not None else f"not in {new_trials}"
        print(f"| {seed} | {f['best']:.4f} | {shown(f['cold'][0])} | {shown(f['warm'][0])} | "
              f"{f['cold'][1]:.4f} | {f['warm'][1]:.4f} | {f['warm'][2]} |")
    cost = [[f[k][0] if f[k][0] is not None else new_trials + 1 for _, f in rows]
            for k in ("cold", "warm")]
    print(f"\nNew trials to reach the earlier best (within {tolerance}; {new_trials + 1} = not "
          f"reached): cold median {spread(cost[0], '{:.0f}')}, warm median "
          f"{spread(cost[1], '{:.0f}')}.")


def disk_part(workdir, kerasdl_path):
    print("\n| search | trials | folder size | weight files | largest weight file |")
    print("|---|---|---|---|---|")
    for label, args in (("random, 6 trials x 2 epochs", ["--tuner", "random", "--max-trials",
                                                          "6", "--epochs", "2"]),
                        ("hyperband, --epochs 3", ["--tuner", "hyperband", "--epochs", "3"])):
        out = Path(workdir) / f"disk-{args[1]}"
        frame, _ = tune(out, *args, kerasdl_path=kerasdl_path)
        files = [p for p in out.rglob("*") if p.is_file()]
        weights = [p for p in files if p.name.startswith("checkpoint") or p.suffix == ".keras"]
        size = sum(p.stat().st_size for p in files)
        largest = max((p.stat().st_size for p in weights), default=0)
        print(f"| {label} | {len(frame)} | {size / 1e6:.2f} MB | {len(weights)} | "
              f"{largest / 1e6:.2f} MB |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--part", choices=["prune", "warm", "disk", "all"], default="all")
    parser.add_argument("--kerasdl-path", help="run part 3 with this checkout's kerasdl")
    parser.add_argument("--earlier-trials", type=int, default=10)
    parser.add_argument("--new-trials", type=int, default=8)
    parser.add_argument("--tolerance", type=float, default=0.0)
    parser.add_argument("--workdir")
    args = parser.parse_args()
    seeds = [1337 + i for i in range(args.seeds)]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or tmp
        if args.part in ("prune", "all"):
            prune_part(seeds, workdir)
        if args.part in ("warm", "all"):
            warm_part(seeds, workdir, args.earlier_trials, args.new_trials, args.tolerance)
        if args.part in ("disk", "all"):
            disk_part(workdir, args.kerasdl_path)


if __name__ == "__main__":
    main()
