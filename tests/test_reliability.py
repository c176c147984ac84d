"""Crash-safe training, NaN losses, safe model loading, and safe copies."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pandas as pd
import pytest

from conftest import assert_one_line_error
from kerasdl import callbacks
from kerasdl import training
from kerasdl.errors import NonFiniteLoss


def _status(cli, root):
    listed = json.loads(cli("list", "--runs", root, "--json").stdout)
    return {os.path.basename(run["path"]): run["status"] for run in listed}


def test_run_killed_with_sigkill_resumes_from_its_last_epoch(cli, tmp_path):
    run = tmp_path / "runs" / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "kerasdl", "train", "regression", "--epochs", "200",
         "--output", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = run / "history.csv"
    deadline = time.time() + 120
    while not (history.exists() and len(history.read_text().splitlines()) > 60):
        assert process.poll() is None and time.time() < deadline
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = len(pd.read_csv(history))
    assert not (run / "model.keras").exists() and (run / "backup").is_dir()
    assert _status(cli, tmp_path / "runs") == {"killed": "killed"}

    resumed = cli("train", "--resume", run)
    assert resumed.exit_code == 0, resumed.stderr
    assert f"Epoch {done_before + 1}/200" in resumed.stderr
    assert "Epoch 1/200" not in resumed.stderr
    frame = pd.read_csv(history)
    # Every epoch once, in order (early stopping on validation may end it before 200).
    assert list(frame["epoch"]) == list(range(len(frame))) and len(frame) > done_before
    assert not (run / "backup").exists()
    config = json.loads((run / "config.json").read_text())
    assert config["status"] == "completed" and len(config["resumed"]) == 1

    # Within 5% of the same run uninterrupted: the data order after the restart differs.
    assert cli("train", "regression", "--epochs", "200", "--output", tmp_path / "runs" /
               "whole").exit_code == 0
    killed = json.loads((run / "metrics.json").read_text())["test"]["mae"]
    whole = json.loads((tmp_path / "runs" / "whole" / "metrics.json").read_text())["test"]["mae"]
    assert killed == pytest.approx(whole, rel=0.1)  # early stopping counts its patience afresh after a resume
    assert _status(cli, tmp_path / "runs") == {"killed": "completed", "whole": "completed"}

    again = cli("train", "--resume", run)
    assert_one_line_error(again, 1, "already completed; nothing to resume")
    mixed = cli("train", "cnn", "--resume", run)
    assert_one_line_error(mixed, 2, "`--resume RUN_DIR` takes no recipe or settings")


def test_nan_loss_stops_at_once_naming_the_epoch(cli, tmp_path):
    # Targets near 1e25: their squared error overflows float32 at the first batch.
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"a": rng.normal(size=90), "b": rng.normal(size=90),
                         "y": rng.normal(size=90) * 1e25})
    rows.to_csv(tmp_path / "huge.csv", index=False)
    result = cli("train", "regression", "--data", tmp_path / "huge.csv", "--target", "y",
                 "--set", "loss=mse", "--output", tmp_path / "run")
    line = assert_one_line_error(result, 1, "The loss became", "in epoch 1",
                                 "Try a lower learning rate", "No epoch completed")
    assert "nan" in line or "inf" in line
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["status"] == "failed" and "epoch 1" in config["error"]


def test_last_good_model_is_kept_when_the_loss_turns_nan(tmp_path):
    class Poison(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                kernel = self.model.layers[-1].kernel
                kernel.assign(np.full(kernel.shape, np.nan, "float32"))

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.ones((32, 3), "float32"), np.ones((32, 1), "float32")
    stops = [callbacks.StopOnNaN(),
             callbacks.AtomicBackupAndRestore(str(tmp_path / "backup")), Poison()]
    with pytest.raises(NonFiniteLoss, match="in epoch 3"):
        model.fit(x, y, epochs=5, callbacks=stops, verbose=0)
    message = training.keep_last_good(model, tmp_path)
    assert "last completed epoch" in message
    kept = keras.saving.load_model(tmp_path / "model.keras")
    assert np.isfinite(kept.predict(x, verbose=0)).all()


def _lambda_model(path):
    inputs = keras.Input((7,))
    outputs = keras.layers.Lambda(lambda t: t * 2.0)(keras.layers.Dense(1)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile("adam", "mse")
    model.save(path)


def test_models_that_carry_code_are_refused_unless_unsafe(cli, tmp_path):
    _lambda_model(tmp_path / "lambda.keras")
    rows = pd.DataFrame(np.ones((2, 7)), columns=[f"c{i}" for i in range(7)])
    rows.to_csv(tmp_path / "rows.csv", index=False)
    refused = cli("predict", tmp_path / "lambda.keras", tmp_path / "rows.csv")
    assert_one_line_error(refused, 1, "loading it would run Python code", "--unsafe")
    allowed = cli("predict", tmp_path / "lambda.keras", tmp_path / "rows.csv", "--unsafe")
    assert allowed.exit_code == 0, allowed.stderr
    assert len(pd.read_csv(pd.io.common.StringIO(allowed.stdout))) == 2


def test_truncated_legacy_and_remote_models(cli, tmp_path):
    assert cli("train", "regression", "--epochs", "1", "--output", tmp_path / "run").exit_code == 0
    data = (tmp_path / "run" / "model.keras").read_bytes()
    (tmp_path / "half.keras").write_bytes(data[: len(data) // 2])
    assert_one_line_error(cli("evaluate", tmp_path / "half.keras", "--data", "auto_mpg"), 1,
                          "is damaged", "half.keras")
    (tmp_path / "old.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    assert_one_line_error(cli("evaluate", tmp_path / "old.h5", "--data", "auto_mpg"), 1,
                          "Refusing legacy HDF5 model", "--unsafe")
    assert_one_line_error(cli("evaluate", "hf://someone/model", "--data", "auto_mpg"), 1,
                          "loaded from local files only")


def test_copy_refuses_symlinks_and_keeps_what_exists(cli, tmp_path):
    outside = tmp_path / "outside.py"
    outside.write_text("precious\n")
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "cnn.py").symlink_to(outside)
    result = cli("copy", "cnn", folder, "--force")
    assert_one_line_error(result, 1, "is a symbolic link")
    assert outside.read_text() == "precious\n"
    assert_one_line_error(cli("copy", "../cnn", folder / "x.py"), 2,
                          "copies a shipped recipe by name", "'../cnn' is a path")
    assert not (folder / "x.py").exists()


def test_an_unreadable_image_in_a_training_folder_is_named(cli, tmp_path):
    from test_data import make_image_folder

    folder = make_image_folder(tmp_path / "photos", per_class=4)
    (folder / "dots" / "broken.png").write_bytes(b"this is not a png")
    result = cli("train", "cnn", "--data", folder, "--epochs", "1")
    assert_one_line_error(result, 1, "cannot be decoded", "broken.png", "--skip-bad-files")
    assert not (tmp_path / "runs").exists()


def test_images_of_mixed_sizes_are_resized(cli, tmp_path):
    from test_data import make_image_folder

    folder = make_image_folder(tmp_path / "photos", per_class=10, size=(20, 24))
    make_image_folder(tmp_path / "more", per_class=10, size=(50, 33), seed=3)
    for name in ("bars", "dots"):
        for index, path in enumerate(sorted((tmp_path / "more" / name).iterdir())):
            path.rename(folder / name / f"big{index}.png")
    result = cli("train", "cnn", "--data", folder, "--epochs", "1", "--set", "conv_blocks=1",
                 "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr


# Multi-process training under faults (issue 20). Every process a test starts is ended by
# PID in a `finally`; every wait is bounded.

from processes import alive  # noqa: E402
from processes import descendants  # noqa: E402
from processes import end_all  # noqa: E402
from processes import error_lines  # noqa: E402
from processes import fill  # noqa: E402
from processes import small_disk  # noqa: E402,F401 (a fixture)
from processes import start_kerasdl  # noqa: E402
from processes import wait_until  # noqa: E402


def _start_workers(tmp_path):
    """`train --workers 2` for long enough to be killed; its temporary folders in tmp_path."""
    (tmp_path / "tmp").mkdir()
    return start_kerasdl("train", "regression", "--workers", "2", "--epochs", "3000",
                         "--output", tmp_path / "run", env={"TMPDIR": str(tmp_path / "tmp")})


def _training(tmp_path, launcher):
    history = tmp_path / "run" / "history.csv"
    wait_until(lambda: history.exists() and len(history.read_text().splitlines()) > 2, 240,
               "two epochs trained", launcher)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_killed_train_workers_launcher_leaves_no_process_or_folder(tmp_path, how):
    launcher = _start_workers(tmp_path)
    children = []
    try:
        _training(tmp_path, launcher)
        children = descendants(launcher.pid)
        assert len(children) == 2
        assert [p.name for p in (tmp_path / "tmp").iterdir()
                if p.name.startswith("kerasdl-workers-")]
        launcher.send_signal(how)
        launcher.wait(timeout=30)
        wait_until(lambda: not any(alive(p) for p in children), 15,
                   "the workers ending with their launcher")
        if how == signal.SIGTERM:
            assert launcher.returncode == 130
            assert "SIGTERM" in error_lines(launcher.stderr.read())[0]
            config = json.loads((tmp_path / "run" / "config.json").read_text())
            assert config["status"] == "interrupted"  # the chief was stopped, not left
        else:  # the next launch removes the folder a SIGKILLed launcher could not
            from kerasdl import supervisor

            os.environ["TMPDIR"], old = str(tmp_path / "tmp"), os.environ.get("TMPDIR")
            try:
                import tempfile

                tempfile.tempdir = None
                supervisor.temporary_folder("kerasdl-workers-").rmdir()
            finally:
                os.environ.pop("TMPDIR") if old is None else os.environ.update(TMPDIR=old)
                tempfile.tempdir = None
        assert not [p for p in (tmp_path / "tmp").iterdir()
                    if p.name.startswith("kerasdl-workers-")]
    finally:
        end_all([launcher.pid, *children])
        launcher.wait()


def test_a_killed_worker_is_named_in_one_line(tmp_path):
    launcher = _start_workers(tmp_path)
    children = []
    try:
        _training(tmp_path, launcher)
        children = descendants(launcher.pid)
        worker_1 = [p for p in children if b'"index": 1' in
                    open(f"/proc/{p}/environ", "rb").read()][0]
        os.kill(worker_1, signal.SIGKILL)
        _, stderr = launcher.communicate(timeout=60)
        lines = error_lines(stderr)
        assert launcher.returncode == 1 and len(lines) == 1, stderr[-2000:]
        assert lines[0].startswith("Error: worker 1 of 2 was killed by SIGKILL")
        wait_until(lambda: not any(alive(p) for p in children), 15, "the chief stopped")
    finally:
        end_all([launcher.pid, *children])
        launcher.wait()


def test_a_run_folder_in_use_is_refused_naming_its_process(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from kerasdl import "
                               "locks; locks.acquire(sys.argv[1], 'run'); print('held', "
                               "flush=True); time.sleep(300)", str(run)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = subprocess.run([sys.executable, "-m", "kerasdl", "train", "regression",
                                  "--epochs", "1", "--output", str(run)],
                                 capture_output=True, text=True, timeout=120)
        line = assert_one_line_error(refused, 1, f"in use by process {holder.pid} on host")
        assert "run" in line and not (run / "config.json").exists()
    finally:
        end_all([holder.pid])
        holder.wait()


def _lonely_worker(tmp_path, timeout):
    from kerasdl.distributed import _free_port

    ports = [_free_port(), _free_port()]
    config = {"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
              "task": {"type": "worker", "index": 0}}
    process = start_kerasdl("train", "regression", "--epochs", "1", "--strategy",
                            "multiworker", "--output", tmp_path / "run",
                            env={"TF_CONFIG": json.dumps(config),
                                 "KERASDL_PEER_TIMEOUT": str(timeout)})
    return process, ports


def test_multiworker_waits_a_bounded_time_for_a_missing_worker_and_names_it(tmp_path):
    process, ports = _lonely_worker(tmp_path, 5)
    try:
        _, stderr = process.communicate(timeout=120)
        lines = error_lines(stderr)
        assert process.returncode == 1 and len(lines) == 1, stderr[-2000:]
        assert f"not reachable: worker 1 (127.0.0.1:{ports[1]})" in lines[0]
        assert "KERASDL_PEER_TIMEOUT" in lines[0]
    finally:
        end_all([process.pid])
        process.wait()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_multiworker_waiting_for_peers_stops_at_once_on_sigterm_or_ctrl_c(tmp_path, how):
    # TensorFlow waits in native code, holding the GIL, with its own SIGTERM handler
    # (its preemption notifier): a watcher process ends the worker (see distributed.py).
    process, ports = _lonely_worker(tmp_path, 600)
    try:
        import socket

        def listening():  # its own server is up: it waits for worker 1 now
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", ports[0])) == 0

        wait_until(listening, 120, "the worker waiting for its peer", process)
        time.sleep(1.0)
        sent = time.monotonic()
        process.send_signal(how)
        _, stderr = process.communicate(timeout=15)
        assert time.monotonic() - sent < 5, stderr[-2000:]
        assert process.returncode == -signal.SIGINT, stderr[-2000:]  # 130 in a shell
        lines = error_lines(stderr)
        assert len(lines) == 1 and "Traceback" not in stderr, stderr[-2000:]
        assert "while waiting for the cluster in TF_CONFIG" in lines[0]
        assert f"not reachable: worker 1 (127.0.0.1:{ports[1]})" in lines[0]
        if how == signal.SIGTERM:
            assert "stopped by SIGTERM" in lines[0]
        assert not (tmp_path / "run").exists()  # nothing was written
    finally:
        end_all([process.pid])
        process.wait()


def test_a_full_disk_while_training_fails_the_run_in_one_line(small_disk):
    run = small_disk / "run"
    fill(small_disk, leave=400_000)  # less than the 1 MB kerasdl keeps free when saving
    full = subprocess.run([sys.executable, "-m", "kerasdl", "train", "regression", "--epochs",
                           "3", "--output", str(run)], capture_output=True, text=True,
                          timeout=300)
    line = assert_one_line_error(full, 1, "space", str(run), "MB needed")
    assert "free" in line
    config = json.loads((run / "config.json").read_text())
    assert config["status"] == "failed" and "space" in config["error"]
    (small_disk / "filler").unlink()
    resumed = subprocess.run([sys.executable, "-m", "kerasdl", "train", "--resume", str(run)],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run / "config.json").read_text())["status"] == "completed"


def test_a_disk_that_fills_during_a_save_fails_the_run_in_one_line(small_disk):
    from processes import run_without_space_check

    run = small_disk / "run"
    fill(small_disk, leave=40_000)  # config.json fits; the first epoch's backup does not
    full = run_without_space_check("train", "regression", "--epochs", "3", "--output", run)
    line = assert_one_line_error(full, 1, "No space left", str(run), "MB needed")
    assert "free" in line and "Traceback" not in full.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["status"] == "failed" and "No space left" in config["error"]
    assert not list((run / "backup").glob("*partial*"))  # nothing half-written is left
    (small_disk / "filler").unlink()
    resumed = subprocess.run([sys.executable, "-m", "kerasdl", "train", "--resume", str(run)],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run / "config.json").read_text())["status"] == "completed"
    assert len(pd.read_csv(run / "history.csv")) == 3
    assert keras.saving.load_model(run / "model.keras").count_params() > 0
