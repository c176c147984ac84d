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


@pytest.mark.parametrize("split, length", [("train", 1001), ("train[:85%]", 60000),
                                           ("train[70%:85%]", 1001)])
def test_tfds_worker_slices_are_contiguous_equal_and_cover_the_split(split, length):
    """Each multi-worker training worker reads its own absolute slice of the TFDS split."""
    import re
    import types

    infos = {"train": types.SimpleNamespace(num_examples=length)}
    (whole,) = tfds.core.ReadInstruction.from_spec(split).to_absolute(infos)
    begin, end = whole.from_ or 0, length if whole.to is None else whole.to
    for workers in (1, 2, 3):
        slices = [tfds_source.worker_split(split, infos, index, workers)
                  for index in range(workers)]
        bounds = [tuple(map(int, re.fullmatch(r"train\[(\d+):(\d+)\]", text).groups()))
                  for text, _, _ in slices]
        assert bounds[0][0] == begin and bounds[-1][1] == end
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        sizes = {stop - start + repeat for (start, stop), (_, count, repeat)
                 in zip(bounds, slices) if stop - start == count}
        assert sizes == {-(-(end - begin) // workers)}


class TinyImages(tfds.core.GeneratorBasedBuilder):
    """A TFDS data set built here, offline: 8x8 images whose pixels hold their number."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self, supervised_keys=("image", "label"),
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(8, 8, 3)),
                "label": tfds.features.ClassLabel(names=["even", "odd"])}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 41),
                "test": self._generate_examples(100, 110)}

    def _generate_examples(self, first, stop):
        for number in range(first, stop):
            yield number, {"image": np.full((8, 8, 3), number, np.uint8), "label": number % 2}


def test_tfds_workers_read_disjoint_equal_slices_of_the_training_split(tmp_path):
    from kerasdl.data import load_data

    TinyImages(data_dir=str(tmp_path)).download_and_prepare()  # `tfds build`, offline
    splits = load_data("tfds:tiny_images", "image_classification", {"data_dir": str(tmp_path)})
    train = sorted(int(image[0, 0, 0]) for image, _ in splits.train.as_numpy_iterator())
    assert len(train) == 35 and splits.shardable  # train[:85%] of 41
    shares = [[int(image[0, 0, 0]) for image, _ in splits.worker_share(index, 2)
               .as_numpy_iterator()] for index in range(2)]
    assert [len(share) for share in shares] == [18, 18]
    assert not set(shares[0]) & set(shares[1])
    assert sorted(set(shares[0]) | set(shares[1])) == train
    assert shares[1][-1] == shares[1][0]  # the shorter share reads its first again
