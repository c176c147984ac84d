"""TFDS data sets follow the image folders' cache choice (issue 16).

The decoded size is estimated from the data set's info (examples x image shape), so the
choice is asserted against faked memory, as the folder tests do. `tfds.testing.mock_data`
replaces the download with generated examples; the info is the data set's own, with the
split sizes a prepared copy records (MNIST: 60,000 train and 10,000 test examples of
28x28x1), written where mock_data reads metadata; the rest of the TFDS code path is real.
"""

import contextlib
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow_datasets as tfds

from kerasdl import diskspace
from kerasdl import settings as run_settings
from kerasdl.data import images
from kerasdl.data import load_data
from kerasdl.data import tfds as tfds_source
from kerasdl.errors import UsageError

MNIST_EXAMPLES = 70_000  # train (60,000) and test (10,000): every split kerasdl uses
MNIST_BYTES = images.decoded_bytes(MNIST_EXAMPLES, (28, 28), 1)  # 210 MiB of float32


@pytest.fixture(autouse=True)
def online(monkeypatch):
    monkeypatch.setattr(tfds_source, "_online", lambda host=None: True)


@pytest.fixture
def tmpdir_for_caches(tmp_path, monkeypatch):
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _prepared_info(data_dir, name, split_sizes):
    """Writes `name`'s info with `split_sizes` (split -> examples) where a prepared copy
    keeps it, for `mock_data(data_dir=data_dir)` to read."""
    builder = tfds.builder(name, data_dir=str(data_dir))
    builder.info.set_splits(tfds.core.SplitDict([
        tfds.core.SplitInfo(name=split, shard_lengths=[count], num_bytes=0,
                            filename_template=None)
        for split, count in split_sizes.items()]))
    Path(builder.data_dir).mkdir(parents=True, exist_ok=True)
    builder.info.write_to_directory(builder.data_dir)
    return str(data_dir)


@contextlib.contextmanager
def _mock(tmp_path, name="mnist", split_sizes=None, num_examples=12):
    data_dir = _prepared_info(tmp_path / "tfds", name,
                              split_sizes or {"train": 60_000, "test": 10_000})
    with tfds.testing.mock_data(num_examples=num_examples, data_dir=data_dir):
        yield data_dir


def _load(tmp_path, **settings):
    with _mock(tmp_path) as data_dir:
        return load_data("tfds:mnist", "image_classification",
                         {"data_dir": data_dir, **settings})


def _pixels(dataset):
    return [(image, int(label)) for image, label in dataset.as_numpy_iterator()]


def test_the_estimate_counts_every_split_by_the_info(tmp_path):
    with _mock(tmp_path) as data_dir:
        info = tfds.builder("mnist", data_dir=data_dir).info
    splits = tfds_source._split_names(list(info.splits))
    assert splits == ("train[:85%]", "train[85%:]", "test")
    assert [tfds_source.num_examples(info, [split]) for split in splits] == [
        51_000, 9_000, 10_000]
    assert tfds_source.num_examples(info, splits) == MNIST_EXAMPLES
    assert tfds_source.num_examples(info, ["no_such_split"]) is None


def test_tfds_without_split_sizes_is_cached_in_memory_as_before(tmp_path, monkeypatch):
    # An info that does not give the split sizes (mock_data without metadata): no
    # estimate, so the recipes cache in memory as they always did.
    monkeypatch.setattr(run_settings, "available_memory", lambda: 512 * 2 ** 20)
    with tfds.testing.mock_data(num_examples=12):
        splits = load_data("tfds:mnist", "image_classification",
                           {"data_dir": str(tmp_path / "tfds")})
    assert splits.spec["cache"] == "memory"


def test_tfds_within_the_memory_budget_is_cached_in_memory(tmp_path, tmpdir_for_caches,
                                                           monkeypatch, capsys):
    monkeypatch.setattr(run_settings, "available_memory",
                        lambda: int(MNIST_BYTES / images.MEMORY_FRACTION))
    splits = _load(tmp_path)
    assert splits.spec["cache"] == "memory" and "shuffle_buffer" not in splits.spec
    assert not list(tmpdir_for_caches.glob("kerasdl-cache-*"))
    assert "memory budget" not in capsys.readouterr().err


def test_tfds_over_the_memory_budget_is_cached_in_a_file(tmp_path, tmpdir_for_caches,
                                                         monkeypatch, capsys):
    # 64 bytes less memory and the 70,000 images no longer fit the budget.
    monkeypatch.setattr(run_settings, "available_memory",
                        lambda: int(MNIST_BYTES / images.MEMORY_FRACTION) - 64)
    splits = _load(tmp_path, batch_size=4)
    assert splits.spec["cache"] == "file"
    assert splits.spec["shuffle_buffer"] == 64 * 2 ** 20 // (28 * 28 * 4)
    note = capsys.readouterr().err
    assert "70,000 decoded images" in note and "file cache" in note, note
    cached = _pixels(splits.train)
    written = [path.name for path in tmpdir_for_caches.rglob("train*")]
    assert any(name.endswith(".index") for name in written), written
    # The same images and labels as the memory path gives, as float32 in [0, 255].
    monkeypatch.setattr(run_settings, "available_memory", lambda: 2 ** 40)
    plain = _pixels(_load(tmp_path).train)
    assert len(cached) == len(plain) > 0
    for (image, label), (expected, expected_label) in zip(cached, plain):
        assert image.dtype == np.float32 and image.shape == (28, 28, 1)
        assert label == expected_label and np.array_equal(image, expected)


def test_tfds_too_large_for_memory_and_disk_is_not_cached(tmp_path, tmpdir_for_caches,
                                                           monkeypatch, capsys):
    monkeypatch.setattr(run_settings, "available_memory", lambda: 512 * 2 ** 20)
    monkeypatch.setattr(diskspace, "free_bytes", lambda folder: 1024)
    splits = _load(tmp_path)
    assert splits.spec["cache"] == "none"
    assert "decoded again each epoch" in capsys.readouterr().err
    assert len(_pixels(splits.train)) > 0
    assert not list(tmpdir_for_caches.glob("kerasdl-cache-*"))


def test_tfds_that_cannot_fit_in_memory_is_refused(tmp_path, monkeypatch):
    # 4 batches of 32 resized 2048x2048 colour images need 6 GiB; 1 GiB is available.
    monkeypatch.setattr(run_settings, "available_memory", lambda: 2 ** 30)
    with pytest.raises(UsageError, match="2048x2048 needs at least"):
        with _mock(tmp_path, "tf_flowers", {"train": 3_670}, num_examples=4) as data_dir:
            load_data("tfds:tf_flowers", "image_classification",
                      {"data_dir": data_dir, "image_size": [2048, 2048]})


def test_file_cached_tfds_trains_and_records_the_choice(cli, tmp_path, tmpdir_for_caches,
                                                        monkeypatch):
    monkeypatch.setattr(run_settings, "available_memory", lambda: 256 * 2 ** 20)
    with _mock(tmp_path, num_examples=40) as data_dir:
        result = cli("train", "cnn", "--data", "tfds:mnist", "--data-dir", data_dir,
                     "--epochs", "2", "--batch-size", "8", "--set", "conv_blocks=1",
                     "--set", "convs_per_block=1", "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    assert "file cache" in result.stderr and "memory budget" in result.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["spec"]["cache"] == "file"
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert len(history) == 2 and np.isfinite(history["loss"]).all()
