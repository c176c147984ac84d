"""How real do the gan recipe's digits look? A classifier trained on real digits decides.

Trains the cnn and gan recipes with their defaults through the CLI, generates 1,000
digits with `kerasdl generate`, and reports, for the generated images, uniform noise and
real held-out test digits: the mean top-class probability and how many of the 10
classes appear, under two classifiers trained on the real training split: the cnn
recipe's model and a 10-nearest-neighbour vote on pixels.

With `--seeds N` both recipes are trained with `--seed` 1337, 1338, ... and each figure
is the median of the N runs with its range (noise and real digits do not depend on it).

Usage:
    python benchmarks/gan_quality.py [--workdir DIR] [--seeds N]
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def kerasdl(*args):
    result = subprocess.run([sys.executable, "-m", "kerasdl", *map(str, args)],
                            capture_output=True, text=True, check=True)
    return result.stdout.strip()


def measure(workdir, seed=1337):
    """Returns {classifier: {images: yardstick}} for generated, noise and real digits."""
    import keras
    from PIL import Image

    from kerasdl import settings
    from kerasdl.data import load_data
    from kerasdl.quality import classifier_yardstick
    from kerasdl.quality import knn_probabilities

    workdir = Path(workdir)
    cnn_run = kerasdl("train", "cnn", "--seed", seed, "--output", workdir / f"cnn-{seed}")
    gan_run = kerasdl("train", "gan", "--seed", seed, "--output", workdir / f"gan-{seed}")
    folder = kerasdl("generate", gan_run, "--num", 1000, "--seed", 0,
                     "--output", workdir / f"samples-{seed}")
    generated = np.stack([np.asarray(Image.open(path), "float32")[..., None]
                          for path in sorted(Path(folder).glob("*.png"))])
    splits = load_data("digits", "image_classification", settings.resolve({}))
    train_x, train_y = (np.stack(a) for a in zip(*splits.train.as_numpy_iterator()))
    test_x = np.stack([x for x, _ in splits.test.as_numpy_iterator()])
    noise = np.random.default_rng(0).uniform(0, 255, generated.shape).astype("float32")
    sets = {"generated": generated, "uniform noise": noise, "real test digits": test_x}

    cnn = keras.saving.load_model(Path(cnn_run) / "model.keras")
    figures = {"cnn recipe": {}, "10-nearest neighbours": {}}
    for name, images in sets.items():
        figures["cnn recipe"][name] = classifier_yardstick(cnn.predict(images, verbose=0), 10)
        figures["10-nearest neighbours"][name] = classifier_yardstick(
            knn_probabilities(train_x / 255.0, train_y, images / 255.0), 10)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="Folder for the runs (default: a temporary one).")
    parser.add_argument("--seeds", type=int, default=1, help="Seeds 1337.. (default 1).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [measure(args.workdir or tmp, 1337 + i) for i in range(args.seeds)]
    print("| classifier | images | mean top-class probability | classes covered | seeds 1337.. |")
    print("|---|---|---|---|---|")
    for classifier, rows in runs[0].items():
        for images in rows:
            values = [run[classifier][images]["mean_top_probability"] for run in runs]
            covered = [run[classifier][images]["classes_covered"] for run in runs]
            spread = f" ({min(values):.3f}-{max(values):.3f})" if len(runs) > 1 else ""
            print(f"| {classifier} | {images} | {np.median(values):.3f}{spread} | "
                  f"{min(covered)}-{max(covered)} of 10 | "
                  f"{', '.join(f'{v:.3f}' for v in values)} |")
    print(json.dumps(runs), file=sys.stderr)


if __name__ == "__main__":
    main()
