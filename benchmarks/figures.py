"""The recipes' headline figures: median of N seeds with the range, from one command.

    python benchmarks/figures.py [--recipes cnn,lstm] [--seeds 3] [--work figures-runs]

Trains every figure's command once per seed (`--seed 1337`, 1338, ...; the data split
stays the same, `split_seed`) in its own process, reads each run's metrics.json, and
prints a Markdown table (figure, median, range, per-seed values, command) on stdout,
also written to `WORK/figures.md` and `WORK/figures.csv`. The README's results table
and the recipes' `Result:` lines are pasted from it. A run already in WORK with a
completed metrics.json is reused, so an interrupted benchmark continues where it
stopped; delete WORK to measure afresh. Recipes are listed cheapest first.
Progress goes to stderr.

mobilenet and vgg16 are here from scratch (`--weights none`) on shapes, last and
slowest (vgg16 about 20 s an epoch on 2 cores); their fine-tuned figures need
pretrained weights (a download) or a pretraining run, and come from the commands in
BENCHMARKS.md, "Transfer learning".
"""

import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

# recipe -> figures: (label, extra `kerasdl train` arguments, path into metrics.json,
# decimals). Every figure of one recipe and command shares its runs.
FIGURES = {
    "perceptron": [
        ("xor, MLP: test accuracy", [], ("test", "accuracy"), 3),
        ("xor, single-layer perceptron: test accuracy", ["--set", "hidden_layers=0"],
         ("test", "accuracy"), 3),
        ("blobs, MLP: test accuracy", ["--data", "blobs"], ("test", "accuracy"), 3),
        ("blobs, single-layer perceptron: test accuracy",
         ["--data", "blobs", "--set", "hidden_layers=0"], ("test", "accuracy"), 3),
    ],
    "regression": [
        ("auto_mpg: test MAE (mpg)", [], ("test", "mae"), 2),
        ("auto_mpg: linear regression MAE", [], ("baseline", "mae"), 2),
    ],
    "rbm": [
        ("digits: test reconstruction MSE", [], ("test", "loss"), 4),
        ("one epoch at learning rate 0.001: test reconstruction MSE",
         ["--epochs", "1", "--set", "learning_rate=0.001"], ("test", "loss"), 3),
    ],
    "autoencoder": [
        ("digits: test MSE (undercomplete)", [], ("test", "mse"), 4),
        ("without the 0s: anomaly ROC AUC of the 0s", ["--exclude-class", "0"],
         ("anomaly_roc_auc",), 3),
        *[(f"digits: test MSE ({variant})", ["--set", f"variant={variant}"], ("test", "mse"), 4)
          for variant in ("sparse", "denoising", "convolutional", "contractive", "variational")],
    ],
    "cnn": [("digits: test accuracy", [], ("test", "accuracy"), 3)],
    "lstm": [
        ("seasonal: test MAE at horizon 6", [], ("test", "mae"), 2),
        ("seasonal: naive last-value MAE", [], ("baseline", "mae"), 2),
        ("patterns: test accuracy", ["--data", "patterns"], ("test", "accuracy"), 3),
        ("patterns, LSTM cell: test accuracy", ["--data", "patterns", "--set", "cell=lstm"],
         ("test", "accuracy"), 3),
    ],
    "attention": [("patterns: test accuracy", [], ("test", "accuracy"), 3)],
    "gan": [("digits: validation MMD", [], ("validation", "mmd"), 3)],
    "mobilenet": [("shapes, from scratch: test accuracy", ["--weights", "none"],
                   ("test", "accuracy"), 3)],
    "vgg16": [("shapes, from scratch: test accuracy", ["--weights", "none"],
               ("test", "accuracy"), 3)],
}
FIRST_SEED = 1337


def _value(metrics, path):
    for key in path:
        metrics = metrics.get(key) if isinstance(metrics, dict) else None
    return metrics


def _run(recipe, args, seed, folder, train=True):
    """Trains one run into `folder` (reused when it completed); returns its metrics.

    With `train` False a run not completed yet gives None.
    """
    metrics_file = folder / "metrics.json"
    config_file = folder / "config.json"
    if metrics_file.exists() and config_file.exists():
        if json.loads(config_file.read_text()).get("status") == "completed":
            return json.loads(metrics_file.read_text())
    if not train:
        return None
    command = [sys.executable, "-m", "kerasdl", "train", recipe, *args, "--seed", str(seed),
               "--output", str(folder)]
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise SystemExit(f"Failed: {' '.join(command)}: {tail[0]}")
    print(f"[figures] {recipe} {' '.join(args)} seed {seed}: "
          f"{time.perf_counter() - start:.0f} s", file=sys.stderr)
    return json.loads(metrics_file.read_text())


def measure(recipes, seeds, work, train=True):
    """Returns one row per figure: label, values per seed, median, min, max, command.

    With `train` False only completed runs are read; a figure missing any is left out.
    """
    rows = []
    for recipe in recipes:
        commands = {}
        for label, args, path, decimals in FIGURES[recipe]:
            key = tuple(args)
            if key not in commands:
                name = "default" if not args else "_".join(a.strip("-").replace("=", "-")
                                                          for a in args)
                commands[key] = [_run(recipe, list(args), FIRST_SEED + offset,
                                      work / recipe / f"{name}-seed{FIRST_SEED + offset}",
                                      train)
                                 for offset in range(seeds)]
            if any(metrics is None for metrics in commands[key]):
                print(f"[figures] left out (runs missing): {recipe}: {label}", file=sys.stderr)
                continue
            values = [_value(metrics, path) for metrics in commands[key]]
            if any(value is None for value in values):
                raise SystemExit(f"{recipe}: no {'.'.join(path)} in metrics.json")
            rows.append({
                "recipe": recipe, "figure": label, "decimals": decimals,
                "median": statistics.median(values), "min": min(values), "max": max(values),
                "values": values,
                "best_epochs": [metrics.get("best_epoch") for metrics in commands[key]],
                "command": " ".join(["kerasdl train", recipe, *args]),
            })
    return rows


def markdown(rows, seeds):
    lines = [f"| recipe | figure | median of {seeds} seeds | range | seeds {FIRST_SEED}.. | "
             "best epochs | command |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        fmt = f"{{:.{row['decimals']}f}}"
        lines.append(
            f"| {row['recipe']} | {row['figure']} | {fmt.format(row['median'])} | "
            f"{fmt.format(row['min'])}-{fmt.format(row['max'])} | "
            f"{', '.join(fmt.format(v) for v in row['values'])} | "
            f"{', '.join(str(e) for e in row['best_epochs'])} | `{row['command']}` |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", default=",".join(FIGURES),
                        help=f"comma-separated, from: {', '.join(FIGURES)} (default: all)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per figure (default 3)")
    parser.add_argument("--work", type=Path, default=Path("figures-runs"),
                        help="folder of the runs (default: figures-runs)")
    parser.add_argument("--no-train", action="store_true",
                        help="tabulate the completed runs only; train nothing")
    options = parser.parse_args(argv)
    recipes = [name.strip() for name in options.recipes.split(",") if name.strip()]
    unknown = [name for name in recipes if name not in FIGURES]
    if unknown or not recipes:
        parser.error(f"unknown recipes {unknown}; valid: {', '.join(FIGURES)}")
    if options.seeds < 1:
        parser.error(f"--seeds must be a positive integer. Received: {options.seeds}")
    rows = measure(recipes, options.seeds, options.work, train=not options.no_train)
    table = markdown(rows, options.seeds)
    options.work.mkdir(parents=True, exist_ok=True)
    (options.work / "figures.md").write_text(table + "\n")
    with open(options.work / "figures.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["recipe", "figure", "median", "min", "max", "values", "command"])
        for row in rows:
            writer.writerow([row["recipe"], row["figure"], row["median"], row["min"],
                             row["max"], " ".join(map(str, row["values"])), row["command"]])
    print(table)


if __name__ == "__main__":
    main()
