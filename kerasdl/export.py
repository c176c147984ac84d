"""Exporting a trained model, checked in the runtime that will serve it.

Each export is loaded back in its own runtime (Keras, TensorFlow's SavedModel loader,
the LiteRT interpreter, onnxruntime) and its outputs on a test batch are compared with
the Keras model's; the check is printed and stored beside the artifact as
`<artifact>.check.json`.
"""

import contextlib
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kerasdl import pretrained
from kerasdl import runs
from kerasdl.data import load_data
from kerasdl.errors import KerasdlError
from kerasdl.errors import UsageError
from kerasdl.evaluation import _fixed_hp
from kerasdl.evaluation import load_run

# format -> (default file name, relative tolerance, absolute tolerance)
FORMATS = {
    "keras": ("model.keras", 0.0, 1e-6),
    "saved_model": ("saved_model", 1e-5, 1e-5),
    "tflite": ("model.tflite", 1e-4, 1e-4),
    "onnx": ("model.onnx", 1e-4, 1e-4),
    # The pretrained base of vgg16 or mobilenet, for `kerasdl train ... --weights FILE`.
    "base": ("base.weights.h5", 0.0, 1e-6),
}
EXTRA = "pip install 'kerasdl[export]' (ai-edge-litert, onnxruntime, tf2onnx)"


class ExportCheckFailed(KerasdlError):
    """An exported model answers differently from the Keras model."""


def servable(model):
    """The part of a model that serves predictions: a GAN's generator, else the model."""
    return model.generator if hasattr(model, "generator") else model


def sample_inputs(model, config, recipe, batch_size=16):
    """A batch of test inputs: the run's own test split, or seeded random inputs."""
    target = servable(model)
    shape = (batch_size, *target.input_shape[1:])
    if config is None or target is not model:
        return np.random.default_rng(0).normal(size=shape).astype("float32")
    spec = config["spec"]
    splits = load_data(config["settings"]["data"], spec["task"], config["settings"], spec=spec)
    batches = recipe.make_pipeline(splits.test, spec, _fixed_hp(config), training=False,
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


def _run_keras(target, path, inputs):
    target.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    return np.asarray(reloaded.predict(inputs, verbose=0)), f"keras {keras.__version__}"


def _run_saved_model(target, path, inputs):
    _saved_model(target, path)
    loaded = tf.saved_model.load(str(path))
    return np.asarray(loaded.serve(inputs)), f"tensorflow {tf.__version__}"


def _run_tflite(target, path, inputs):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise KerasdlError(f"TFLite export needs the LiteRT interpreter: {EXTRA}.") from None
    # A fixed batch of one, as on devices: recurrent layers then convert to built-in
    # ops only (a dynamic batch needs TensorFlow's Flex ops, which LiteRT lacks).
    with _staged_saved_model(target, path, batch=1) as staging:
        Path(path).write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(staging)).convert())
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    source, sink = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs = []
    for example in inputs:
        interpreter.set_tensor(source["index"], example[np.newaxis])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(sink["index"])[0])
    return np.stack(outputs), f"ai-edge-litert {metadata.version('ai-edge-litert')}"


def _run_onnx(target, path, inputs):
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


def _run_base_weights(target, path, inputs):
    """Saves the base's weights and reloads them into a fresh copy of the base."""
    target.save_weights(str(path))
    copy = keras.models.clone_model(target)
    copy.load_weights(str(path))
    return np.asarray(copy.predict(inputs, verbose=0)), f"keras {keras.__version__}"


RUNTIMES = {"keras": _run_keras, "saved_model": _run_saved_model, "tflite": _run_tflite,
            "onnx": _run_onnx, "base": _run_base_weights}


def export(path, fmt, output=None, force=False, unsafe=False):
    """Exports a run's model to `fmt` and checks it in its runtime.

    Args:
        path: a run directory or model file.
        fmt: `keras`, `saved_model`, `tflite` or `onnx`.
        output: where to write; by default `RUN/export/<name>`.
        force: replace an existing artifact.

    Returns:
        `(artifact_path, check)`; `check` holds the tolerances, the largest
        differences, the runtime and `passed`.

    Raises:
        UsageError: for an unknown format or an existing output without `force`.
        ExportCheckFailed: when the export answers beyond the tolerance (the artifact
            and its check are kept for inspection).
    """
    if fmt not in FORMATS:
        raise UsageError(f"Unknown export format: {fmt!r}. Valid formats: {', '.join(FORMATS)}")
    name, rtol, atol = FORMATS[fmt]
    base = Path(path) if Path(path).is_dir() else Path(path).parent
    output = Path(output) if output else base / "export" / name
    if output.exists() and not force:
        raise UsageError(f"{str(output)!r} exists; pass --force to replace it.")
    model, config, recipe = load_run(path, unsafe)
    if fmt == "base":
        target = pretrained.base_model(model)
        inputs = np.random.default_rng(0).normal(
            size=(4, *target.input_shape[1:])).astype("float32")
    else:
        target = servable(model)
        inputs = sample_inputs(model, config, recipe)
    expected = np.asarray(target.predict(inputs, verbose=0))

    output.parent.mkdir(parents=True, exist_ok=True)
    # Same name ending as the output: Keras checks it (".weights.h5").
    staging = output.parent / f".partial-{os.getpid()}-{output.name}"
    try:
        actual, runtime = RUNTIMES[fmt](target, staging, inputs)
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
             "passed": passed}
    runs.write_json(Path(f"{output}.check.json"), check)
    if not passed:
        raise ExportCheckFailed(
            f"The {fmt} export answers differently from the Keras model: largest difference "
            f"{check['max_abs_diff']:.3g} (tolerance atol {atol}, rtol {rtol}); kept at "
            f"{output} with its check for inspection.")
    return output, check
