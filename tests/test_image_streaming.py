"""Image folders stream from disk: the cache choice, the memory refusal, streamed predict."""

import io
import json
import tempfile

import keras_tuner
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kerasdl import diskspace
from kerasdl import settings as run_settings
from kerasdl.data import images as image_files
from kerasdl.data import load_data
from kerasdl.registry import load_recipe
from tests.conftest import assert_one_line_error

LEVELS = {"bright": 220, "dark": 25}


def _folder(root, per_class=12, size=12):
    for name, level in LEVELS.items():
        for i in range(per_class):
            path = root / name / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            pixels = np.random.default_rng(i).integers(-20, 20, (size, size, 3)) + level
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path)
    return root


def _repaint(root, level):
    """Overwrites every image of the folder with flat pixels of `level`."""
    for path in root.rglob("*.png"):
        Image.fromarray(np.full((12, 12, 3), level, np.uint8)).save(path)


@pytest.fixture
def tmpdir_for_caches(tmp_path, monkeypatch):
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _means(dataset):
    return sorted(float(image.mean()) for image, _ in dataset.as_numpy_iterator())


def test_small_folder_is_cached_in_memory(tmp_path, tmpdir_for_caches):
    splits = load_data(str(_folder(tmp_path / "photos")), "image_classification",
                       {"image_size": [12, 12]})
    assert splits.spec["cache"] == "memory"
    assert not list(tmpdir_for_caches.glob("kerasdl-cache-*"))  # no file cache


def test_folder_over_the_memory_budget_is_cached_in_a_file(tmp_path, tmpdir_for_caches,
                                                          monkeypatch):
    # 24 images of 12x12x3 take 41 KiB as float32: over 1/32 of 512 KiB (16 KiB); four
    # batches and the shuffle buffer fit in 512 KiB.
    monkeypatch.setattr(run_settings, "available_memory", lambda: 512 * 1024)
    folder = _folder(tmp_path / "photos")
    splits = load_data(str(folder), "image_classification", {"image_size": [12, 12],
                                                              "batch_size": 4})
    assert splits.spec["cache"] == "file"
    # The recipes' shuffle buffers hold 64 MiB of float32 images, not the recipe's 4096.
    assert splits.spec["shuffle_buffer"] == 64 * 2 ** 20 // (12 * 12 * 3 * 4)
    train = load_recipe("cnn").make_pipeline(
        splits.train, {**splits.spec, "shuffle_buffer": 3}, keras_tuner.HyperParameters(),
        training=True, batch_size=1)
    assert len(list(train)) == splits.spec["num_examples"]["train"]
    first = _means(splits.train)
    labels = [int(label) for _, label in splits.train.as_numpy_iterator()]
    assert labels and all(
        (mean > 120) == (label == 0) for mean, label in
        zip([float(i.mean()) for i, _ in splits.train.as_numpy_iterator()], labels))
    written = [path.name for path in tmpdir_for_caches.rglob("train*")]
    assert any(name.endswith(".index") for name in written), written
    # Later passes read the cache, not the files.
    _repaint(folder, 128)
    assert _means(splits.train) == first


def test_folder_too_large_for_memory_and_disk_is_decoded_each_pass(tmp_path, tmpdir_for_caches,
                                                                  monkeypatch):
    monkeypatch.setattr(run_settings, "available_memory", lambda: 512 * 1024)
    monkeypatch.setattr(diskspace, "free_bytes", lambda folder: 1024)
    folder = _folder(tmp_path / "photos")
    splits = load_data(str(folder), "image_classification", {"image_size": [12, 12]})
    assert splits.spec["cache"] == "none"
    assert _means(splits.train) != [128.0] * len(_means(splits.train))
    _repaint(folder, 128)
    assert _means(splits.train) == [128.0] * splits.spec["num_examples"]["train"]
    assert not list(tmpdir_for_caches.glob("kerasdl-cache-*"))


def test_file_cached_folder_trains_evaluates_and_is_noted(cli, tmp_path, tmpdir_for_caches,
                                                         monkeypatch):
    monkeypatch.setattr(run_settings, "available_memory", lambda: 512 * 1024)
    folder = _folder(tmp_path / "photos")
    result = cli("train", "cnn", "--data", folder, "--epochs", "2", "--batch-size", "8",
                 "--image-size", "12", "--set", "conv_blocks=1", "--set", "convs_per_block=1",
                 "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    assert "file cache" in result.stderr and "memory budget" in result.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["spec"]["cache"] == "file"
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert len(history) == 2 and np.isfinite(history["loss"]).all()
    # Evaluating other data with plenty of memory: that data's own choice.
    monkeypatch.setattr(run_settings, "available_memory", lambda: 2 ** 34)
    scores = cli("evaluate", tmp_path / "run", "--data", folder, "--json")
    assert scores.exit_code == 0, scores.stderr
    assert json.loads(scores.stdout)["examples"] == 24


def test_image_size_that_cannot_fit_is_refused_before_the_files_are_checked(cli, tmp_path):
    folder = _folder(tmp_path / "photos", per_class=4)
    # An undecodable file: the decode check would name it; the memory refusal comes first.
    (folder / "dark" / "broken.png").write_bytes(b"not a png")
    result = cli("train", "cnn", "--data", folder, "--epochs", "1", "--image-size", "8192")
    line = assert_one_line_error(result, 2, "8192x8192 needs at least", "is available",
                                 "--image-size")
    assert "broken.png" not in result.stderr
    assert "GiB" in line


def test_predict_streams_batches_in_file_order(tmp_path, cli):
    folder = _folder(tmp_path / "photos", per_class=10)
    trained = cli("train", "cnn", "--data", folder, "--epochs", "1", "--batch-size", "8",
                  "--image-size", "12", "--set", "conv_blocks=1", "--set", "convs_per_block=1",
                  "--output", tmp_path / "run")
    assert trained.exit_code == 0, trained.stderr
    from kerasdl.evaluation import load_run
    from kerasdl.evaluation import predict_chunks

    chunks = list(predict_chunks(tmp_path / "run", folder, batch_size=6))
    assert [len(chunk) for chunk in chunks] == [6, 6, 6, 2]
    frame = pd.concat(chunks, ignore_index=True)
    paths, stacked = image_files.load_images(folder, (12, 12), 3)
    assert list(frame["id"]) == paths == sorted(str(p) for p in folder.rglob("*.png"))
    model = load_run(tmp_path / "run")[0]
    expected = np.asarray(model.predict(stacked, verbose=0))
    np.testing.assert_allclose(frame[["probability_bright", "probability_dark"]].to_numpy(),
                               expected, rtol=1e-4, atol=1e-5)
    # The CLI writes every row under one header, to stdout and to --output.
    printed = cli("predict", tmp_path / "run", folder)
    assert printed.exit_code == 0, printed.stderr
    written = cli("predict", tmp_path / "run", folder, "--output", tmp_path / "out.csv")
    assert written.exit_code == 0, written.stderr
    for text in (printed.stdout, (tmp_path / "out.csv").read_text()):
        rows = pd.read_csv(io.StringIO(text))
        assert list(rows["id"]) == paths
        assert text.count("probability_bright") == 1


def test_predict_failure_leaves_no_output_file(tmp_path, cli, monkeypatch):
    folder = _folder(tmp_path / "photos", per_class=20)  # 40 images: two batches of 32
    trained = cli("train", "cnn", "--data", folder, "--epochs", "1", "--batch-size", "8",
                  "--image-size", "12", "--set", "conv_blocks=1", "--set", "convs_per_block=1",
                  "--output", tmp_path / "run")
    assert trained.exit_code == 0, trained.stderr
    from kerasdl import evaluation
    from kerasdl.errors import DataError

    real = evaluation._output_frame

    def fail_on_second(ids, *args, calls=[], **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise DataError("disk went away")
        return real(ids, *args, **kwargs)

    monkeypatch.setattr(evaluation, "_output_frame", fail_on_second)
    result = cli("predict", tmp_path / "run", folder, "--output", tmp_path / "new.csv")
    assert_one_line_error(result, 1, "disk went away")
    assert not (tmp_path / "new.csv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".new-")]


def test_large_folders_are_counted_on_stderr(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(image_files, "PROGRESS_FROM", 10)
    folder = _folder(tmp_path / "photos", per_class=6)
    splits_stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", splits_stderr)
    load_data(str(folder), "image_classification", {"image_size": [12, 12]})
    assert "Found 12 image file(s) in 2 classes" in splits_stderr.getvalue()


def test_few_shot_draw_on_a_file_cached_folder_keeps_the_same_examples(tmp_path,
                                                                       tmpdir_for_caches,
                                                                       monkeypatch):
    monkeypatch.setattr(run_settings, "available_memory", lambda: 512 * 1024)
    folder = _folder(tmp_path / "photos")
    splits = load_data(str(folder), "image_classification",
                       {"image_size": [12, 12], "train_examples": 5})
    assert splits.spec["cache"] == "file"
    first, second = _means(splits.train), _means(splits.train)
    assert len(first) == 5 and first == second
    everything = _means(load_data(str(folder), "image_classification",
                                  {"image_size": [12, 12]}).train)
    assert set(first) <= set(everything)
