"""The reference and kerasdl trained in turn in one process, many times: paired ratios.

This machine's CPU capacity changes in steps while it runs (the same step takes about
2.4, 3.7 or 7.4 ms depending on the moment; `taskset -c 0` reproduces the 3.7 ms
level), so figures taken minutes apart compare moments, not programs. Here each pair
is timed back to back, in alternating order, and the result is the median of the
per-pair ratios.

- reference: `benchmarks/reference_cnn.py`'s way: NumPy arrays into `model.fit`, 5 epochs
  of the 1,078 training digits, batch 32;
- kerasdl: the same model and batch size, built by `kerasdl.session.build` (kerasdl's
  execution settings) and fed by the recipe's tf.data pipeline on kerasdl's digits
  split (1,077 training examples), 5 epochs in one `fit`, as `kerasdl train` runs it.

    python benchmarks/paired_cnn.py [--pairs 15] [--steps-per-execution N] [--json]
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

from reference_cnn import reference_data  # noqa: E402
from reference_cnn import reference_model  # noqa: E402

from kerasdl import settings as kerasdl_settings  # noqa: E402
from kerasdl.data import load_data  # noqa: E402
from kerasdl.registry import load_recipe  # noqa: E402
from kerasdl.registry import recipe_info  # noqa: E402
from kerasdl.session import build  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--steps-per-execution", type=int,
                        help="kerasdl's setting (default: kerasdl's default)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    x_train, y_train = reference_data()
    reference = reference_model()

    recipe = load_recipe("cnn")
    settings = kerasdl_settings.resolve(recipe_info("cnn")["defaults"], {},
                                        {"steps_per_execution": args.steps_per_execution})
    splits = load_data(settings["data"], recipe.TASK, settings)
    model, hp = build(recipe, splits.spec, settings, splits.train)
    train = recipe.make_pipeline(splits.train, splits.spec, hp, training=True,
                                 batch_size=settings["batch_size"])
    examples = {"reference": len(x_train), "kerasdl": int(splits.spec["num_examples"]["train"])}

    def run_reference(epochs):
        reference.fit(x_train, y_train, batch_size=32, epochs=epochs, verbose=0)

    def run_kerasdl(epochs):
        model.fit(train, epochs=epochs, verbose=0)

    runs = {"reference": run_reference, "kerasdl": run_kerasdl}
    with contextlib.redirect_stdout(sys.stderr):
        for run in runs.values():
            run(1)  # trace and warm up
        rates = {name: [] for name in runs}
        for pair in range(args.pairs):
            order = list(runs) if pair % 2 == 0 else list(runs)[::-1]
            for name in order:
                start = time.perf_counter()
                runs[name](args.epochs)
                rates[name].append(examples[name] * args.epochs / (time.perf_counter() - start))
    ratios = [k / r for k, r in zip(rates["kerasdl"], rates["reference"])]
    result = {
        "pairs": args.pairs, "epochs": args.epochs,
        "steps_per_execution": model.steps_per_execution,
        "reference_samples_per_second": statistics.median(rates["reference"]),
        "kerasdl_samples_per_second": statistics.median(rates["kerasdl"]),
        "median_ratio": statistics.median(ratios),
        "ratios": [round(ratio, 3) for ratio in ratios],
        "rates": {name: [round(rate) for rate in values] for name, values in rates.items()},
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"reference {result['reference_samples_per_second']:,.0f} samples/s, kerasdl "
          f"{result['kerasdl_samples_per_second']:,.0f} samples/s; median of {args.pairs} "
          f"paired ratios {result['median_ratio']:.2f}x")
    print("ratios:", ", ".join(f"{ratio:.2f}" for ratio in ratios))


if __name__ == "__main__":
    main()
