"""Searches of issue 19: what `--prune` saves, and what `--warm-start` buys.

1. Pruning: the same seeded random search of the cnn recipe on the embedded digits
   (6 trials x 6 epochs), with and without `--prune` (its defaults): the epochs trained,
   summed over the trials, and the best validation accuracy of each.
2. Warm start: the regression recipe on the diabetes table (442 rows; val_mae, lower is
   better), learning rate, weight decay and units searched, the rest pinned (3
   dimensions: Bayesian optimisation fits its model after 9 completed trials). An
   earlier random search (`--trials-earlier` trials, seed S + 10000), then two Bayesian
   searches with seed S, one cold and one `--warm-start`ed from the earlier one: the new
   trials each needed to reach the earlier search's best val_mae (within `--tolerance`,
   a fraction of it: 0.01 = 1%), and the best each found. The earlier search has a seed
   of its own so that the cold search's random start is not a replay of it.

3. Disk: the size of the search folder after a 6-trial random search and a Hyperband
   search (`--epochs 3`) of the cnn recipe, and how many weight files it holds; with
   `--kerasdl-path CHECKOUT` the same searches run with another checkout's kerasdl
   (for a before/after).

Parts 1 and 2 repeat for `--seeds` seeds (`--first-seed`, 1337, on) and print the median with the range.
Settings that keep it affordable on a shared 2-core CPU: 16x16 images for the cnn parts,
20 epochs of a small MLP for the warm-start part.

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

COMMON = ["cnn", "--image-size", "16", "--no-retrain"]
# Warm start: the regression recipe on diabetes, 3 hyperparameters searched.
WARM = ["regression", "--data", "diabetes", "--epochs", "20", "--no-retrain",
        "--set", "num_layers=2", "--set", "activation=relu", "--set", "dropout_rate=0.1",
        "--set", "linear_path=true", "--set", "loss=mse"]
WARM_OBJECTIVE = "val_mae"  # the recipe's objective, minimised
# The earlier search's seed: Keras Tuner draws a search's random values from consecutive
# seeds from its own, so a nearby seed would share most of its draws.
EARLIER_SEED_OFFSET = 10_000
PINNED = ["--set", "batch_norm=true", "--set", "conv_blocks=2", "--set", "convs_per_block=1",
          "--set", "augment=false"]


def tune(out, *args, kerasdl_path=None, common=COMMON):
    started = time.perf_counter()
    env = dict(os.environ)
    if kerasdl_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [kerasdl_path, env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-m", "kerasdl", "tune", *common, *args,
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


def reached(frame, bar):
    """How many new (not imported) trials, in trial order, it took to reach `bar`
    (val_mae at most `bar`); None if none did."""
    new = frame[frame["status"] != "IMPORTED"].sort_values(
        "trial_id", key=lambda ids: ids.astype(int))
    for count, (_, row) in enumerate(new.iterrows(), 1):
        if row["status"] == "COMPLETED" and row[WARM_OBJECTIVE] <= bar:
            return count
    return None


def best_new(frame):
    done = frame[frame["status"] == "COMPLETED"]
    return float(done[WARM_OBJECTIVE].min())


def warm_part(seeds, workdir, earlier_trials, new_trials, tolerance):
    rows = []
    for seed in seeds:
        earlier_dir = Path(workdir) / f"earlier-{seed}"
        earlier, _ = tune(earlier_dir, "--tuner", "random", "--max-trials", str(earlier_trials),
                          "--seed", str(seed + EARLIER_SEED_OFFSET), common=WARM)
        best = best_new(earlier)
        bar = best * (1 + tolerance)
        arms = {}
        for label, extra in (("cold", []), ("warm", ["--warm-start", str(earlier_dir)])):
            frame, _ = tune(Path(workdir) / f"{label}-{seed}", "--tuner", "bayesian",
                            "--max-trials", str(new_trials), "--seed", str(seed), *extra,
                            common=WARM)
            arms[label] = (reached(frame, bar), best_new(frame),
                           int((frame["status"] == "IMPORTED").sum()))
        found = {"best": best, "bar": bar, **arms}
        rows.append((seed, found))
        print(f"seed {seed}: {found}", file=sys.stderr, flush=True)

    def shown(n):
        return str(n) if n is not None else f"not in {new_trials}"

    print(f"\n| seed | earlier best {WARM_OBJECTIVE} ({earlier_trials} random trials) | "
          f"reached at {WARM_OBJECTIVE} <= | new trials to reach it: cold bayesian | "
          f"warm bayesian | best new: cold | warm | imported |")
    print("|---|---|---|---|---|---|---|---|")
    for seed, f in rows:
        print(f"| {seed} | {f['best']:.2f} | {f['bar']:.2f} | {shown(f['cold'][0])} | "
              f"{shown(f['warm'][0])} | {f['cold'][1]:.2f} | {f['warm'][1]:.2f} | "
              f"{f['warm'][2]} |")
    cost = [[f[k][0] if f[k][0] is not None else new_trials + 1 for _, f in rows]
            for k in ("cold", "warm")]
    fewer = sum(w < c for c, w in zip(*cost))
    print(f"\nNew trials to reach the earlier best (within {tolerance:.0%}; {new_trials + 1} = "
          f"not reached): cold median {spread(cost[0], '{:.0f}')}, warm median "
          f"{spread(cost[1], '{:.0f}')}; warm took fewer on {fewer} of {len(rows)} seeds.")


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
    parser.add_argument("--first-seed", type=int, default=1337,
                        help="the seeds are FIRST_SEED on (one seed per process in parallel)")
    parser.add_argument("--part", choices=["prune", "warm", "disk", "all"], default="all")
    parser.add_argument("--kerasdl-path", help="run part 3 with this checkout's kerasdl")
    parser.add_argument("--earlier-trials", type=int, default=10)
    parser.add_argument("--new-trials", type=int, default=8)
    parser.add_argument("--tolerance", type=float, default=0.01,
                        help="warm start: how far above the earlier best val_mae still "
                             "counts as reaching it, as a fraction of it")
    parser.add_argument("--workdir")
    args = parser.parse_args()
    seeds = [args.first_seed + i for i in range(args.seeds)]
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
