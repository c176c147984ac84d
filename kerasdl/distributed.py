"""Training across processes and machines: MultiWorkerMirroredStrategy, driven by TF_CONFIG.

Keras 3's `model.fit` fails under `tf.distribute.MultiWorkerMirroredStrategy`
(keras-team/keras#20585: its per-replica reduction of the step's logs), so the
multi-worker path runs its own loop on tf.distribute: the dataset is distributed with
`strategy.experimental_distribute_dataset` (data in memory: every worker keeps every Nth
batch) or, for data read from files, each worker reads only its own share of the files
(`strategy.distribute_datasets_from_function`, `share_pipeline`); each step is
`strategy.run` of the model's own `train_step` (its loss, loss scaling, optimizer and
metrics, so the result is the `fit` of one machine), and the epoch's logs are read in
cross-replica context, where the metrics' variables are summed over every replica of
every worker. The callbacks are Keras's own (backups, history, TensorBoard, early
stopping, progress).
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
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
    with _bounded_wait_for_peers():
        return tf.distribute.MultiWorkerMirroredStrategy()


PEER_TIMEOUT_ENV = "KERASDL_PEER_TIMEOUT"
DEFAULT_PEER_TIMEOUT = 120.0


def peer_timeout():
    """Seconds to wait for the other workers (KERASDL_PEER_TIMEOUT, default 120).

    Raises:
        UsageError: for a value that is not a positive number.
    """
    text = os.environ.get(PEER_TIMEOUT_ENV)
    if not text:
        return DEFAULT_PEER_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UsageError(f"{PEER_TIMEOUT_ENV} must be a positive number of seconds. "
                         f"Received: {PEER_TIMEOUT_ENV}={text!r}")
    return value


def _unreachable_peers():
    spec, task = cluster()
    missing = []
    for kind in ("chief", "worker"):
        for index, address in enumerate(spec.get(kind, [])):
            if kind == task["type"] and index == int(task["index"]):
                continue
            host, _, port = address.rpartition(":")
            try:
                with socket.create_connection((host, int(port)), timeout=1.0):
                    pass
            except (OSError, ValueError):
                missing.append(f"{kind} {index} ({address})")
    return missing


_DONE = b"done"
_POLL = 0.2


def _pending(pid):
    """The signal numbers pending for the process `pid` (blocked and not yet delivered)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            lines = status.read().splitlines()
    except OSError:
        return set()
    bits = 0
    for line in lines:
        if line.startswith(("ShdPnd:", "SigPnd:")):
            bits |= int(line.split()[1], 16)
    return {number for number in range(1, 65) if bits >> (number - 1) & 1}


def _watch_peers(parent, timeout):
    """A small process that ends a worker stuck waiting for its cluster (see below)."""
    import select

    def say(text):
        missing = _unreachable_peers()
        print(f"Error: {text}; not reachable: "
              f"{', '.join(missing) or 'none (a worker started but did not join)'}.",
              file=sys.stderr, flush=True)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sys.stdin], [], [], _POLL)
        if ready:
            if os.read(sys.stdin.fileno(), 16).startswith(_DONE):
                return  # the wait ended: the worker goes on, or reports its own error
            # The worker died during the wait (SIGINT's default action, or a crash).
            say("stopped while waiting for the cluster in TF_CONFIG; nothing was trained "
                "or written")
            return
        if os.getppid() != parent:
            return
        if signal.SIGTERM in _pending(parent):
            # Blocked in the worker while it waits (TensorFlow's own handler would catch
            # it and go on waiting): it ends the worker as Ctrl-C does.
            say("stopped by SIGTERM while waiting for the cluster in TF_CONFIG; nothing was "
                "trained or written")
            os.kill(parent, signal.SIGINT)
            return
    if os.getppid() != parent:
        return
    missing = _unreachable_peers()
    print(f"Error: waited {timeout:g} s for the cluster in TF_CONFIG; not reachable: "
          f"{', '.join(missing) or 'none (a worker started but did not join)'}. Start them, "
          f"or set {PEER_TIMEOUT_ENV} to wait longer.", file=sys.stderr, flush=True)
    os.kill(parent, signal.SIGHUP)


class _bounded_wait_for_peers:
    """Bounds TensorFlow's wait for the cluster, which blocks in native code.

    While MultiWorkerMirroredStrategy connects to every worker, the main thread is in
    C++ holding the GIL: no Python code runs, in any thread, and TensorFlow installs its
    own SIGTERM handler (its preemption notifier, which only takes note). So for that
    time a watcher process does what the worker cannot:
    - SIGINT gets its default action: the worker ends at once (nothing is written yet;
      exit status "killed by SIGINT", 130 in a shell) and the watcher, seeing it gone
      before the wait ended, says so in one line;
    - SIGTERM is blocked in the worker, so it stays pending where TensorFlow's handler
      cannot take it; the watcher sees it pending (/proc), says so in one line and ends
      the worker with SIGINT, within a fraction of a second;
    - after `peer_timeout()` seconds the watcher names the workers it cannot reach and
      sends SIGHUP, whose handler is libc's `_exit` (a C function, called with the
      signal's number, 1): the exit status of a failure.
    When the wait ends, the handlers are restored and SIGTERM unblocked: one that came
    in the last fraction of a second is then handled as during training.
    """

    def __enter__(self):
        import ctypes
        import subprocess

        self.timeout = peer_timeout()
        self.previous = {}
        self.blocked = False
        if threading.current_thread() is threading.main_thread():
            self.previous = {sig: signal.signal(sig, signal.SIG_DFL)
                             for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
            libc = ctypes.CDLL(None)
            libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
            libc.signal(signal.SIGHUP, ctypes.cast(libc._exit, ctypes.c_void_p))
            # Threads TensorFlow starts during the wait inherit the mask.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            self.blocked = True
        self.watcher = subprocess.Popen(
            [sys.executable, "-c", "import sys; from kerasdl.distributed import _watch_peers; "
             "_watch_peers(int(sys.argv[1]), float(sys.argv[2]))", str(os.getpid()),
             str(self.timeout)], stdin=subprocess.PIPE)
        return self

    def __exit__(self, *exc):
        with contextlib.suppress(OSError):
            self.watcher.stdin.write(_DONE)
            self.watcher.stdin.close()
        self.watcher.wait()
        for sig, old in self.previous.items():
            signal.signal(sig, old)
        if self.blocked:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        return False


def import_tensorflow_with_sigterm_blocked():
    """Imports TensorFlow with SIGTERM blocked, so the threads it starts never take it.

    Threads inherit the signal mask of the thread that starts them. TensorFlow starts
    threads when it is imported; were SIGTERM open in them, the kernel could hand it
    to one while the main thread waits for the cluster, where TensorFlow's own handler
    would swallow it (`_bounded_wait_for_peers`). The main thread unblocks it again.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        import tensorflow  # noqa: F401
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


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


def share_pipeline(recipe, splits, hp, batch_size):
    """The recipe's training pipeline over this worker's own share of the training split.

    For `fit`'s `train_share`: a function of a `tf.distribute.InputContext` that returns
    the batches of worker `input_pipeline_id` of `num_input_pipelines`, batched per
    replica (`batch_size` is the global batch: its share per replica, rounded up when
    the replicas do not divide it). None when the data has no shares (data in memory,
    or a training split changed after loading: `Splits.worker_share`).
    """
    if not splits.shardable:
        return None

    def share(context):
        replicas = context.num_replicas_in_sync
        per_replica = -(-int(batch_size) // replicas)
        data = splits.worker_share(context.input_pipeline_id, context.num_input_pipelines)
        return recipe.make_pipeline(data, splits.spec, hp, training=True,
                                    batch_size=per_replica)

    return share


def _sharding(policy):
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = getattr(
        tf.data.experimental.AutoShardPolicy, policy)
    return options


def fit(model, train_data, validation_data=None, epochs=1, callbacks=(), verbose=2,
        class_weight=None, initial_epoch=0, train_share=None):
    """`model.fit` for a model built under a MultiWorkerMirroredStrategy.

    The batches of `train_data` are global batches, split over the replicas of every
    worker; every worker runs this with the same arguments, in lockstep.

    Args:
        train_share: a function of a `tf.distribute.InputContext` that returns this
            worker's own training batches, per replica (`share_pipeline`): each worker
            then reads only its share of the files
            (`strategy.distribute_datasets_from_function`, tf.data's auto-sharding
            off), and `train_data` is not read. None: every worker reads all of
            `train_data` and keeps every Nth batch (tf.data's DATA auto-sharding: data
            in memory). Validation batches are always auto-sharded that way: every
            worker reads them and the metrics, summed over the workers, count each
            example once.

    Returns:
        The `keras.callbacks.History` of the run.
    """
    import keras
    import tensorflow as tf

    strategy = model.distribute_strategy
    options = _sharding("DATA")
    steps = None
    if train_share is not None:
        def dataset_fn(context):
            nonlocal steps
            dataset = train_share(context)
            if class_weight:
                dataset = _with_class_weight(dataset, class_weight)
            steps = int(dataset.cardinality())
            return dataset.with_options(_sharding("OFF"))  # a share is sharded already

        train = strategy.distribute_datasets_from_function(dataset_fn)
    else:
        if class_weight:
            train_data = _with_class_weight(train_data, class_weight)
        train = strategy.experimental_distribute_dataset(train_data.with_options(options))
        steps = int(train_data.cardinality())
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

    callbacks = keras.callbacks.CallbackList(
        list(callbacks), add_history=True, add_progbar=verbose != 0, model=model,
        verbose=verbose, epochs=epochs, steps=steps if steps and steps > 0 else None)
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


def workers_role(workers, recipe, strategy=None, resume=None, output=None):
    """This process's part in `kerasdl train --workers N` (N > 1), checked before TensorFlow.

    Returns:
        "worker" for a process the launcher started (it trains with `--strategy
        multiworker`), "launcher" for the command a user ran with a recipe, None without
        one (the command then asks for it).

    Raises:
        UsageError: with `--resume`, another strategy, a recipe with its own `fit`, or an
            `--output` that is not new or empty.
    """
    from kerasdl import registry

    if resume:
        raise UsageError("`--resume` does not take `--workers`: a multi-worker run "
                         "cannot be resumed; train it again.")
    if strategy not in (None, "auto", "multiworker"):
        raise UsageError(f"`--workers {workers}` trains with `--strategy multiworker`. "
                         f"Received: --strategy {strategy}")
    if os.environ.get("KERASDL_WORKER"):  # a worker `--workers` started
        return "worker"
    if not recipe:
        return None
    if registry.contract_info(recipe)["has_fit"]:
        raise UsageError(f"`--workers` trains recipes that use `model.fit`; {recipe} "
                         "has its own `fit`. Train it without `--workers`.")
    if output:
        from kerasdl.runs import check_output

        check_output(output)
    return "launcher"


def worker_labels(workers):
    """How a one-line report names each local worker: `worker 1 of 2`, worker 0 the chief."""
    return {f"worker{index}": f"worker {index} of {workers}"
            + (" (the chief)" if index == 0 else "") for index in range(workers)}


def launch(argv, workers):
    """Runs `kerasdl` with `argv` as `workers` local processes of one multi-worker cluster.

    Worker 0 is the chief: its output (the run directory's path) and progress are this
    command's; the others write to log files in a temporary folder, removed at the end.
    The processes live and die with this one (`kerasdl.supervisor`).

    Returns:
        0, or 1 when a worker failed: the others are stopped and one line says which
        died and how.
    """
    from kerasdl import supervisor

    addresses = [f"127.0.0.1:{_free_port()}" for _ in range(workers)]
    logs = supervisor.temporary_folder("kerasdl-workers-")
    children = []
    for index in range(workers):
        env = {**os.environ, "KERASDL_WORKER": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
               "TF_CONFIG": json.dumps({"cluster": {"worker": addresses},
                                        "task": {"type": "worker", "index": index}})}
        env.setdefault("TF_NUM_INTEROP_THREADS", "1")  # the workers share the cores
        children.append(supervisor.Child(
            f"worker{index}", [sys.executable, "-m", "kerasdl", *argv], env=env,
            log=logs / f"worker{index}.log" if index else None, echo=not index,
            label=worker_labels(workers)[f"worker{index}"]))
    try:
        return supervisor.launch(children)
    finally:
        shutil.rmtree(logs, ignore_errors=True)
