"""What bounds the cnn's utilisation on a CPU: its convolution kernels timed alone.

For each Conv2D of the cnn recipe's default model, at its own shapes and batch size,
times the three kernels a training step runs (forward, gradient of the input, gradient
of the filter) in a compiled loop with nothing else around them, and compares their
rate with a dense matmul measured in the same process. The step cannot go faster than
the sum of these kernels; their rate is the ceiling of the step's utilisation.

In the same process, interleaved (this machine's CPU capacity changes while it runs),
it times whole training steps (`fit`, kerasdl's steps per execution) of the default
model, of the model without batch norm, and of the default model at batch 256.

    python benchmarks/cnn_ceiling.py [--batch-size 32] [--json]
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import statistics  # noqa: E402

import keras  # noqa: E402
import keras_tuner  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from kerasdl.bench import forward_flops  # noqa: E402
from kerasdl.bench import matmul_peak  # noqa: E402
from kerasdl.settings import DEFAULT_STEPS_PER_EXECUTION  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "recipes"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cnn  # noqa: E402
from reference_cnn import reference_data  # noqa: E402


def timed(function, *args, repeats=200, rounds=5):
    """Best seconds per call of `function(*args)`, `repeats` calls in one graph."""
    @tf.function
    def loop(*args):
        total = tf.constant(0.0)
        for _ in tf.range(repeats):
            total += tf.reduce_sum(function(*args)[..., :1])
        return total

    loop(*args).numpy()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        loop(*args).numpy()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def training_steps(rounds=5, samples=5440):
    """Median ms per training step of cnn variants on the digits, timed in turn."""
    variants = {"default, batch 32": ({}, 32), "no batch norm, batch 32":
                ({"batch_norm": False}, 32), "default, batch 256": ({}, 256)}
    runs = {}
    for name, (values, batch_size) in variants.items():
        hp = keras_tuner.HyperParameters()
        for key, value in values.items():
            hp.Fixed(key, value)
        model = cnn.build_model(hp, {"input_shape": [8, 8, 1], "num_classes": 10})
        model.steps_per_execution = DEFAULT_STEPS_PER_EXECUTION
        data = tf.data.Dataset.from_tensor_slices(reference_data())
        data = data.cache().shuffle(2048).batch(batch_size).prefetch(tf.data.AUTOTUNE).repeat()
        steps = samples // batch_size
        model.fit(data, steps_per_epoch=steps, verbose=0)  # trace and warm up
        runs[name] = (model, data, steps, 3 * forward_flops(model))
    times = {name: [] for name in runs}
    peaks = []
    for _ in range(rounds):
        for name, (model, data, steps, _) in runs.items():
            start = time.perf_counter()
            model.fit(data, steps_per_epoch=steps, verbose=0)
            times[name].append(1000 * (time.perf_counter() - start) / steps)
        peaks.append(matmul_peak())
    peak = statistics.median(peaks)
    found = {}
    for name, (_, _, _, flops) in runs.items():
        step_ms = statistics.median(times[name])
        batch_size = variants[name][1]
        achieved = flops * batch_size / step_ms / 1e6
        found[name] = {"step_ms": step_ms, "achieved_gflops": achieved,
                       "utilisation": achieved / peak}
    return found, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    model = cnn.build_model(keras_tuner.HyperParameters(),
                            {"input_shape": [8, 8, 1], "num_classes": 10})
    rows = []
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Conv2D):
            continue
        _, height, width, channels = layer.input.shape
        kernel = layer.kernel.numpy()
        x = tf.random.normal((args.batch_size, height, width, channels))
        w = tf.constant(kernel)
        y = tf.nn.conv2d(x, w, 1, "SAME")
        dy = tf.random.normal(y.shape)
        flops = 2 * args.batch_size * height * width * kernel.size  # multiply-adds x 2
        seconds = {
            "forward": timed(lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"), x, w),
            "grad_input": timed(lambda dy, w: tf.compat.v1.nn.conv2d_backprop_input(
                x.shape, w, dy, [1, 1, 1, 1], "SAME"), dy, w),
            "grad_filter": timed(lambda x, dy: tf.compat.v1.nn.conv2d_backprop_filter(
                x, w.shape, dy, [1, 1, 1, 1], "SAME"), x, dy),
        }
        for kind, value in seconds.items():
            if kind == "grad_input" and channels == 1:
                continue  # the first layer's input needs no gradient
            rows.append({"layer": layer.name, "kernel": kind, "shape": list(x.shape),
                         "filters": list(kernel.shape), "mflops": flops / 1e6,
                         "us": value * 1e6, "gflops": flops / value / 1e9})
    steps, peak = training_steps()
    flops = sum(row["mflops"] for row in rows) * 1e6
    seconds = sum(row["us"] for row in rows) / 1e6
    result = {"batch_size": args.batch_size, "matmul_peak_gflops": peak, "kernels": rows,
              "conv_flops_per_step": flops, "conv_us_per_step": seconds * 1e6,
              "conv_gflops": flops / seconds / 1e9,
              "ceiling_utilisation": flops / seconds / 1e9 / peak, "training_steps": steps}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"batch {args.batch_size}; dense matmul peak {peak:.0f} GFLOP/s (same process)")
    print(f"{'layer':14} {'kernel':12} {'input':16} {'MFLOP':>7} {'us':>8} {'GFLOP/s':>8}")
    for row in rows:
        print(f"{row['layer']:14} {row['kernel']:12} {str(row['shape']):16} "
              f"{row['mflops']:7.1f} {row['us']:8.1f} {row['gflops']:8.1f}")
    print(f"all convolution kernels of one step: {flops / 1e6:.0f} MFLOP in "
          f"{seconds * 1e6:.0f} us = {result['conv_gflops']:.0f} GFLOP/s, "
          f"{100 * result['ceiling_utilisation']:.0f}% of the matmul peak")
    for name, figures in steps.items():
        print(f"training step, {name}: {figures['step_ms']:.2f} ms, "
              f"{figures['achieved_gflops']:.0f} GFLOP/s, {100 * figures['utilisation']:.1f}%")


if __name__ == "__main__":
    main()
