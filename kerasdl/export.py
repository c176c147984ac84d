"""Exporting a trained model, checked in the runtime that will serve it.

Each export is loaded back in its own runtime (Keras, TensorFlow's SavedModel loader,
the LiteRT interpreter, onnxruntime) and its outputs on a test batch are compared with
the Keras model's; the check is printed and stored beside the artifact as
`<artifact>.check.json`.

Quantized exports (`quantize`: TFLite's post-training `dynamic`, `float16` or full-integer
`int8`, or Keras' own `int8` for `.keras`) answer differently by design: their check
reports the size beside the float model's and the run's test metrics of both, each
scored in its own runtime.
"""

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kerasdl import pretrained
from kerasdl import registry
from kerasdl import runs
from kerasdl.data import load_data
from kerasdl.errors import KerasdlError
from kerasdl.errors import UsageError
from kerasdl.registry import servable
from kerasdl.session import fixed_hp
from kerasdl.evaluation import load_run

# format -> (default file name, relative tolerance, absolute tolerance)
FORMATS = {
    "keras": ("model.keras", 0.0, 1e-6),
    "saved_model": ("saved_model", 1e-5, 1e-5),
    "tflite": ("model.tflite", 1e-4, 1e-4),
    "onnx": ("model.onnx", 1e-4, 1e-4),
    # The pretrained base a recipe declares (PRETRAINED), for `train ... --weights FILE`.
    "base": ("base.weights.h5", 0.0, 1e-6),
}
EXTRA = "pip install 'kerasdl[export]' (ai-edge-litert, onnxruntime, tf2onnx)"
# format -> the quantization methods it takes
QUANTIZE = {"tflite": ("dynamic", "float16", "int8"), "keras": ("int8",)}
# Calibration examples of full-integer quantization, drawn from the training split.
REPRESENTATIVE_EXAMPLES = 300


class ExportCheckFailed(KerasdlError):
    """An exported model answers differently from the Keras model."""


def sample_inputs(model, config, recipe, batch_size=16):
    """A batch of test inputs: the run's own test split, or seeded random inputs."""
    target = servable(model, recipe)
    shape = (batch_size, *target.input_shape[1:])
    if config is None or target is not model:
        return np.random.default_rng(0).normal(size=shape).astype("float32")
    spec = config["spec"]
    splits = load_data(config["settings"]["data"], spec["task"], config["settings"], spec=spec)
    batches = recipe.make_pipeline(splits.test, spec, fixed_hp(config["hyperparameters"]), training=False,
                                   batch_size=batch_size)
    batch = next(iter(batches))
    return np.asarray(batch[0] if isinstance(batch, tuple) else batch, "float32")


def _saved_model(target, folder, batch=None):
    # An explicit signature: a subclassed model (the VAE) has none recorded after loading.
    signature = [tf.TensorSpec((batch, *target.input_shape[1:]), tf.float32)]
    target.export(str(folder), format="tf_saved_model", verbose=False,
                  input_signature=signature)


@contextlib.contextmanager
def _staged_saved_model(target, path, batch=None):
    """A SavedModel beside `path` for a converter to read, removed afterwards."""
    staging = Path(f"{path}.saved_model")
    try:
        _saved_model(target, staging, batch=batch)
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _run_keras(target, path, inputs, quantize=None, config=None, recipe=None):
    if quantize:
        # Keras quantizes Dense, EinsumDense and Embedding layers; others keep float32
        # (its warning per other layer says so; the check lists the int8 layers instead).
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have a `quantize` method")
            target.quantize(quantize)
    target.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    return np.asarray(reloaded.predict(inputs, verbose=0)), f"keras {keras.__version__}"


def _run_saved_model(target, path, inputs, **_):
    _saved_model(target, path)
    loaded = tf.saved_model.load(str(path))
    return np.asarray(loaded.serve(inputs)), f"tensorflow {tf.__version__}"


def _representative(config, recipe, target):
    """A few hundred training examples, one at a time, to calibrate int8 ranges.

    A model whose input is not the data (a GAN's generator takes latent codes) is
    calibrated on seeded standard-normal codes, the distribution it samples from.
    """
    spec = config["spec"]
    splits = load_data(config["settings"]["data"], spec["task"], config["settings"], spec=spec)
    batches = recipe.make_pipeline(splits.train, spec, fixed_hp(config["hyperparameters"]), training=False,
                                   batch_size=1)
    shape = tuple(target.input_shape[1:])

    def examples():
        for batch in batches.take(REPRESENTATIVE_EXAMPLES):
            example = batch[0] if isinstance(batch, tuple) else batch
            if tuple(example.shape[1:]) != shape:
                break
            yield [tf.cast(example, tf.float32)]
        else:
            return
        codes = np.random.default_rng(0).normal(size=(REPRESENTATIVE_EXAMPLES, 1, *shape))
        for code in codes.astype("float32"):
            yield [code]

    return examples


def tflite_bytes(target, path, quantize=None, config=None, recipe=None):
    """Converts `target` to TFLite (post-training `quantize`, if given); returns the bytes."""
    # A fixed batch of one, as on devices: recurrent layers then convert to built-in
    # ops only (a dynamic batch needs TensorFlow's Flex ops, which LiteRT lacks).
    with _staged_saved_model(target, path, batch=1) as staging:
        converter = tf.lite.TFLiteConverter.from_saved_model(str(staging))
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            # Full-integer: every op in int8 (the float input and output are quantized
            # and dequantized at the edges, so callers send the same pixels).
            converter.representative_dataset = _representative(config, recipe, target)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        try:
            with contextlib.redirect_stdout(sys.stderr):
                return converter.convert()
        except Exception as error:  # the converter raises many kinds for unsupported ops
            if not quantize:
                raise
            first = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
            raise KerasdlError(f"TFLite {quantize} quantization of this model failed: "
                               f"{first}") from None


def _run_tflite(target, path, inputs, quantize=None, config=None, recipe=None):
    from kerasdl.artifacts import open_artifact

    try:
        import ai_edge_litert  # noqa: F401
    except ImportError:
        raise KerasdlError(f"TFLite export needs the LiteRT interpreter: {EXTRA}.") from None
    Path(path).write_bytes(tflite_bytes(target, path, quantize, config, recipe))
    runtime = open_artifact(path)
    return runtime.predict(inputs), runtime.name


def _run_onnx(target, path, inputs, **_):
    try:
        import onnxruntime
    except ImportError:
        raise KerasdlError(f"ONNX export needs onnxruntime: {EXTRA}.") from None
    # Keras' own ONNX export leaves the constants of layers such as Normalization as
    # graph inputs that onnxruntime then demands; converting Keras' SavedModel with
    # tf2onnx freezes them.
    with _staged_saved_model(target, path) as staging:
        result = subprocess.run(
            [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(staging),
             "--output", str(path), "--signature_def", "serving_default"],
            capture_output=True, text=True)
    if result.returncode != 0:
        if "No module named tf2onnx" in result.stderr:
            raise KerasdlError(f"ONNX export needs tf2onnx: {EXTRA}.")
        last = result.stderr.strip().splitlines()[-1][:300] if result.stderr.strip() else ""
        raise KerasdlError(f"ONNX conversion failed: {last}")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.asarray(session.run(None, {name: inputs})[0]), \
        f"onnxruntime {onnxruntime.__version__}"


def _run_base_weights(target, path, inputs, **_):
    """Saves the base's weights and reloads them into a fresh copy of the base."""
    target.save_weights(str(path))
    copy = keras.models.clone_model(target)
    copy.load_weights(str(path))
    return np.asarray(copy.predict(inputs, verbose=0)), f"keras {keras.__version__}"


RUNTIMES = {"keras": _run_keras, "saved_model": _run_saved_model, "tflite": _run_tflite,
            "onnx": _run_onnx, "base": _run_base_weights}


def size_bytes(path):
    """The size of a file, or of every file under a folder."""
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def _quantized_layers(model):
    """Names of the layers Keras' `quantize` turned to int8."""
    found, stack = [], list(model.layers)
    while stack:
        layer = stack.pop(0)
        if str(getattr(layer.dtype_policy, "name", "")).startswith("int8"):
            found.append(layer.name)
        stack.extend(getattr(layer, "layers", []))
    return found


def export(path, fmt, output=None, force=False, unsafe=False, quantize=None):
    """Exports a run's model to `fmt` and checks it in its runtime.

    Args:
        path: a run directory or model file.
        fmt: `keras`, `saved_model`, `tflite` or `onnx`.
        output: where to write; by default `RUN/export/<name>` (`model-<quantize>.<ext>`
            for a quantized export, so the float one is kept).
        force: replace an existing artifact.
        quantize: `dynamic`, `float16` or `int8` for tflite; `int8` for keras.

    Returns:
        `(artifact_path, check)`; `check` holds the tolerances, the largest
        differences, the runtime, the size in `bytes` and `passed`; for a quantized
        export also `quantization`: the method, the float model's size and both
        models' test metrics (`passed` is then None: no tolerance applies).

    Raises:
        UsageError: for an unknown format, a quantization the format does not take,
            int8 of a bare model file (calibration needs its run's data), or an
            existing output without `force`.
        ExportCheckFailed: when the export answers beyond the tolerance (the artifact
            and its check are kept for inspection).
    """
    if fmt not in FORMATS:
        raise UsageError(f"Unknown export format: {fmt!r}. Valid formats: {', '.join(FORMATS)}")
    if quantize is not None and quantize not in QUANTIZE.get(fmt, ()):
        valid = "; ".join(f"--format {f} --quantize {'|'.join(q)}" for f, q in QUANTIZE.items())
        raise UsageError(f"`--quantize {quantize}` does not apply to --format {fmt}. "
                         f"Valid: {valid}")
    name, rtol, atol = FORMATS[fmt]
    if quantize:
        stem, _, suffix = name.partition(".")
        name = f"{stem}-{quantize}.{suffix}"
    base = Path(path) if Path(path).is_dir() else Path(path).parent
    output = Path(output) if output else base / "export" / name
    if output.exists() and not force:
        raise UsageError(f"{str(output)!r} exists; pass --force to replace it.")
    model, config, recipe = load_run(path, unsafe)
    if quantize and config is None:
        raise UsageError("A quantized export is measured on its run's test split (and int8 "
                         "TFLite calibrated on its training split): give a run folder, not a "
                         "bare model file.")
    if fmt == "base":
        target = pretrained.base_model(
            model, registry.pretrained_of(recipe) if recipe is not None else None)
        inputs = np.random.default_rng(0).normal(
            size=(4, *target.input_shape[1:])).astype("float32")
    else:
        target = servable(model, recipe)
        inputs = sample_inputs(model, config, recipe)
    expected = np.asarray(target.predict(inputs, verbose=0))

    output.parent.mkdir(parents=True, exist_ok=True)
    # Same name ending as the output: Keras checks it (".weights.h5").
    staging = output.parent / f".partial-{os.getpid()}-{output.name}"
    try:
        actual, runtime = RUNTIMES[fmt](target, staging, inputs, quantize=quantize,
                                        config=config, recipe=recipe)
        if output.is_dir():
            shutil.rmtree(output)
        os.replace(staging, output)
    finally:
        if staging.is_dir():
            shutil.rmtree(staging)
        elif staging.exists():
            staging.unlink()
    difference = np.abs(actual.reshape(expected.shape) - expected)
    scale = np.maximum(np.abs(expected), 1e-12)
    passed = bool(np.allclose(actual.reshape(expected.shape), expected, rtol=rtol, atol=atol))
    check = {"format": fmt, "artifact": str(output), "runtime": runtime,
             "examples": int(len(inputs)), "max_abs_diff": float(difference.max()),
             "max_rel_diff": float((difference / scale).max()), "rtol": rtol, "atol": atol,
             "bytes": size_bytes(output), "passed": passed}
    if quantize:
        check["passed"] = None
        check["quantization"] = _measure_quantized(path, output, fmt, quantize, target, config,
                                                   recipe, unsafe)
    runs.write_json(Path(f"{output}.check.json"), check)
    if quantize:
        return output, check
    if not passed:
        raise ExportCheckFailed(
            f"The {fmt} export answers differently from the Keras model: largest difference "
            f"{check['max_abs_diff']:.3g} (tolerance atol {atol}, rtol {rtol}); kept at "
            f"{output} with its check for inspection.")
    return output, check


def _measure_quantized(run, artifact, fmt, quantize, target, config, recipe, unsafe):
    """The float model's size and test metrics beside the quantized artifact's."""
    from kerasdl.artifacts import scores_itself
    from kerasdl.artifacts import evaluate_artifact
    from kerasdl.evaluation import evaluate

    if fmt == "tflite":
        float_bytes = len(tflite_bytes(servable(load_run(run, unsafe)[0], recipe),
                                       Path(f"{artifact}.float"), config=config, recipe=recipe))
    else:
        float_bytes = size_bytes(runs.resolve_run(run)[0])
    found = {"method": quantize, "bytes": size_bytes(artifact), "float_bytes": float_bytes,
             "size_ratio": round(size_bytes(artifact) / float_bytes, 4)}
    if fmt == "keras":
        found["int8_layers"] = _quantized_layers(target)
    model = load_run(run, unsafe)[0]
    if scores_itself(model):
        found["metrics"] = None  # the recipe scores itself in its own test_step (GAN, VAE)
        return found
    found["float_metrics"] = evaluate(run, unsafe=unsafe)
    found["metrics"] = evaluate_artifact(artifact, run, unsafe=unsafe)
    return found
