"""Writes docs/concepts.md: each classic deep-learning question, its command, its measured answer.

Every number in the page comes from the runs this script starts (through the kerasdl
command line, on the embedded data): nothing is typed in.

    python benchmarks/concepts.py [--seeds 2] [--work DIR]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kerasdl.compare import PRESETS  # noqa: E402


def kerasdl(*args):
    """Runs a kerasdl command; returns its last stdout line (a path)."""
    command = [sys.executable, "-m", "kerasdl", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def fmt(row, name):
    mean, std = row.get(f"{name}_mean"), row.get(f"{name}_std")
    if mean is None or pd.isna(mean):
        return "-"
    if row.get("seeds") == 1:  # one seed has no spread to show
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {std:.3f}"


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
                    f"{row['epochs_run_mean']:.0f} epochs")
        else:
            text = f"{row['variant']}: accuracy {fmt(row, 'test_accuracy')}"
        if name == "imbalance":
            text += f", recall of the rare class {fmt(row, 'recall_1')}"
        if name == "batch_size":
            text += f", {row['seconds_mean']:.1f} s"
        lines.append(text)
    if PRESETS[name].extra_settings.get("keep_best") is False:
        lines.append("each variant keeps its last epoch, early_stopping its best validation epoch")
    if (folder / "gradient_norms.png").exists():
        gradients = []
        for run in sorted((folder / "runs").glob("*-seed*")):
            rows = pd.read_csv(run / "gradients.csv")
            first = rows[rows["epoch"] == 0].sort_values("depth")["norm"].to_numpy()
            gradients.append((run.name.rsplit("-seed", 1)[0], first[0], first[-2]))
        norms = pd.DataFrame(gradients, columns=["variant", "first", "last"]).groupby(
            "variant", sort=False).mean()
        lines.append("gradient norm of the first layer / the last hidden layer after epoch 1: "
                     + ", ".join(f"{variant} {row['first'] / row['last']:.2g}" if row["last"]
                                 else f"{variant} 0 (no gradient at all)"
                                 for variant, row in norms.iterrows()))
    return "<br>".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--work", default="concepts-runs")
    args = parser.parse_args()
    work = Path(args.work) / time.strftime("%Y%m%d-%H%M%S")
    rows = []

    def add(question, command, answer):
        rows.append((question, f"`{command}`", answer))

    # Perceptron and XOR.
    for data in ("xor", "blobs"):
        command = ["compare", "perceptron", "--data", data, "--vary", "hidden_layers=0,1",
                   "--seeds", args.seeds]
        folder = kerasdl(*command, "--output", work / f"perceptron-{data}")
        frame = pd.read_csv(folder / "comparison.csv", dtype={"variant": str}).set_index("variant")
        question = ("Can a single-layer perceptron learn XOR?" if data == "xor" else
                    "And a linearly separable task?")
        add(question, "kerasdl " + " ".join(map(str, command)),
            f"perceptron (0 hidden layers) {fmt(frame.loc['hidden_layers=0'], 'test_accuracy')}, "
            f"MLP (1 hidden layer) {fmt(frame.loc['hidden_layers=1'], 'test_accuracy')}; "
            "decision boundaries in runs/*/plots/decision_boundary.png")

    for name, preset in PRESETS.items():
        command = ["compare", "--preset", name, "--seeds", args.seeds]
        folder = kerasdl(*command, "--output", work / name)
        add(preset.question, "kerasdl " + " ".join(map(str, command)), preset_answer(name, folder))

    # Recipes that answer a question by themselves.
    for recipe, question in [
            ("rbm", "What does a restricted Boltzmann machine learn?"),
            ("attention", "Can self-attention classify sequences?"),
            ("lstm", "LSTM or GRU on the same sequences?")]:
        extra = ["--data", "patterns", "--vary", "cell=lstm,gru"] if recipe == "lstm" else []
        if recipe == "lstm":
            folder = kerasdl("compare", "lstm", *extra, "--seeds", args.seeds,
                             "--output", work / "lstm")
            frame = pd.read_csv(folder / "comparison.csv", dtype={"variant": str}).set_index("variant")
            add(question, f"kerasdl compare lstm {' '.join(extra)} --seeds {args.seeds}",
                ", ".join(f"{variant}: accuracy {fmt(row, 'test_accuracy')}"
                          for variant, row in frame.iterrows()))
            continue
        run = kerasdl("train", recipe, "--output", work / recipe)
        metrics = json.loads((run / "metrics.json").read_text())["test"]
        answer = ", ".join(f"test {k} {v:.4f}" for k, v in metrics.items())
        if recipe == "rbm":
            answer += "; filters in plots/filters.png, reconstructions in plots/reconstructions.png"
        add(question, f"kerasdl train {recipe}", answer)

    add("How many weights and biases does a layer have?", "kerasdl show cnn --params",
        "each layer's count with its formula, equal to Keras's own (tests/test_params.py)")

    lines = [
        "# Classic deep-learning questions, answered by experiment",
        "",
        "Generated by `python benchmarks/concepts.py --seeds "
        f"{args.seeds}` on {time.strftime('%Y-%m-%d')} from the runs it started (2-core CPU, "
        "embedded data, seeds from 1337). Values are test-split figures (mean ± standard "
        "deviation over the seeds when there are several) of the epoch each run keeps, its "
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
