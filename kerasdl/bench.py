"""`kerasdl bench`: training throughput, input pipeline throughput, FLOPs and utilisation.

All figures come from one process: the recipe's default model and pipeline on its
default data (or `--data`), the device's dense matmul rate measured in the same run, so
that utilisation is a ratio of two measurements taken side by side.
"""

import contextlib
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from kerasdl import devices
from kerasdl.registry import load_recipe
from kerasdl.registry import pretrained_of
from kerasdl.session import build
from kerasdl.session import load_splits


def forward_flops(model, batch_size=1):
    """Floating-point operations of one forward pass of `batch_size` examples (TF profiler).

    Counts multiplies and adds of the graph's ops (a multiply-add is 2 FLOPs).
    """
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2_as_graph)

    spec = tf.TensorSpec([batch_size, *model.input_shape[1:]], tf.float32)
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen, _ = convert_variables_to_constants_v2_as_graph(function)
    graph = frozen.graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")  # the v1 profiler's deprecation notices
    try:
        profile = tf.compat.v1.profiler.profile(graph=graph, options=options)
    finally:
        logger.setLevel(level)
    return int(profile.total_float_ops)


def matmul_peak(size=2048, repeats=10, dtype=tf.float32):
    """The device's dense matmul rate in GFLOP/s: `size` x `size` products, timed."""
    a = tf.random.normal((size, size), dtype=dtype)
    b = tf.random.normal((size, size), dtype=dtype)

    @tf.function
    def products(a, b):
        total = tf.zeros((size, size), dtype)
        for _ in tf.range(repeats):
            total += tf.linalg.matmul(a, b)
        return total

    products(a, b).numpy()  # trace and warm up
    start = time.perf_counter()
    products(a, b).numpy()
    seconds = time.perf_counter() - start
    return 2 * size ** 3 * repeats / seconds / 1e9


def pipeline_throughput(dataset, batches):
    """Examples per second of the input pipeline iterated alone (after one warm-up pass)."""
    dataset = dataset.repeat()
    iterator = iter(dataset)
    for _ in range(min(batches, 5)):
        next(iterator)
    examples, start = 0, time.perf_counter()
    for _ in range(batches):
        x = next(iterator)[0]
        examples += int(x.shape[0])
    return examples / (time.perf_counter() - start)


def bench(recipe_name, settings, steps=50, repeats=3):
    """Measures a recipe's training and input pipeline; returns a dict of figures.

    Training is timed `repeats` times (`steps` steps each, after as many to warm up);
    the figures are the median, and `best_step_ms` the fastest (the least disturbed by
    other work on the machine).
    """
    recipe = load_recipe(recipe_name)
    if pretrained_of(recipe) and settings.get("weights") == "imagenet":
        settings = {**settings, "weights": "none"}  # speed does not depend on the weights' values
    splits = load_splits(recipe, settings)
    strategy, accelerator = devices.configure(settings)
    try:
        model, hp = build(recipe, splits.spec, settings, splits.train, strategy)
        # The policy the model's layers compute in, not the one asked for.
        accelerator = {**accelerator, "precision": devices.model_precision(model)}
        batch_size = settings["batch_size"]
        train = recipe.make_pipeline(splits.train, splits.spec, hp, training=True,
                                     batch_size=batch_size)
        pipeline = pipeline_throughput(train, steps)
        repeated = train.repeat()
        # The model's own training step (a recipe's `fit` adds phases, not speed).
        with contextlib.redirect_stdout(sys.stderr):
            model.fit(repeated, steps_per_epoch=steps, epochs=1, verbose=0)  # trace, warm up
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                model.fit(repeated, steps_per_epoch=steps, epochs=1, verbose=0)
                times.append(time.perf_counter() - start)
        seconds = float(np.median(times))
        samples_per_second = steps * batch_size / seconds
        flops = 3 * forward_flops(model)  # forward + backward (about twice the forward)
        achieved = flops * samples_per_second / 1e9
        peak = matmul_peak(dtype=tf.bfloat16 if accelerator["precision"] == "mixed_bfloat16"
                           else tf.float16 if accelerator["precision"] == "mixed_float16"
                           else tf.float32)
    finally:
        devices.reset_precision()
    return {
        "recipe": recipe_name, "data": settings["data"], "batch_size": batch_size,
        "steps": steps, **accelerator,
        "train_samples_per_second": round(samples_per_second, 1),
        "repeats": repeats, "steps_per_execution": model.steps_per_execution,
        "step_ms": round(1000 * seconds / steps, 3),
        "best_step_ms": round(1000 * min(times) / steps, 3),
        "pipeline_samples_per_second": round(pipeline, 1),
        "pipeline_headroom": round(pipeline / samples_per_second, 1),
        "train_flops_per_sample": flops,
        "achieved_gflops": round(achieved, 2),
        "matmul_peak_gflops": round(peak, 1),
        "utilisation": round(achieved / peak, 4),
        "parameters": int(model.count_params()),
        "tensorflow": tf.__version__, "keras": keras.__version__,
    }
