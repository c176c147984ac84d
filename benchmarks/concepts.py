"""Writes docs/concepts.md: each classic deep-learning question, its command, its measured answer.

Every number in the page comes from the runs this script starts (through the kerasdl
command line, on the embedded data): nothing is typed in. Each figure is the median over
the seeds (1337 on) with its range, min-max. A command whose output folder in WORK
already completed (its comparison.csv, or a run's completed metrics.json, for as many
seeds) is reused, so an interrupted run continues where it stopped; delete WORK to
measure afresh.

    python benchmarks/concepts.py [--seeds 3] [--work DIR]
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kerasdl.compare import PRESETS  # noqa: E402

FIRST_SEED = 1337  # `kerasdl compare`'s and `train`'s default seed


def kerasdl(*args):
    """Runs a kerasdl command; returns its last stdout line (a path)."""
    command = [sys.executable, "-m", "kerasdl", *map(str, args)]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    print(f"[concepts] {' '.join(map(str, args))}: {time.perf_counter() - start:.0f} s",
          file=sys.stderr)
    return Path(result.stdout.strip().splitlines()[-1])


def compared(args, folder, seeds):
    """`kerasdl compare ARGS --output FOLDER`, or FOLDER itself when it completed for `seeds`."""
    summary = folder / "comparison.json"
    if (folder / "comparison.csv").exists() and summary.exists():
        if json.loads(summary.read_text()).get("seeds") == seeds:
            return folder
    if folder.exists():  # an interrupted or different run: measured afresh
        shutil.rmtree(folder)
    return kerasdl(*args, "--output", folder)


def trained(recipe, seed, folder):
    """`kerasdl train RECIPE --seed SEED`'s metrics, reused when FOLDER completed."""
    config = folder / "config.json"
    if not (config.exists() and (folder / "metrics.json").exists()
            and json.loads(config.read_text()).get("status") == "completed"):
        if folder.exists():
            shutil.rmtree(folder)
        kerasdl("train", recipe, "--seed", seed, "--output", folder)
    return json.loads((folder / "metrics.json").read_text())


def spread(values, decimals=3):
    """The median of `values` with their range: `0.950 (0.942-0.961)`; one value alone."""
    values = [value for value in values if value is not None and not pd.isna(value)]
    if not values:
        return "-"
    return _median_range(statistics.median(values), min(values), max(values), len(values),
                         decimals)


def _median_range(median, low, high, seeds, decimals=3):
    if seeds == 1:  # one seed has no spread to show
        return f"{median:.{decimals}f}"
    # A negative end would read as a dash.
    return (f"{median:.{decimals}f} ({low:.{decimals}f}{' to ' if low < 0 else '-'}"
            f"{high:.{decimals}f})")


def _ratios(ratios):
    """Gradient ratios over the seeds: the median with its range, 2 significant digits."""
    if not any(ratios):
        return "0 (no gradient at all)"
    text = f"{statistics.median(ratios):.2g}"
    return text if len(ratios) == 1 else f"{text} ({min(ratios):.2g}-{max(ratios):.2g})"


def fmt(row, name):
    """A comparison.csv row's median of `name` over the seeds, with its range."""
    median = row.get(f"{name}_median")
    if median is None or pd.isna(median):
        return "-"
    return _median_range(median, row[f"{name}_min"], row[f"{name}_max"],
                         row["seeds"] - row.get("diverged", 0))


def preset_answer(name, folder):
    """One line per variant: its test accuracy (or recalls, or train and test MAE), and time."""
    frame = pd.read_csv(folder / "comparison.csv", dtype={"variant": str})
    lines = []
    for _, row in frame.iterrows():
        if row.get("diverged"):
            lines.append(f"{row['variant']}: diverged (NaN loss) in {int(row['diverged'])} of "
                         f"{int(row['seeds'])} seeds")
            continue
        if PRESETS[name].measure == "mae":
            # Overfitting is the gap between the examples learnt from and new ones.
            text = (f"{row['variant']}: MAE train {fmt(row, 'train_mae')}, test "
                    f"{fmt(row, 'test_mae')}, gap {fmt(row, 'gap_mae')}, "
                    f"{row['epochs_run_median']:.0f} epochs")
        else:
            text = f"{row['variant']}: accuracy {fmt(row, 'test_accuracy')}"
        if name == "imbalance":
            text += f", recall of the rare class {fmt(row, 'recall_1')}"
        if name == "batch_size":
            text += f", {row['seconds_median']:.1f} s"
        lines.append(text)
    if PRESETS[name].extra_settings.get("keep_best") is False:
        lines.append("each variant keeps its last epoch, early_stopping its best validation epoch")
    if (folder / "gradient_norms.png").exists():
        gradients = {}
        for run in sorted((folder / "runs").glob("*-seed*")):
            rows = pd.read_csv(run / "gradients.csv")
            first = rows[rows["epoch"] == 0].sort_values("depth")["norm"].to_numpy()
            # No gradient at all (zero initialisation) gives 0, not a division by zero.
            gradients.setdefault(run.name.rsplit("-seed", 1)[0], []).append(
                first[0] / first[-2] if first[-2] else 0.0)
        lines.append("gradient norm of the first layer / the last hidden layer after epoch 1: "
                     + ", ".join(f"{variant} {_ratios(ratios)}"
                                 for variant, ratios in gradients.items()))
    return "<br>".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per figure (default 3)")
    parser.add_argument("--work", default="concepts-runs",
                        help="folder of the runs, reused when completed (default: concepts-runs)")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f"--seeds must be a positive integer. Received: {args.seeds}")
    work = Path(args.work)
    rows = []

    def add(question, command, answer):
        rows.append((question, f"`{command}`", answer))

    # Perceptron and XOR.
    for data in ("xor", "blobs"):
        command = ["compare", "perceptron", "--data", data, "--vary", "hidden_layers=0,1",
                   "--seeds", args.seeds]
        folder = compared(command, work / f"perceptron-{data}", args.seeds)
        frame = pd.read_csv(folder / "comparison.csv", dtype={"variant": str}).set_index("variant")
        question = ("Can a single-layer perceptron learn XOR?" if data == "xor" else
                    "And a linearly separable task?")
        add(question, "kerasdl " + " ".join(map(str, command)),
            f"perceptron (0 hidden layers) {fmt(frame.loc['hidden_layers=0'], 'test_accuracy')}, "
            f"MLP (1 hidden layer) {fmt(frame.loc['hidden_layers=1'], 'test_accuracy')}; "
            "decision boundaries in runs/*/plots/decision_boundary.png")

    for name, preset in PRESETS.items():
        command = ["compare", "--preset", name, "--seeds", args.seeds]
        folder = compared(command, work / name, args.seeds)
        add(preset.question, "kerasdl " + " ".join(map(str, command)), preset_answer(name, folder))

    # Recipes that answer a question by themselves.
    for recipe, question in [
            ("rbm", "What does a restricted Boltzmann machine learn?"),
            ("attention", "Can self-attention classify sequences?"),
            ("lstm", "LSTM or GRU on the same sequences?")]:
        extra = ["--data", "patterns", "--vary", "cell=lstm,gru"] if recipe == "lstm" else []
        if recipe == "lstm":
            folder = compared(["compare", "lstm", *extra, "--seeds", args.seeds],
                              work / "lstm", args.seeds)
            frame = pd.read_csv(folder / "comparison.csv", dtype={"variant": str}).set_index("variant")
            add(question, f"kerasdl compare lstm {' '.join(extra)} --seeds {args.seeds}",
                ", ".join(f"{variant}: accuracy {fmt(row, 'test_accuracy')}"
                          for variant, row in frame.iterrows()))
            continue
        seeds = range(FIRST_SEED, FIRST_SEED + args.seeds)
        tests = [trained(recipe, seed, work / recipe / f"seed{seed}")["test"] for seed in seeds]
        answer = ", ".join(f"test {name} {spread([test[name] for test in tests], 4)}"
                           for name in tests[0])
        if recipe == "rbm":
            answer += "; filters in plots/filters.png, reconstructions in plots/reconstructions.png"
        seed_text = "S" if args.seeds > 1 else str(FIRST_SEED)
        add(question, f"kerasdl train {recipe} --seed {seed_text}", answer)

    add("How many weights and biases does a layer have?", "kerasdl show cnn --params",
        "each layer's count with its formula, equal to Keras's own (tests/test_params.py)")

    lines = [
        "# Classic deep-learning questions, answered by experiment",
        "",
        "Generated by `python benchmarks/concepts.py --seeds "
        f"{args.seeds}` on {time.strftime('%Y-%m-%d')} from the runs it started (2-core CPU, "
        f"embedded data, seeds S = {FIRST_SEED} on). Values are test-split figures (the median "
        "over the seeds with the range, min-max, in brackets, when there are several) of the "
        "epoch each run keeps, its "
        "best by validation unless a row says otherwise; a train figure is the same model "
        "scored on its own training examples, and the gap is how much worse it does on the "
        "test split. Each command writes "
        "comparison.csv (train, test and gap of every metric), overlaid learning curves and, "
        "where gradients are recorded, gradient_norms.png.",
        "",
        "| question | command | measured |",
        "|---|---|---|",
        *[f"| {question} | {command} | {answer} |" for question, command, answer in rows],
        "",
    ]
    output = ROOT / "docs" / "concepts.md"
    output.parent.mkdir(exist_ok=True)
    output.write_text("\n".join(lines))
    print(output)


if __name__ == "__main__":
    main()
