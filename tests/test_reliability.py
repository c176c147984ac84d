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
from kerasdl import training


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
    assert list(frame["epoch"]) == list(range(200))
    assert not (run / "backup").exists()
    config = json.loads((run / "config.json").read_text())
    assert config["status"] == "completed" and len(config["resumed"]) == 1

    # Within 5% of the same run uninterrupted: the data order after the restart differs.
    assert cli("train", "regression", "--epochs", "200", "--output", tmp_path / "runs" /
               "whole").exit_code == 0
    killed = json.loads((run / "metrics.json").read_text())["test"]["mae"]
    whole = json.loads((tmp_path / "runs" / "whole" / "metrics.json").read_text())["test"]["mae"]
    assert killed == pytest.approx(whole, rel=0.05)
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
    callbacks = [training.StopOnNaN(),
                 training.AtomicBackupAndRestore(str(tmp_path / "backup")), Poison()]
    with pytest.raises(training.NonFiniteLoss, match="in epoch 3"):
        model.fit(x, y, epochs=5, callbacks=callbacks, verbose=0)
    message = training._keep_last_good(model, tmp_path)
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
    assert_one_line_error(cli("copy", "../cnn", folder / "x.py"), 2, "Unknown recipe: '../cnn'")


def test_an_unreadable_image_in_a_training_folder_is_named(cli, tmp_path):
    from test_data import make_image_folder

    folder = make_image_folder(tmp_path / "photos", per_class=4)
    (folder / "dots" / "broken.png").write_bytes(b"this is not a png")
    result = cli("train", "cnn", "--data", folder, "--epochs", "1")
    assert_one_line_error(result, 1, "Not a readable image", "broken.png")
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
