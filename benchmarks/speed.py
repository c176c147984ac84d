"""Speed harness: the keras-io style reference against kerasdl, in turn, several times.

Writes the "Speed (issue 6)" section of BENCHMARKS.md (between its markers) with the
medians and ratios, and prints it.

- training throughput: `benchmarks/reference_cnn.py` (NumPy arrays into `model.fit`, 5
  epochs of the 1,078 training digits, batch 32) against `kerasdl bench cnn --steps 170`
  (the same model and batch size through the recipe's tf.data pipeline and kerasdl's
  execution settings, 170 steps = 5 epochs), both after a warm-up, each the median of 5
  timed repeats in its process;
- utilisation and input pipeline headroom, from `kerasdl bench cnn`, and the same
  without batch norm (`--set batch_norm=false`), to show what the step spends there;
- the ceiling: the cnn's convolution kernels timed alone (`benchmarks/cnn_ceiling.py`);
- wall time of `kerasdl --help`, `kerasdl list` and `kerasdl show cnn`.

    python benchmarks/speed.py [--rounds 5]
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- speed:begin -->", "<!-- speed:end -->"


def run_json(command):
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout[result.stdout.index("{"):])


def wall(command, repeats=10):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, cwd=ROOT, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    reference, kerasdl, no_bn = [], [], []
    bench = [sys.executable, "-m", "kerasdl", "bench", "cnn", "--steps", "170", "--repeats", "5",
             "--json"]
    for _ in range(args.rounds):
        reference.append(run_json([sys.executable, "benchmarks/reference_cnn.py", "--epochs", "5",
                                   "--repeats", "5"]))
        kerasdl.append(run_json(bench))
        no_bn.append(run_json([*bench, "--set", "batch_norm=false"]))
    ceiling = run_json([sys.executable, "benchmarks/cnn_ceiling.py", "--json"])
    large = run_json([sys.executable, "-m", "kerasdl", "bench", "cnn", "--batch-size", "256",
                      "--steps", "40", "--repeats", "5", "--json"])
    ref_rate = statistics.median(r["samples_per_second"] for r in reference)
    our_rate = statistics.median(k["train_samples_per_second"] for k in kerasdl)
    utilisation = statistics.median(k["utilisation"] for k in kerasdl)
    achieved = statistics.median(k["achieved_gflops"] for k in kerasdl)
    peak = statistics.median(k["matmul_peak_gflops"] for k in kerasdl)
    headroom = statistics.median(k["pipeline_headroom"] for k in kerasdl)
    flops = kerasdl[0]["train_flops_per_sample"]
    step = statistics.median(k["step_ms"] for k in kerasdl)
    no_bn_step = statistics.median(k["step_ms"] for k in no_bn)
    no_bn_utilisation = statistics.median(k["utilisation"] for k in no_bn)
    cli = {name: wall([sys.executable, "-m", "kerasdl", *command]) for name, command in
           (("kerasdl --help", ["--help"]), ("kerasdl list", ["list"]),
            ("kerasdl show cnn", ["show", "cnn"]))}

    def verdict(ok):
        return "met" if ok else "**missed**"

    lines = [
        BEGIN,
        f"Measured by `python benchmarks/speed.py --rounds {args.rounds}` on "
        f"{time.strftime('%Y-%m-%d')} (2-core CPU, no GPU), medians of {args.rounds} rounds; "
        "the reference and kerasdl run in turn.",
        "",
        "| figure | reference (keras-io style) | kerasdl | ratio | target | |",
        "|---|---|---|---|---|---|",
        f"| cnn training, samples/s | {ref_rate:,.0f} | {our_rate:,.0f} | "
        f"{our_rate / ref_rate:.2f}x | >= 1.5x | {verdict(our_rate / ref_rate >= 1.5)} |",
        f"| achieved / in-run matmul peak | | {achieved:.1f} / {peak:.0f} GFLOP/s | "
        f"{100 * utilisation:.1f}% | >= 50% | {verdict(utilisation >= 0.5)} |",
        f"| input pipeline / training consumption | | | {headroom:.1f}x | >= 10x | "
        f"{verdict(headroom >= 10)} |",
        *[f"| `{name}` wall time | | {seconds:.3f} s | | <= 0.5 s | {verdict(seconds <= 0.5)} |"
          for name, seconds in cli.items()],
        "",
        f"Training FLOPs per cnn sample: {flops:,} (3 x the forward graph's, TensorFlow profiler). "
        f"kerasdl runs {kerasdl[0]['steps_per_execution']} steps per execution.",
        "Per round (reference, kerasdl samples/s): "
        + "; ".join(f"{r['samples_per_second']:,.0f}, {k['train_samples_per_second']:,.0f}"
                    for r, k in zip(reference, kerasdl)) + ".",
        "",
        "What bounds utilisation at batch 32 (same runs): a training step takes "
        f"{step:.2f} ms; the same cnn without batch norm (`kerasdl bench cnn --set "
        f"batch_norm=false`) {no_bn_step:.2f} ms, {100 * no_bn_utilisation:.1f}% of the peak. "
        "The step's convolution kernels alone (`python benchmarks/cnn_ceiling.py`: forward, "
        "input and filter gradients at the model's shapes, timed in a compiled loop) take "
        f"{ceiling['conv_us_per_step'] / 1000:.2f} ms for "
        f"{ceiling['conv_flops_per_step'] / 1e6:.0f} MFLOP, {ceiling['conv_gflops']:.0f} GFLOP/s "
        f"= {100 * ceiling['ceiling_utilisation']:.0f}% of that process's "
        f"{ceiling['matmul_peak_gflops']:.0f} GFLOP/s matmul. At batch 256 (`kerasdl bench cnn "
        f"--batch-size 256 --steps 40 --repeats 5`, one run) the fixed cost per step is spread "
        f"over 8 times the work: {large['achieved_gflops']:.0f} / "
        f"{large['matmul_peak_gflops']:.0f} GFLOP/s = {100 * large['utilisation']:.1f}%.",
        END,
    ]
    section = "\n".join(lines)
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text()
    if BEGIN in text:
        text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n## Speed (issue 6)\n\n" + section + "\n"
    path.write_text(text)
    print(section)


if __name__ == "__main__":
    main()
