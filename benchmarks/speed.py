"""Speed harness: the keras-io style reference against kerasdl, in turn, many times.

Writes the "Speed (issue 6)" section of BENCHMARKS.md (between its markers) with the
medians and ratios, and prints it.

- training throughput: `benchmarks/paired_cnn.py` trains the reference (NumPy arrays into
  `model.fit`, as `benchmarks/reference_cnn.py`) and kerasdl (the same model and batch
  size through the recipe's tf.data pipeline and kerasdl's execution settings) in turn
  in one process, 5 epochs each, and takes the median of the paired ratios: this
  machine's CPU capacity changes in steps while it runs, so only back-to-back timings
  compare programs rather than moments. Run again with one step per execution, to show
  what that setting brings;
- utilisation and input pipeline headroom, from `kerasdl bench cnn` (`--rounds` runs);
- what bounds utilisation (`benchmarks/cnn_ceiling.py`): the cnn's convolution kernels
  timed alone, and whole steps with and without batch norm and at batch 256;
- wall time of `kerasdl --help`, `kerasdl list` and `kerasdl show cnn`.

    python benchmarks/speed.py [--rounds 3] [--pairs 15]
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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=15)
    args = parser.parse_args()
    paired = run_json([sys.executable, "benchmarks/paired_cnn.py", "--pairs", str(args.pairs),
                       "--json"])
    one_step = run_json([sys.executable, "benchmarks/paired_cnn.py", "--pairs",
                         str(args.pairs), "--steps-per-execution", "1", "--json"])
    bench = [sys.executable, "-m", "kerasdl", "bench", "cnn", "--steps", "170", "--repeats", "5",
             "--json"]
    kerasdl = [run_json(bench) for _ in range(args.rounds)]
    ceiling = run_json([sys.executable, "benchmarks/cnn_ceiling.py", "--json"])
    steps = ceiling["training_steps"]
    ref_rate = paired["reference_samples_per_second"]
    our_rate = paired["kerasdl_samples_per_second"]
    ratio = paired["median_ratio"]
    utilisation = statistics.median(k["utilisation"] for k in kerasdl)
    achieved = statistics.median(k["achieved_gflops"] for k in kerasdl)
    peak = statistics.median(k["matmul_peak_gflops"] for k in kerasdl)
    headroom = statistics.median(k["pipeline_headroom"] for k in kerasdl)
    flops = kerasdl[0]["train_flops_per_sample"]
    cli = {name: wall([sys.executable, "-m", "kerasdl", *command]) for name, command in
           (("kerasdl --help", ["--help"]), ("kerasdl list", ["list"]),
            ("kerasdl show cnn", ["show", "cnn"]))}

    def verdict(ok):
        return "met" if ok else "**missed**"

    lines = [
        BEGIN,
        f"Measured by `python benchmarks/speed.py --rounds {args.rounds} --pairs {args.pairs}` "
        f"on {time.strftime('%Y-%m-%d')} (2-core CPU, no GPU).",
        "",
        "| figure | reference (keras-io style) | kerasdl | ratio | target | |",
        "|---|---|---|---|---|---|",
        f"| cnn training, samples/s (median of {args.pairs} back-to-back pairs) | "
        f"{ref_rate:,.0f} | {our_rate:,.0f} | {ratio:.2f}x | >= 1.5x | {verdict(ratio >= 1.5)} |",
        f"| achieved / in-run matmul peak (median of {args.rounds} runs) | | "
        f"{achieved:.1f} / {peak:.0f} GFLOP/s | {100 * utilisation:.1f}% | >= 50% | "
        f"{verdict(utilisation >= 0.5)} |",
        f"| input pipeline / training consumption | | | {headroom:.1f}x | >= 10x | "
        f"{verdict(headroom >= 10)} |",
        *[f"| `{name}` wall time | | {seconds:.3f} s | | <= 0.5 s | {verdict(seconds <= 0.5)} |"
          for name, seconds in cli.items()],
        "",
        f"Paired ratios (kerasdl / reference): {', '.join(f'{r:.2f}' for r in paired['ratios'])}. "
        f"kerasdl runs {paired['steps_per_execution']} steps per execution; with one "
        f"(`python benchmarks/paired_cnn.py --steps-per-execution 1`) the median ratio is "
        f"{one_step['median_ratio']:.2f}x: the cached, prefetched pipeline alone gains that "
        f"much, and running {paired['steps_per_execution']} steps per call of the compiled "
        "step the rest.",
        "",
        f"Training FLOPs per cnn sample: {flops:,} (3 x the forward graph's, TensorFlow profiler).",
        "",
        "What bounds utilisation (`python benchmarks/cnn_ceiling.py`, one process, the "
        "variants timed in turn): the step's convolution kernels alone (forward, input and "
        "filter gradients at the model's shapes, in a compiled loop) take "
        f"{ceiling['conv_us_per_step'] / 1000:.2f} ms for "
        f"{ceiling['conv_flops_per_step'] / 1e6:.0f} MFLOP, {ceiling['conv_gflops']:.0f} GFLOP/s "
        f"= {100 * ceiling['ceiling_utilisation']:.0f}% of the "
        f"{ceiling['matmul_peak_gflops']:.0f} GFLOP/s matmul: the ceiling. Whole training steps: "
        + "; ".join(f"{name} {figures['step_ms']:.2f} ms, {100 * figures['utilisation']:.1f}%"
                    for name, figures in steps.items()) + ".",
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
