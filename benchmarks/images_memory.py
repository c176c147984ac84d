"""Image folders at scale: peak memory as a folder grows, and training throughput.

Side by side in one run:
- peak RSS of `kerasdl train cnn --data FOLDER --image-size 64 --epochs 1` (one fresh
  process each, `ru_maxrss` of the child) on a small and an 8x larger folder of
  generated JPEGs (issue 16's target: ratio <= 1.3);
- training throughput from the second epoch on, kerasdl against the plain Keras way,
  in turn in one process (pairs in alternating order, median of the paired ratios):
  kerasdl: `load_splits` + the cnn recipe's pipeline, as `kerasdl train` builds them;
  Keras: `keras.utils.image_dataset_from_directory(..., subset="training")
  .cache().prefetch()`. Both feed the same model (`kerasdl.session.build`, the cnn's
  defaults), so the figure compares the input pipelines;
- with `--photos COUNT`, the same pair at a realistic photo size: `kerasdl train
  mobilenet --data FOLDER --image-size 160 --weights none` (its data, model and training
  pipeline, built as that command builds them) against the same model fed by
  `image_dataset_from_directory(..., image_size=(160, 160)).cache().prefetch()`, on
  COUNT generated 256x192 JPEGs of four classes (resized to 160x160 by both);
  `--pipeline-only` times the two input pipelines alone, without the model.

The JPEGs (coloured shapes on noisy gradients) are generated once into
FOLDER/<count>/ (64x64, two classes) or FOLDER/photos-<count>/ and reused.

    python benchmarks/images_memory.py [--root /tmp/kerasdl-images] [--counts 2000 16000]
        [--throughput-count 6000] [--pairs 3] [--epochs 2] [--set NAME=VALUE] [--json]
    python benchmarks/images_memory.py --skip-rss --skip-throughput --photos 360 \
        [--photo-size 160] [--pairs 3] [--epochs 2] [--pipeline-only]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_folder(folder, count, size=64, seed=0, classes=2):
    """Writes `count` JPEGs in `classes` class folders (once), encoded by TensorFlow.

    Args:
        size: the side of square images, or `(width, height)`.
        classes: 2 (discs and squares) to 4 (also triangles and crosses).
    """
    import numpy as np
    import tensorflow as tf

    done = folder.parent / f"{folder.name}.complete"
    if done.exists():
        return folder
    width, height = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for index in range(count):
        label = index % classes
        target = folder / f"class{label}"
        target.mkdir(parents=True, exist_ok=True)
        base = rng.uniform(0, 255, 3)
        pixels = (base + 60 * (xx[..., None] / width - 0.5)
                  + rng.normal(0, 10, (height, width, 3)))
        radius = rng.uniform(0.15, 0.3) * min(width, height)
        cx = rng.uniform(radius, width - radius)
        cy = rng.uniform(radius, height - radius)
        dx, dy = np.abs(xx - cx), yy - cy
        mask = [dx ** 2 + dy ** 2 <= radius ** 2,                       # disc
                (dx <= radius) & (np.abs(dy) <= radius),                # square
                (np.abs(dy) <= radius) & (dx <= (dy + radius) / 2),     # triangle
                ((dx <= radius) & (np.abs(dy) <= radius / 3))           # cross
                | ((dx <= radius / 3) & (np.abs(dy) <= radius))][label]
        pixels[mask] = rng.integers(0, 256, 3)
        encoded = tf.io.encode_jpeg(pixels.clip(0, 255).astype(np.uint8), quality=90)
        (target / f"{index:06d}.jpg").write_bytes(encoded.numpy())
    done.write_text(str(count))  # beside the folder: not a stray file in it
    return folder


def peak_rss(command):
    """Peak resident memory (MB) of `command` run in a fresh child process."""
    probe = ("import resource, subprocess, sys; "
             "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
             "stderr=subprocess.PIPE, text=True); "
             "sys.stderr.write(code.stderr[-3000:] if code.returncode else ''); "
             "print(code.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    result = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True,
                            text=True, cwd=ROOT)
    returncode, kilobytes = result.stdout.split()
    if returncode != "0":
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return int(kilobytes) / 1024


def kerasdl_splits(recipe_name, folder, image_size, overrides, extra=None):
    """The recipe, its settings and the folder's splits as `kerasdl train` loads them, twice:
    "kerasdl" (the cache kerasdl chooses) and "kerasdl_file_cache", as if 1 GiB were
    available: over the budget (1/32) for both folders (6,000 64x64 images take 281 MiB as
    float32, 360 160x160 photos 105 MiB), so the file cache."""
    import contextlib

    from kerasdl import settings as kerasdl_settings
    from kerasdl.registry import load_recipe
    from kerasdl.registry import recipe_info
    from kerasdl.session import load_splits

    recipe = load_recipe(recipe_name)
    settings = kerasdl_settings.resolve(
        recipe_info(recipe_name)["defaults"], {},
        {"data": str(folder), "image_size": [image_size, image_size], "set": overrides,
         **(extra or {})})
    loaded = {}
    with contextlib.redirect_stdout(sys.stderr):
        for name, memory in (("kerasdl", None), ("kerasdl_file_cache", 1 << 30)):
            real = kerasdl_settings.available_memory
            if memory is not None:
                kerasdl_settings.available_memory = lambda: memory
            try:
                loaded[name] = load_splits(recipe, settings)
            finally:
                kerasdl_settings.available_memory = real
    return recipe, settings, loaded


def throughput(folder, image_size, pairs, epochs, overrides, recipe_name="cnn",
               extra=None):
    """Training samples/s after the first epoch: kerasdl and the Keras way, in turn.

    kerasdl's data, model and training pipeline are built the way `kerasdl train
    RECIPE --data FOLDER --image-size SIZE` builds them (`load_splits`, `build`,
    `pipelines`), with the `extra` settings (such as `weights`).
    """
    import contextlib

    import keras

    from kerasdl.session import build
    from kerasdl.session import pipelines

    recipe, settings, loaded = kerasdl_splits(recipe_name, folder, image_size, overrides, extra)
    contenders = {}
    with contextlib.redirect_stdout(sys.stderr):
        for name, splits in loaded.items():
            model, hp = build(recipe, splits.spec, settings, splits.train)
            data = pipelines(recipe, splits, hp, settings["batch_size"])[0]
            contenders[name] = (model, data, int(splits.spec["num_examples"]["train"]),
                                splits.spec["cache"])
        keras_data = keras.utils.image_dataset_from_directory(
            str(folder), validation_split=0.2, subset="training", seed=1337,
            image_size=(image_size, image_size), batch_size=settings["batch_size"])
        keras_count = len(keras_data.file_paths)
        model, _ = build(recipe, splits.spec, settings, splits.train)
        contenders["keras"] = (model, keras_data.cache().prefetch(-1), keras_count, "memory")
    rates = {name: [] for name in contenders}

    class EpochTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    with contextlib.redirect_stdout(sys.stderr):
        for model, data, _, _ in contenders.values():
            model.fit(data, epochs=1, verbose=0)  # decodes (fills the cache) and traces
        for pair in range(pairs):
            for name in (list(contenders) if pair % 2 == 0 else list(contenders)[::-1]):
                model, data, examples, _ = contenders[name]
                timer = EpochTimes()
                timer.times = []
                model.fit(data, epochs=epochs, verbose=0, callbacks=[timer])
                rates[name].extend(examples / seconds for seconds in timer.times)
                print(f"{name}: {', '.join(f'{examples / s:.0f}' for s in timer.times)} "
                      "samples/s", file=sys.stderr)
    figures = {"image_size": image_size,
               "examples": {name: item[2] for name, item in contenders.items()},
               "cache": {name: item[3] for name, item in contenders.items()}}
    for name in ("kerasdl", "kerasdl_file_cache"):
        ratios = [ours / theirs for ours, theirs in zip(rates[name], rates["keras"])]
        figures[name] = {"samples_per_second": statistics.median(rates[name]),
                         "median_ratio": statistics.median(ratios),
                         "ratios": [round(ratio, 3) for ratio in ratios]}
    figures["keras"] = {"samples_per_second": statistics.median(rates["keras"])}
    return figures


def pipeline_rates(folder, image_size, passes, overrides, recipe_name="mobilenet",
                   extra=None):
    """Samples/s of the training input pipelines alone (no model), from the second pass
    on: how much of an epoch the pipeline itself can take. Medians of `passes` passes."""
    import contextlib

    import keras
    import keras_tuner


    recipe, settings, loaded = kerasdl_splits(recipe_name, folder, image_size, overrides, extra)
    pipelines = {}
    with contextlib.redirect_stdout(sys.stderr):
        for name, splits in loaded.items():
            pipelines[name] = recipe.make_pipeline(
                splits.train, splits.spec, keras_tuner.HyperParameters(), training=True,
                batch_size=settings["batch_size"])
        pipelines["keras"] = keras.utils.image_dataset_from_directory(
            str(folder), validation_split=0.2, subset="training", seed=1337,
            image_size=(image_size, image_size), batch_size=settings["batch_size"],
            verbose=False).cache().prefetch(-1)
    rates = {}
    for name, data in pipelines.items():
        sum(1 for _ in data)  # fills the cache
        samples = []
        for _ in range(passes):
            start = time.perf_counter()
            count = sum(int(images.shape[0]) for images, _ in data)
            samples.append(count / (time.perf_counter() - start))
        rates[name] = {"samples_per_second": round(statistics.median(samples)),
                       "range": [round(min(samples)), round(max(samples))]}
        print(f"{name} pipeline alone: {rates[name]}", file=sys.stderr)
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "kerasdl-images"))
    parser.add_argument("--counts", type=int, nargs=2, default=[2000, 16000])
    parser.add_argument("--throughput-count", type=int, default=6000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], dest="overrides",
                        help="hyperparameter NAME=VALUE of the recipe measured (cnn, "
                        "and mobilenet with --photos), for every run")
    parser.add_argument("--photos", type=int, default=0,
                        help="also the mobilenet pair on this many 256x192 JPEGs")
    parser.add_argument("--photo-size", type=int, default=160)
    parser.add_argument("--pipeline-only", action="store_true",
                        help="with --photos: the input pipelines alone, no model")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = Path(args.root)
    overrides = dict(item.split("=", 1) for item in args.overrides)
    result = {"counts": args.counts, "set": overrides}
    if not args.skip_rss:
        rss = {}
        for count in args.counts:
            folder = make_folder(root / str(count), count)
            with tempfile.TemporaryDirectory() as run:
                command = [sys.executable, "-m", "kerasdl", "train", "cnn", "--data",
                           str(folder), "--image-size", "64", "--epochs", "1",
                           "--output", str(Path(run) / "run"),
                           *[part for item in args.overrides for part in ("--set", item)]]
                start = time.perf_counter()
                rss[count] = peak_rss(command)
                print(f"{count} JPEGs: peak RSS {rss[count]:,.0f} MB "
                      f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)
        result["peak_rss_mb"] = rss
        result["rss_ratio"] = rss[args.counts[1]] / rss[args.counts[0]]
    if not args.skip_throughput:
        folder = make_folder(root / str(args.throughput_count), args.throughput_count)
        result["throughput"] = throughput(folder, 64, args.pairs, args.epochs, overrides)
    if args.photos:
        folder = make_folder(root / f"photos-{args.photos}", args.photos, size=(256, 192),
                             classes=4)
        if args.pipeline_only:
            result["photo_pipelines"] = pipeline_rates(
                folder, args.photo_size, 2 * args.pairs, overrides, "mobilenet",
                {"weights": "none"})
        else:
            result["photos"] = throughput(folder, args.photo_size, args.pairs, args.epochs,
                                          overrides, "mobilenet", {"weights": "none"})
    if args.json:
        print(json.dumps(result))
        return
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
