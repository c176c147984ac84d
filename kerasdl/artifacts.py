"""Exported artifacts in their own runtimes: opening, predicting and evaluating them.

An artifact is a `.keras` file, a SavedModel folder, a `.tflite` file (LiteRT
interpreter) or an `.onnx` file (onnxruntime). `open_artifact` gives one `Runtime`
for all of them; `evaluate_artifact` scores one on a run's test split (or other data)
with the run's own loss and metrics, so its figures compare with `kerasdl evaluate RUN`.
"""

import contextlib
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

from kerasdl import runs
from kerasdl.errors import RunError
from kerasdl.errors import UsageError

# What an export's --output must end with, per format (saved_model: a folder, no suffix).
EXPORT_SUFFIXES = {"keras": ".keras", "tflite": ".tflite", "onnx": ".onnx",
                   "base": ".weights.h5", "saved_model": ""}


def check_export_output(output, fmt, force=False):
    """`kerasdl export`'s `--output` for format `fmt`, before TensorFlow starts (exit 2).

    Raises:
        UsageError: for a suffix that is not the format's, or an existing `output`
            without `force`.
    """
    if not output:
        return
    name = Path(output).name
    wanted = EXPORT_SUFFIXES[fmt]
    known = [suffix for suffix in EXPORT_SUFFIXES.values() if suffix and name.endswith(suffix)]
    if wanted and not name.endswith(wanted):
        raise UsageError(f"`--output` for --format {fmt} must end with {wanted}. "
                         f"Received: --output {output}")
    if not wanted and known:
        formats = [name for name, suffix in EXPORT_SUFFIXES.items() if suffix == known[-1]]
        raise UsageError(f"`--output` for --format saved_model is a folder, not a {known[-1]} "
                         f"file. Received: --output {output} (for that file give --format "
                         f"{formats[0]})")
    if Path(output).exists() and not force:
        raise UsageError(f"{output!r} exists; pass --force to replace it.")

KINDS = "a run folder, a .keras file, a SavedModel folder, a .tflite or an .onnx file"
EXTRA = "pip install 'kerasdl[export]' (ai-edge-litert, onnxruntime, tf2onnx)"


class Runtime:
    """One loaded model in the runtime that will serve it.

    Attributes:
        input_shape: the shape of one example (no batch dimension).
        name: the runtime and its version, e.g. `ai-edge-litert 2.3.0`.
        model: the Keras model for `.keras` files and runs, else None.
    """

    def __init__(self, predict, input_shape, name, model=None):
        self._predict = predict
        self.input_shape = tuple(int(d) for d in input_shape)
        self.name = name
        self.model = model

    def predict(self, inputs):
        """Returns the outputs for a float32 batch of shape `(n, *input_shape)`."""
        inputs = np.ascontiguousarray(inputs, dtype=np.float32)
        if inputs.shape[1:] != self.input_shape:
            raise UsageError(f"The model takes examples of shape {list(self.input_shape)}. "
                             f"Received: {list(inputs.shape[1:])}")
        return np.asarray(self._predict(inputs))


def _keras_runtime(model, recipe=None):
    import tensorflow as tf

    from kerasdl.registry import servable

    target = servable(model, recipe)
    shape = tuple(target.input_shape[1:])
    # One traced function for every batch size: Keras' predict_on_batch would trace
    # again for each new batch size a micro-batching server sends.
    call = tf.function(lambda x: target(x, training=False), reduce_retracing=True,
                       input_signature=[tf.TensorSpec((None, *shape), tf.float32)])
    return Runtime(lambda x: call(x).numpy(), shape, f"keras {_version('keras')}", model)


def _saved_model_runtime(path):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    if "serving_default" not in loaded.signatures:
        raise RunError(f"SavedModel {str(path)!r} has no serving_default signature.")
    signature = loaded.signatures["serving_default"]
    (name, spec), = signature.structured_input_signature[1].items()

    def predict(inputs):
        outputs = signature(**{name: tf.constant(inputs)})
        return next(iter(outputs.values())).numpy()

    return Runtime(predict, spec.shape[1:], f"tensorflow {tf.__version__}")


def _tflite_runtime(path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise RunError(f"Running a .tflite file needs the LiteRT interpreter: {EXTRA}.") from None
    try:
        interpreter = Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        raise RunError(f"Cannot load {str(path)!r} in LiteRT: {str(error).splitlines()[0]}") \
            from None
    source, sink = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def quantize(example):
        scale, zero = source["quantization"]
        if source["dtype"] == np.float32 or not scale:
            return example.astype(source["dtype"])
        info = np.iinfo(source["dtype"])
        return np.clip(np.round(example / scale + zero), info.min, info.max).astype(
            source["dtype"])

    def dequantize(output):
        scale, zero = sink["quantization"]
        if sink["dtype"] == np.float32 or not scale:
            return output.astype(np.float32)
        return (output.astype(np.float32) - zero) * scale

    # Exports have a fixed batch of one, as on devices (see kerasdl.export).
    def predict(inputs):
        outputs = []
        for example in inputs:
            interpreter.set_tensor(source["index"], quantize(example[np.newaxis]))
            interpreter.invoke()
            outputs.append(dequantize(interpreter.get_tensor(sink["index"])[0]))
        return np.stack(outputs)

    return Runtime(predict, source["shape"][1:], f"ai-edge-litert {_version('ai-edge-litert')}")


def _onnx_runtime(path):
    try:
        import onnxruntime
    except ImportError:
        raise RunError(f"Running an .onnx file needs onnxruntime: {EXTRA}.") from None
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own kinds for a bad file
        raise RunError(f"Cannot load {str(path)!r} in onnxruntime: "
                       f"{str(error).splitlines()[0][:200]}") from None
    source = session.get_inputs()[0]
    if any(not isinstance(d, int) for d in source.shape[1:]):
        raise RunError(f"{str(path)!r} has an input of unknown shape {source.shape}.")
    return Runtime(lambda x: session.run(None, {source.name: x})[0], source.shape[1:],
                   f"onnxruntime {onnxruntime.__version__}")


def _version(package):
    return metadata.version(package)


def open_artifact(path, unsafe=False):
    """Loads a run or an exported artifact in its own runtime.

    Raises:
        RunError: for a path that is none of the artifact kinds, or that its runtime
            cannot load.
    """
    path = Path(path)
    if "://" in str(path):
        raise RunError(f"Models are loaded from local files only. Received: {str(path)!r}")
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return _saved_model_runtime(path)
    if path.is_file() and path.suffix == ".tflite":
        return _tflite_runtime(path)
    if path.is_file() and path.suffix == ".onnx":
        return _onnx_runtime(path)
    if path.is_dir() or path.suffix in (".keras", ".h5", ".hdf5"):
        model_path, config = runs.resolve_run(path)
        recipe = None
        if config:
            from kerasdl.registry import load_recipe

            recipe = load_recipe(config["recipe"])  # registers the recipe's custom layers
        return _keras_runtime(runs.load_model(model_path, unsafe=unsafe), recipe)
    if not path.exists():
        raise RunError(f"Artifact not found: {str(path)!r}.")
    raise RunError(f"Not a model artifact: {str(path)!r}. Valid: {KINDS}.")


def run_of(artifact):
    """The run an artifact was exported from (`RUN/export/ARTIFACT`), or None."""
    path = Path(artifact).resolve()
    for folder in (path, *path.parents[:3]):
        if (folder / "config.json").is_file() and (folder / "model.keras").is_file():
            return folder
    return None


def scores_itself(model):
    """Whether a model scores itself in its own `test_step` (GAN, VAE, RBM) or has no
    compiled loss: its artifacts cannot be scored with the run's loss and metrics."""
    import keras

    return type(model).test_step is not keras.Model.test_step or not model.compiled \
        or not model.get_compile_config().get("loss")


def score(run, artifact_run=None, **options):
    """`kerasdl evaluate`: scores a run or model file, or an exported artifact in its runtime.

    `run` is an artifact when `artifact_run` names its run, or when it is a .tflite or
    .onnx file or a SavedModel folder (`evaluate_artifact`); otherwise a run folder or
    model file (`kerasdl.evaluation.evaluate`). `options` are theirs.

    Returns:
        The metrics dict.
    """
    if artifact_run or Path(run).suffix in (".tflite", ".onnx") \
            or (Path(run) / "saved_model.pb").is_file():
        return evaluate_artifact(run, artifact_run, **options)
    from kerasdl.evaluation import evaluate

    return evaluate(run, **options)


def evaluate_artifact(artifact, run=None, data=None, target=None, data_dir=None, split=None,
                      batch_size=None, unsafe=False, skip_bad_files=None, sep=None):
    """Scores an exported artifact, in its own runtime, with its run's loss and metrics.

    The artifact's predictions on the split are scored by a Keras identity model
    compiled like the run's model, so the figures are those `kerasdl evaluate RUN`
    computes (less the weight-regularization penalty, which an artifact does not carry).

    Args:
        artifact: a .keras, .tflite or .onnx file or a SavedModel folder.
        run: the run it was exported from; by default the run folder it lies in.
        data, target, data_dir, split, batch_size, skip_bad_files, sep: as for
            `kerasdl.evaluation.evaluate`.

    Returns:
        The metrics dict of `kerasdl.evaluation.evaluate`, plus `artifact` and `runtime`.

    Raises:
        UsageError: without a run, for a recipe scored by its own `test_step` (GAN,
            VAE, RBM), or for an artifact whose input does not match the run's model.
    """
    import keras

    from kerasdl.evaluation import evaluation_batches
    from kerasdl.evaluation import load_run

    run = run or run_of(artifact)
    if run is None:
        raise UsageError(f"Give the run {str(artifact)!r} was exported from: `--run RUN` "
                         "(its data, split and metrics score the artifact).")
    model, config, recipe = load_run(run, unsafe)
    if config is None:
        raise UsageError(f"`--run` must be a run folder (with config.json). Received: {str(run)!r}")
    if scores_itself(model):
        raise UsageError(f"The {config['recipe']} recipe scores itself in its own test_step; "
                         "artifacts are evaluated for recipes compiled with a loss "
                         "(use `kerasdl evaluate RUN`).")
    runtime = open_artifact(artifact, unsafe)
    if runtime.input_shape != tuple(model.input_shape[1:]):
        raise UsageError(f"{str(artifact)!r} takes examples of shape {list(runtime.input_shape)}; "
                         f"the run's model takes {list(model.input_shape[1:])}.")
    dataset, batches, split = evaluation_batches(
        model, config, recipe, data=data, target=target, data_dir=data_dir, split=split,
        batch_size=batch_size, skip_bad_files=skip_bad_files, sep=sep)
    predictions, labels = [], []
    for features, label in batches:
        predictions.append(runtime.predict(np.asarray(features)))
        labels.append(np.asarray(label))
    predictions, labels = np.concatenate(predictions), np.concatenate(labels)
    scorer = keras.Sequential([keras.Input(predictions.shape[1:]), keras.layers.Identity()],
                              name="scorer")
    scorer.compile_from_config(model.get_compile_config())
    with contextlib.redirect_stdout(sys.stderr):
        metrics = scorer.evaluate(predictions, labels,
                                  batch_size=batch_size or config["settings"].get("batch_size", 32),
                                  return_dict=True, verbose=0)
    return {**{name: float(value) for name, value in metrics.items()},
            "examples": int(len(labels)), "split": split, "artifact": str(artifact),
            "runtime": runtime.name}
