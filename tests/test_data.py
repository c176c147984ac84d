"""Data sources through the CLI: CSV, image folders, TFDS; and predictions on them."""

import json

import numpy as np
import pandas as pd
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from kerasdl.data import tfds as tfds_source

CLASSES = ("bars", "dots")


def make_image_folder(root, per_class=30, size=(20, 24), seed=0):
    """Writes PNGs of two visually distinct classes, one sub-folder per class."""
    rng = np.random.default_rng(seed)
    for index, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 40, (*size, 3)).astype(np.uint8)
            if index == 0:
                pixels[::4] = 255
            else:
                pixels[::5, ::5] = 255
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def make_csv(path, rows=300, seed=0):
    """A regression CSV with a text column whose categories shift the target."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (rows, 2))
    colour = rng.choice(["red", "green", "blue"], rows)
    shift = pd.Series(colour).map({"red": 5.0, "green": -5.0, "blue": 0.0}).to_numpy()
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "colour": colour,
                          "price": 3 * x[:, 0] - 2 * x[:, 1] + shift})
    frame.to_csv(path, index=False)
    return path


def test_csv_with_categorical_column_trains_and_predicts(cli, tmp_path):
    data = make_csv(tmp_path / "houses.csv")
    result = cli("train", "regression", "--data", data, "--target", "price",
                 "--epochs", "60", "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["spec"]["categories"] == {"colour": ["blue", "green", "red"]}
    assert config["spec"]["feature_names"] == ["a", "b", "colour=blue", "colour=green",
                                               "colour=red"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"]["mae"] < 0.5  # the target spans about -10..10

    # predict: the same one-hot encoding, the target column ignored, one row per input.
    rows = pd.DataFrame({"a": [0.5, -0.5], "b": [0.0, 0.5], "colour": ["red", "green"]})
    rows.to_csv(tmp_path / "new.csv", index=False)
    predicted = cli("predict", tmp_path / "run", tmp_path / "new.csv")
    assert predicted.exit_code == 0, predicted.stderr
    frame = pd.read_csv(pd.io.common.StringIO(predicted.stdout))
    assert list(frame.columns) == ["id", "prediction"]
    np.testing.assert_allclose(frame["prediction"], [6.5, -7.5], atol=0.6)


def test_image_folder_trains_evaluates_and_predicts(cli, tmp_path):
    folder = make_image_folder(tmp_path / "photos")
    result = cli("train", "cnn", "--data", folder, "--epochs", "8", "--batch-size", "8", "--set", "conv_blocks=1",
                 "--set", "convs_per_block=1", "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["spec"]["class_names"] == list(CLASSES)
    assert config["spec"]["input_shape"] == [64, 64, 3]
    assert config["spec"]["num_examples"] == {"train": 36, "validation": 12, "test": 12}
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.9

    scores = cli("evaluate", tmp_path / "run", "--data", folder, "--json")
    assert scores.exit_code == 0, scores.stderr
    assert json.loads(scores.stdout)["examples"] == 60

    # A folder of new images, predicted into a CSV file.
    new = make_image_folder(tmp_path / "new", per_class=3, size=(30, 30), seed=1)
    out = tmp_path / "predictions.csv"
    predicted = cli("predict", tmp_path / "run", new, "--output", out)
    assert predicted.exit_code == 0, predicted.stderr
    frame = pd.read_csv(out)
    assert len(frame) == 6
    assert {"id", "prediction", "confidence", "probability_bars", "probability_dots"} <= set(frame)
    truth = [path.split("/")[-2] for path in frame["id"]]
    assert (frame["prediction"] == truth).mean() >= 5 / 6
    # One image file.
    single = cli("predict", tmp_path / "run", new / "dots" / "0.png")
    assert single.exit_code == 0
    assert pd.read_csv(pd.io.common.StringIO(single.stdout))["prediction"][0] in CLASSES


def test_tfds_source_through_mock_data(cli, tmp_path, monkeypatch):
    # tfds.testing.mock_data replaces the download with generated examples; the rest
    # (builder, splits, features, as_dataset) is the real TFDS code path.
    monkeypatch.setattr(tfds_source, "_online", lambda host=None: True)
    with tfds.testing.mock_data(num_examples=60):
        result = cli("train", "cnn", "--data", "tfds:mnist", "--data-dir", tmp_path / "tfds",
                     "--epochs", "1", "--set", "conv_blocks=1", "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["spec"]["source"] == "tfds:mnist"
    assert config["spec"]["input_shape"] == [28, 28, 1]
    assert config["spec"]["class_names"] == [str(i) for i in range(10)]


def test_tfds_images_of_varying_size_are_resized(tmp_path, monkeypatch):
    from kerasdl.data import load_data

    monkeypatch.setattr(tfds_source, "_online", lambda host=None: True)
    with tfds.testing.mock_data(num_examples=20):
        splits = load_data("tfds:tf_flowers", "image_classification",
                           {"data_dir": str(tmp_path), "image_size": [40, 48]})
    image, label = next(iter(splits.train))
    assert image.shape == (40, 48, 3) and splits.spec["num_classes"] == 5


def test_tfds_download_without_network_says_what_to_do(cli, tmp_path):
    # This machine has no network: the real check answers at once.
    if tfds_source._online():
        pytest.skip("network available; the offline message cannot be observed")
    result = cli("train", "cnn", "--data", "tfds:mnist", "--data-dir", tmp_path / "tfds")
    assert result.exit_code == 1
    assert "tfds build mnist --data_dir DIR" in result.stderr
    assert "--data-dir DIR" in result.stderr
    assert not (tmp_path / "runs").exists()
