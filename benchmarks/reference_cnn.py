"""The reference: the cnn model trained the way the keras-io examples do it.

NumPy arrays straight into `model.fit` (Keras slices, shuffles and batches them), the
same model (the cnn recipe's defaults) and batch size. Times `--repeats` calls of `fit`
(`--epochs` epochs each, after a warm-up epoch) and prints one JSON line with the median
and best training samples per second.

    python benchmarks/reference_cnn.py [--epochs 5] [--batch-size 32] [--repeats 5]
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import keras_tuner  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "recipes"))
import cnn  # noqa: E402


def reference_data():
    """The digits as keras-io loads a data set: NumPy arrays, 1,078 for training."""
    digits = load_digits()
    x = (digits.images[..., np.newaxis] * (255.0 / 16.0)).astype("float32")
    y = digits.target.astype("int32")
    return x[:1078], y[:1078]  # the size of kerasdl's training split


def reference_model():
    """The cnn recipe's default model, built and compiled as the recipe does."""
    keras.utils.set_random_seed(1337)
    return cnn.build_model(keras_tuner.HyperParameters(),
                           {"input_shape": [8, 8, 1], "num_classes": 10})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    x_train, y_train = reference_data()
    model = reference_model()
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=1, verbose=0)  # warm up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=0)
        times.append(time.perf_counter() - start)
    samples = len(x_train) * args.epochs
    print(json.dumps({"samples_per_second": samples / statistics.median(times),
                      "best_samples_per_second": samples / min(times),
                      "step_ms": 1000 * statistics.median(times) * args.batch_size / samples}))


if __name__ == "__main__":
    main()
