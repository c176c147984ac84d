"""Devices: starting TensorFlow quietly and listing what it sees."""

import contextlib
import os
import sys
import tempfile

# TensorFlow's C++ start-up notices, written straight to file descriptor 2 before
# its logging is initialised (TF_CPP_MIN_LOG_LEVEL cannot hide them). They say
# nothing a user can act on; everything else written then is passed through.
_NOISE = (
    "WARNING: All log messages before absl::InitializeLog()",
    "I0000 ",
    "To enable the following instructions:",
)
_NO_GPU = "failed call to cuInit"


@contextlib.contextmanager
def _filtered_native_stderr():
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines():
                if not line.startswith(_NOISE) and _NO_GPU not in line:
                    print(line, file=sys.stderr)


def start_tensorflow():
    """Imports TensorFlow and initialises its devices without the start-up notices.

    Returns:
        The names of the physical devices TensorFlow sees.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with _filtered_native_stderr():
            import tensorflow as tf

            devices = tf.config.list_physical_devices()
    except OSError:  # no usable file descriptor 2 (embedded interpreters)
        import tensorflow as tf

        devices = tf.config.list_physical_devices()
    split = os.environ.get("KERASDL_CPU_DEVICES")
    if split and int(split) > 1 and not tf.config.list_physical_devices("GPU"):
        try:
            split_cpu(int(split))
        except RuntimeError:  # devices already initialised in this process
            pass
    return [device.name for device in devices]


def cpu_supports_bfloat16():
    """Whether this CPU computes bfloat16 natively (AVX512_BF16 or AMX), from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def split_cpu(count):
    """Splits the CPU into `count` logical devices (before TensorFlow initialises them).

    MirroredStrategy then has replicas to mirror on a machine without GPUs: how CI tests
    the multi-device path. Set by KERASDL_CPU_DEVICES.
    """
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])


def configure(settings):
    """Applies the `device`, `mixed_precision`, `jit` and `strategy` settings.

    `device`: auto (GPUs when TensorFlow sees any), cpu (GPUs hidden) or gpu (an error
    without one). GPU memory growth is on. `mixed_precision`: mixed_float16 on GPUs,
    mixed_bfloat16 on CPUs that compute bfloat16. `strategy`: default (one device),
    mirrored (tf.distribute.MirroredStrategy over the GPUs, or the logical CPUs),
    multiworker (MultiWorkerMirroredStrategy over the cluster in TF_CONFIG; created
    before TensorFlow runs anything, so call this first) or auto (mirrored when more
    than one GPU is visible).

    Returns:
        `(strategy, record)`: the tf.distribute strategy to build and train under, and
        what was used, for config.json.

    Raises:
        UsageError: for a device or precision this machine does not have.
    """
    import keras
    import tensorflow as tf

    from kerasdl.errors import UsageError

    device = settings.get("device") or "auto"
    gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise UsageError("`--device gpu`: TensorFlow sees no GPU on this machine. "
                         "Valid here: --device cpu or auto (see `kerasdl info`).")
    if device == "cpu" and gpus:
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:  # already initialised in this process: place ops instead
            pass
        gpus = []
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass
    policy = "float32"
    if settings.get("mixed_precision"):
        if gpus:
            policy = "mixed_float16"
        elif cpu_supports_bfloat16():
            policy = "mixed_bfloat16"
            print("Mixed precision on the CPU: mixed_bfloat16 (this CPU computes bfloat16); "
                  "float16 mixed precision is usually slower than float32 on CPUs "
                  "(tensorflow#45441).", file=sys.stderr)
        else:
            raise UsageError("`--mixed-precision` on the CPU needs bfloat16 (AVX512_BF16 or "
                             "AMX), which this CPU lacks: float16 mixed precision is usually "
                             "slower than float32 on CPUs (tensorflow#45441). Valid here: leave "
                             "--mixed-precision out, or use a GPU.")
    keras.mixed_precision.set_global_policy(policy)

    strategy_name = settings.get("strategy") or "auto"
    if strategy_name == "auto":
        strategy_name = "mirrored" if len(gpus) > 1 else "default"
    workers = 1
    if strategy_name == "multiworker":
        from kerasdl import distributed

        strategy = distributed.make_strategy()
        spec, _ = distributed.cluster()
        workers = len(spec.get("worker", [])) + len(spec.get("chief", []))
    elif strategy_name == "mirrored":
        if gpus:
            strategy = tf.distribute.MirroredStrategy()
        else:
            strategy = tf.distribute.MirroredStrategy(
                devices=[d.name for d in tf.config.list_logical_devices("CPU")])
    else:
        strategy = tf.distribute.get_strategy()
    if device == "cpu" and strategy_name == "default":
        strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    record = {"device": "gpu" if gpus else "cpu", "gpus": [gpu.name for gpu in gpus],
              "strategy": strategy_name, "replicas": strategy.num_replicas_in_sync,
              "workers": workers,
              "precision": policy, "jit": settings.get("jit")}
    return strategy, record


def clear_session():
    """`keras.backend.clear_session()` that keeps the global dtype policy.

    Keras' `clear_session` resets all its global state, the mixed precision policy
    with it: a model built after it would compute in float32 whatever was asked.
    """
    import keras

    policy = keras.config.dtype_policy()
    keras.backend.clear_session()
    keras.config.set_dtype_policy(policy)


def model_precision(model):
    """The dtype policy a model really computes in: the most common among its layers.

    Counts the layers that hold weights (a recipe may keep an output layer in
    float32 under a mixed policy); a model without any gives its own policy.
    """
    import collections

    counts = collections.Counter()

    def visit(layer):
        children = list(getattr(layer, "layers", None) or [])
        for child in children:
            visit(child)
        if not children and layer.weights:
            counts[layer.dtype_policy.name] += 1

    visit(model)
    if not counts:
        return model.dtype_policy.name
    return counts.most_common(1)[0][0]


def reset_precision():
    """Back to float32 (the policy is global to the process)."""
    import keras

    keras.mixed_precision.set_global_policy("float32")


def info():
    """What TensorFlow sees: versions, devices, GPU details, CPU features."""
    import platform

    import keras
    import tensorflow as tf

    build = tf.sysconfig.get_build_info()
    found = {
        "python": platform.python_version(), "tensorflow": tf.__version__,
        "keras": keras.__version__, "cuda_build": build.get("cuda_version"),
        "cudnn_build": build.get("cudnn_version"),
        "physical_devices": [{"name": d.name, "type": d.device_type}
                             for d in tf.config.list_physical_devices()],
        "logical_devices": [d.name for d in tf.config.list_logical_devices()],
        "cpu_cores": os.cpu_count(), "cpu_bfloat16": cpu_supports_bfloat16(),
        "gpus": [],
    }
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        found["gpus"].append({"name": gpu.name, **{k: str(v) for k, v in details.items()}})
    found["mixed_precision"] = ("mixed_float16" if found["gpus"] else
                                "mixed_bfloat16" if found["cpu_bfloat16"] else "unavailable")
    return found
