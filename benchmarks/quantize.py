"""Quantized exports of the default CNN: size and test accuracy beside the float model.

Trains the default CNN (`kerasdl train cnn`, 40 epochs of digits) unless `--run` names a
run, exports it as float TFLite and with each post-training quantization (TFLite
dynamic, float16 and full-integer int8; Keras int8), and scores every artifact on the
run's test split in its own runtime (`kerasdl evaluate ARTIFACT`). Prints a Markdown
table (stdout) for BENCHMARKS.md.

    python benchmarks/quantize.py [--run RUN] [--json]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

EXPORTS = [("tflite", None), ("tflite", "dynamic"), ("tflite", "float16"), ("tflite", "int8"),
           ("keras", "int8")]


def kerasdl(*args):
    result = subprocess.run([sys.executable, "-m", "kerasdl", *map(str, args)],
                            capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.returncode != 0:
        sys.exit(f"kerasdl {' '.join(map(str, args))} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="A trained cnn run (default: train one now).")
    parser.add_argument("--json", action="store_true", help="Print JSON, not Markdown.")
    args = parser.parse_args()
    run = Path(args.run) if args.run else Path(tempfile.mkdtemp(prefix="kerasdl-quantize-")) / "cnn"
    if not args.run:
        print(f"Training the default CNN into {run} ...", file=sys.stderr)
        kerasdl("train", "cnn", "--output", run)
    keras_metrics = json.loads(kerasdl("evaluate", run, "--json"))
    rows = [{"artifact": "model.keras (Keras, float32)",
             "bytes": (run / "model.keras").stat().st_size,
             "accuracy": keras_metrics["accuracy"], "runtime": "keras"}]
    float_tflite = None
    for fmt, method in EXPORTS:
        print(f"Exporting {fmt} {method or 'float'} ...", file=sys.stderr)
        quantize = ["--quantize", method] if method else []
        check = json.loads(kerasdl("export", run, "--format", fmt, *quantize, "--force",
                                   "--json"))
        scored = json.loads(kerasdl("evaluate", check["artifact"], "--run", run, "--json"))
        if fmt == "tflite" and method is None:
            float_tflite = check["bytes"]
        row = {"artifact": Path(check["artifact"]).name, "bytes": check["bytes"],
               "accuracy": scored["accuracy"], "runtime": scored["runtime"],
               "max_abs_diff_vs_keras": check["max_abs_diff"]}
        if fmt == "tflite" and method:
            row["size_vs_float_tflite"] = round(check["bytes"] / float_tflite, 3)
        if fmt == "keras":
            row["int8_layers"] = check["quantization"]["int8_layers"]
        rows.append(row)
    for row in rows:
        row["points_vs_keras"] = round(100 * (row["accuracy"] - keras_metrics["accuracy"]), 2)
    if args.json:
        print(json.dumps({"run": str(run), "rows": rows}, indent=2))
        return
    print("| artifact | runtime | bytes | size vs float TFLite | test accuracy | points vs Keras |"
          " largest output difference vs Keras |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['artifact']} | {row['runtime']} | {row['bytes']:,} | "
              f"{row.get('size_vs_float_tflite', '')} | {row['accuracy']:.4f} | "
              f"{row['points_vs_keras']:+.2f} | {row.get('max_abs_diff_vs_keras', 0):.3g} |")
    keras_int8 = rows[-1]
    print(f"\nKeras int8 quantized {len(keras_int8['int8_layers'])} layer(s): "
          f"{', '.join(keras_int8['int8_layers'])}; run: {run}")


if __name__ == "__main__":
    main()
