"""Training across processes and machines: MultiWorkerMirroredStrategy, driven by TF_CONFIG.

Keras 3's `model.fit` fails under `tf.distribute.MultiWorkerMirroredStrategy`
(keras-team/keras#20585: its per-replica reduction of the step's logs), so the
multi-worker path runs its own loop on tf.distribute: the dataset is distributed with
`strategy.experimental_distribute_dataset`, each step is `strategy.run` of the model's
own `train_step` (its loss, loss scaling, optimizer and metrics, so the result is the
`fit` of one machine), and the epoch's logs are read in cross-replica context, where
the metrics' variables are summed over every replica of every worker. The callbacks
are Keras's own (backups, history, TensorBoard, early stopping, progress).
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from kerasdl.errors import UsageError


def cluster():
    """The cluster and this process's task from TF_CONFIG, or None when it is unset.

    Returns:
        `(cluster, task)`: dicts as in TF_CONFIG.

    Raises:
        UsageError: for TF_CONFIG that is not valid JSON or names no worker task.
    """
    text = os.environ.get("TF_CONFIG")
    if not text:
        return None
    try:
        config = json.loads(text)
        spec, task = config["cluster"], config["task"]
        workers = spec.get("worker", []) + spec.get("chief", [])
        task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError(f"TF_CONFIG is not valid ({error}); expected JSON like "
                         '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
                         '"task": {"type": "worker", "index": 0}}.') from None
    if not workers or task["type"] not in ("worker", "chief"):
        raise UsageError("TF_CONFIG: `cluster` needs a `worker` list and `task` a type of "
                         f"worker or chief (got {task['type']!r}).")
    return spec, task


def is_chief():
    """Whether this process writes the run: the chief, or worker 0 when there is no chief."""
    found = cluster()
    if found is None:
        return True
    spec, task = found
    if "chief" in spec:
        return task["type"] == "chief"
    return task["type"] == "worker" and int(task["index"]) == 0


def make_strategy():
    """A MultiWorkerMirroredStrategy for the cluster in TF_CONFIG.

    Raises:
        UsageError: when TF_CONFIG is unset.
    """
    import tensorflow as tf

    if cluster() is None:
        raise UsageError("`--strategy multiworker` needs TF_CONFIG (the cluster's workers and "
                         "this process's index; see the README, \"Across machines\"), or "
                         "`--workers N` to start N local workers.")
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_multiworker(strategy):
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _with_class_weight(dataset, class_weight):
    import tensorflow as tf

    weights = tf.constant([class_weight.get(i, 1.0) for i in range(max(class_weight) + 1)],
                          tf.float32)

    def add_weights(x, y):
        labels = tf.argmax(y, axis=-1) if y.shape.rank > 1 else tf.reshape(y, [-1])
        return x, y, tf.gather(weights, tf.cast(labels, tf.int32))

    return dataset.map(add_weights)


def fit(model, train_data, validation_data=None, epochs=1, callbacks=(), verbose=2,
        class_weight=None, initial_epoch=0):
    """`model.fit` for a model built under a MultiWorkerMirroredStrategy.

    The batches of `train_data` are global batches, split over the replicas of every
    worker; every worker runs this with the same arguments, in lockstep.

    Returns:
        The `keras.callbacks.History` of the run.
    """
    import keras
    import tensorflow as tf

    strategy = model.distribute_strategy
    options = tf.data.Options()
    # The embedded datasets live in memory on every worker: each keeps every Nth batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    if class_weight:
        train_data = _with_class_weight(train_data, class_weight)
    train = strategy.experimental_distribute_dataset(train_data.with_options(options))
    validation = (strategy.experimental_distribute_dataset(validation_data.with_options(options))
                  if validation_data is not None else None)

    @tf.function
    def train_step(batch):
        return strategy.run(model.train_step, args=(batch,))

    @tf.function
    def test_step(batch):
        return strategy.run(model.test_step, args=(batch,))

    @tf.function
    def results():
        # Cross-replica context: each metric's variables summed over all replicas.
        return model.get_metrics_result()

    steps = int(train_data.cardinality())
    callbacks = keras.callbacks.CallbackList(
        list(callbacks), add_history=True, add_progbar=verbose != 0, model=model,
        verbose=verbose, epochs=epochs, steps=steps if steps > 0 else None)
    model.stop_training = False
    model.make_train_function()  # what callbacks (TensorBoard) expect of a fitting model
    callbacks.on_train_begin()
    # BackupAndRestore sets `_initial_epoch` when it restores a backup.
    initial_epoch = getattr(model, "_initial_epoch", None) or initial_epoch
    logs = {}
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callbacks.on_epoch_begin(epoch)
        for step, batch in enumerate(train):
            callbacks.on_train_batch_begin(step)
            outputs = train_step(batch)
            first = {name: strategy.experimental_local_results(value)[0]
                     for name, value in outputs.items()}
            callbacks.on_train_batch_end(step, first)
            if model.stop_training:
                break
        logs = {name: float(value) for name, value in results().items()}
        if validation is not None:
            model.reset_metrics()
            for batch in validation:
                test_step(batch)
            logs.update({f"val_{name}": float(value) for name, value in results().items()})
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callbacks.on_train_end(logs)
    model._initial_epoch = None
    return model.history


def single_device_copy(model):
    """The trained model, outside the strategy: evaluated, plotted and saved on one device."""
    import keras

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        return keras.models.load_model(path)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(processes, timeout=30):
    """Interrupts the processes still running, then kills those that do not end."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def launch(argv, workers):
    """Runs `kerasdl` with `argv` as `workers` local processes of one multi-worker cluster.

    Worker 0 is the chief: its output (the run directory's path) and progress are this
    command's; the others write to log files, shown (their last line) only if they fail.

    Returns:
        0, or the exit status of the first worker that failed (the others are stopped).
    """
    addresses = [f"127.0.0.1:{_free_port()}" for _ in range(workers)]
    with tempfile.TemporaryDirectory(prefix="kerasdl-workers-") as logs:
        processes = []
        try:
            for index in range(workers):
                env = {**os.environ, "KERASDL_WORKER": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
                       "TF_CONFIG": json.dumps({"cluster": {"worker": addresses},
                                                "task": {"type": "worker", "index": index}})}
                env.setdefault("TF_NUM_INTEROP_THREADS", "1")  # the workers share the cores
                log = os.path.join(logs, f"worker{index}.log")
                with open(log, "w") if index else contextlib.nullcontext() as output:
                    processes.append(subprocess.Popen(
                        [sys.executable, "-m", "kerasdl", *argv], env=env,
                        stdout=output, stderr=output))
            while True:
                codes = [process.poll() for process in processes]
                failed = next((i for i, code in enumerate(codes) if code), None)
                if failed is not None or all(code == 0 for code in codes):
                    break
                time.sleep(0.2)
        except KeyboardInterrupt:
            _stop(processes, timeout=None)
            raise
        if failed is None:
            return 0
        _stop(processes)
        if failed > 0:  # the chief printed its own error
            with open(os.path.join(logs, f"worker{failed}.log")) as handle:
                lines = [line for line in handle.read().splitlines() if line.strip()]
            print(f"Error: worker {failed} of {workers} failed: "
                  f"{lines[-1] if lines else 'no output'}", file=sys.stderr)
        return codes[failed]
