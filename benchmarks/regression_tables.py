"""Writes the "Regression on real tables" section of BENCHMARKS.md (issue 14, item 7).

The `regression` recipe with its defaults against linear regression (scikit-learn,
fitted on the same training split) on every real regression table that ships offline
inside an installed package: the embedded auto_mpg, scikit-learn's diabetes, and
scikit-learn's linnerud (20 men: weight, waist and pulse from three exercises, one
target at a time). Each table is trained through the command line,
`kerasdl train regression --data ... --seed S`, for three seeds from 1337; the split
is the same for every seed (`split_seed` 1337), so the linear baseline is one number.

    python benchmarks/regression_tables.py [--seeds 3] [--work DIR] [--no-write]
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- regression-tables:begin -->", "<!-- regression-tables:end -->"


def tables(work):
    """Returns `(label, data arguments)` for every table, writing the CSVs it needs."""
    from sklearn.datasets import load_linnerud

    found = [("auto_mpg (392 cars, mpg)", ["--data", "auto_mpg"]),
             ("diabetes (442 patients, progression)", ["--data", "diabetes"])]
    linnerud = load_linnerud(as_frame=True)
    for target in linnerud.target.columns:
        path = work / f"linnerud_{target.lower()}.csv"
        linnerud.data.assign(**{target: linnerud.target[target]}).to_csv(path, index=False)
        found.append((f"linnerud (20 men, {target.lower()})",
                      ["--data", str(path), "--target", target]))
    return found


def train(data_args, seed, output):
    """Trains the recipe with its defaults; returns its metrics.json and epochs run."""
    command = [sys.executable, "-m", "kerasdl", "train", "regression", *data_args,
               "--seed", str(seed), "--output", str(output)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    metrics = json.loads((output / "metrics.json").read_text())
    epochs_run = len((output / "history.csv").read_text().strip().splitlines()) - 1
    return metrics, epochs_run


def median_range(values, digits):
    return (f"{statistics.median(values):.{digits}f} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--work", default="regression-tables-runs")
    parser.add_argument("--no-write", action="store_true", help="print, do not edit BENCHMARKS.md")
    args = parser.parse_args()
    work = Path(args.work) / time.strftime("%Y%m%d-%H%M%S")
    work.mkdir(parents=True)
    rows = []
    for label, data_args in tables(work):
        maes, epochs, baseline = [], [], None
        for seed in range(1337, 1337 + args.seeds):
            print(f"[regression_tables] {label}, seed {seed}", file=sys.stderr)
            metrics, epochs_run = train(data_args, seed,
                                        work / f"{label.split()[0]}-{data_args[-1][-10:]}-{seed}")
            maes.append(metrics["test"]["mae"])
            epochs.append(epochs_run)
            baseline = metrics["baseline"]["mae"]
        digits = 3 if baseline < 10 else 2
        median = statistics.median(maes)
        verdict = "beats" if median < baseline else f"{median / baseline - 1:.0%} worse"
        rows.append(f"| {label} | {median_range(maes, digits)} | {baseline:.{digits}f} | "
                    f"{median / baseline:.3f} ({verdict}) | {median_range(epochs, 0)} |")
    lines = [
        f"Measured by `python benchmarks/regression_tables.py --seeds {args.seeds}` on "
        f"{time.strftime('%Y-%m-%d')} (2-core CPU): `kerasdl train regression` with its "
        f"defaults, median of {args.seeds} seeds (1337 on) with the range; the split is fixed "
        "(`split_seed` 1337), so linear regression (scikit-learn, same training split) is "
        "one number. Test MAE in the target's units.",
        "",
        "| table | recipe test MAE | linear regression | recipe / linear | epochs run |",
        "|---|---|---|---|---|",
        *rows,
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        path = ROOT / "BENCHMARKS.md"
        content = path.read_text()
        head, _, rest = content.partition(BEGIN)
        _, _, tail = rest.partition(END)
        path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


if __name__ == "__main__":
    main()
