"""vgg16 and mobilenet: transfer that beats training from scratch, two phases, weights."""

import io
import json

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import assert_one_line_error
from kerasdl import pretrained

# Small and fast on 2 CPU cores: MobileNetV2 (alpha 0.35) on 32x32 images.
SMALL = ["--image-size", "32", "--set", "augment=false"]
# Phase 1: the head for 4 epochs; phase 2: the whole base at a 10x lower rate.
FEW_SHOT = ["--data", "digits", "--classes", "5,6,7,8,9", "--train-examples", "100",
            "--epochs", "12", "--batch-size", "16", "--set", "head_epochs=4",
            "--set", "learning_rate=0.003", "--set", "unfreeze_layers=150",
            "--set", "fine_tune_learning_rate=0.0003", *SMALL]


def _test_accuracy(run):
    return json.loads((run / "metrics.json").read_text())["test"]["accuracy"]


def test_a_pretrained_base_beats_training_from_scratch(cli, tmp_path):
    # Task A: digits 0-4, the whole network from scratch; its base is exported.
    pretrain = cli("train", "mobilenet", "--data", "digits", "--classes", "0,1,2,3,4",
                   "--weights", "none", "--epochs", "10", "--batch-size", "16",
                   "--set", "learning_rate=0.003", *SMALL, "--output", "pretrain")
    assert pretrain.exit_code == 0, pretrain.stderr
    exported = cli("export", "pretrain", "--format", "base")
    assert exported.exit_code == 0, exported.stderr
    base_file = tmp_path / "pretrain" / "export" / "base.weights.h5"

    # Task B: digits 5-9, never seen, from 100 examples; same model, same epochs.
    transfer = cli("train", "mobilenet", *FEW_SHOT, "--weights", base_file, "--output", "transfer")
    scratch = cli("train", "mobilenet", *FEW_SHOT, "--weights", "none", "--output", "scratch")
    assert transfer.exit_code == 0 and scratch.exit_code == 0, transfer.stderr + scratch.stderr
    transferred, from_scratch = _test_accuracy(tmp_path / "transfer"), _test_accuracy(tmp_path / "scratch")
    print(f"transfer {transferred:.3f}, scratch {from_scratch:.3f}")
    # Measured (`kerasdl train`, seeds 1337, 1, 2): 0.761, 0.733, 0.689 against
    # 0.572, 0.606, 0.544.
    assert transferred >= from_scratch + 0.1, (transferred, from_scratch)

    # Two phases in one history: epochs 0..11, trainable parameters grow after epoch 4.
    history = pd.read_csv(tmp_path / "transfer" / "history.csv")
    assert list(history["epoch"]) == list(range(12))
    trainable = history["trainable_params"].to_numpy()
    assert len(set(trainable[:4])) == 1 and len(set(trainable[4:])) == 1
    assert trainable[4] > trainable[3]
    assert (tmp_path / "transfer" / "plots" / "confusion_matrix.png").exists()
    config = json.loads((tmp_path / "transfer" / "config.json").read_text())
    assert config["spec"]["weights"] == str(base_file)
    assert config["spec"]["class_names"] == ["5", "6", "7", "8", "9"]


def test_phase_two_starts_where_phase_one_ended_after_a_resume(cli, tmp_path):
    """A run killed in phase 1 resumes there, and phase 2 still starts at `head_epochs`.

    Keras leaves a restored start epoch on the model (`_initial_epoch`); unless it is
    cleared, phase 2's `fit` would start at the resumed epoch instead.
    """
    cli("train", "mobilenet", "--data", "digits", "--classes", "0,1", "--weights", "none",
        "--epochs", "1", *SMALL, "--output", "pre")
    cli("export", "pre", "--format", "base")
    args = ["train", "mobilenet", "--data", "digits", "--classes", "0,1", "--weights",
            tmp_path / "pre" / "export" / "base.weights.h5", "--epochs", "5",
            "--train-examples", "32",
            "--set", "head_epochs=3", *SMALL, "--output", "run"]
    original = keras.Model.fit
    calls = []

    def killed_in_epoch_two(self, *fit_args, **kwargs):
        calls.append(kwargs.get("initial_epoch", 0))
        if len(calls) == 1:  # phase 1 of the first attempt dies during its 2nd epoch
            kwargs["epochs"] = 1
            original(self, *fit_args, **kwargs)
            raise KeyboardInterrupt
        return original(self, *fit_args, **kwargs)

    keras.Model.fit = killed_in_epoch_two
    try:
        assert cli(*args).exit_code == 130  # interrupted
        resumed = cli("train", "--resume", tmp_path / "run")
    finally:
        keras.Model.fit = original
    assert resumed.exit_code == 0, resumed.stderr
    # Resumed: phase 1 restarts at epoch 1 (one done), phase 2 starts at 3.
    assert calls == [0, 1, 3]
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert list(history["epoch"]) == [0, 1, 2, 3, 4]
    assert history["trainable_params"].nunique() == 2
    assert not (tmp_path / "run" / "backup").exists()


def test_vgg16_trains_on_an_image_folder_and_predicts_class_names(cli, tmp_path):
    from kerasdl.data.sources import generate_shapes

    images, labels = generate_shapes(count=60, seed=3)
    for index, (image, label) in enumerate(zip(images, labels)):
        folder = tmp_path / "photos" / ["circle", "square", "triangle", "cross", "ring"][label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.astype(np.uint8)).save(folder / f"{index}.png")
    result = cli("train", "vgg16", "--data", "photos", "--weights", "none", "--epochs", "1",
                 "--image-size", "32", "--output", "run")
    assert result.exit_code == 0, result.stderr
    predicted = cli("predict", "run", tmp_path / "photos" / "ring")
    assert predicted.exit_code == 0, predicted.stderr
    names = set(pd.read_csv(io.StringIO(predicted.stdout))["prediction"])
    assert names <= {"circle", "square", "triangle", "cross", "ring"} and names


def test_imagenet_weights_offline_name_the_file_and_folder(cli, tmp_path, monkeypatch):
    from kerasdl.data.tfds import _online

    if _online():
        pytest.skip("this machine can download the weights: no offline message to check")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    result = cli("train", "mobilenet", "--epochs", "1", "--output", "run")
    assert_one_line_error(result, 1, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96"
                          "_no_top.h5", str(tmp_path / "keras_home" / "models"),
                          "--weights none")
    assert not (tmp_path / "run").exists()


def test_downloaded_weights_are_recorded_and_a_changed_file_refused(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    weights = folder / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    weights.write_bytes(b"first download")
    (folder / "unrelated.txt").write_text("not a weights file")
    pretrained.verify_downloads(folder)
    record = json.loads((folder / pretrained.RECORD).read_text())
    assert list(record) == [weights.name] and len(record[weights.name]) == 64
    pretrained.verify_downloads(folder)  # unchanged: accepted
    weights.write_bytes(b"replaced")
    with pytest.raises(pretrained.DataError, match="changed since kerasdl first used it"):
        pretrained.verify_downloads(folder)


@pytest.mark.parametrize("args, fragment", [
    (["--weights", "missing.h5"], "`weights` must be imagenet, none, or an existing .h5"),
    (["--classes", "3,11"], "`classes` must name at least 2 different classes"),
    (["--train-examples", "5000"], "`train_examples` must be at most the 900"),
])
def test_bad_transfer_settings(cli, tmp_path, args, fragment):
    result = cli("train", "mobilenet", "--epochs", "1", *args, "--output", "run")
    assert_one_line_error(result, 2 if "weights" in fragment else 1, fragment)
    assert not (tmp_path / "run").exists()
