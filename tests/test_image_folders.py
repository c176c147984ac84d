"""Image folders as users have them: nested sub-folders, broken images, stray files."""

import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kerasdl.data import images as image_files
from kerasdl.data import load_data
from tests.conftest import assert_one_line_error

# Class 0 images are bright, class 1 dark: an example's class can be read off its pixels.
BRIGHTNESS = {"bright": 220, "dark": 25}


def _png(path, level, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(-20, 20, (12, 12, 3)) + level
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path)


def make_nested_folder(root, per_class=12):
    """Images of each class spread over the class folder and sub-folders 1 and 2 levels deep."""
    seed = 0
    for name, level in BRIGHTNESS.items():
        for i in range(per_class):
            other = "dark" if name == "bright" else "bright"
            depth = ("", "sub", "sub/deeper", other)[i % 4]
            # The same sub-folder names under both classes, even another class's name: the
            # immediate parent says nothing.
            _png(root / name / depth / f"{name}{i}.png", level, seed)
            seed += 1
    return root


def test_images_in_sub_folders_take_the_class_of_their_top_level_folder(tmp_path):
    folder = make_nested_folder(tmp_path / "photos")
    splits = load_data(str(folder), "image_classification", {"image_size": [12, 12]})
    assert splits.spec["class_names"] == ["bright", "dark"]
    assert sum(splits.spec["num_examples"].values()) == 24
    seen = 0
    for dataset in (splits.train, splits.validation, splits.test):
        for image, label in dataset.as_numpy_iterator():
            expected = 0 if image.mean() > 120 else 1
            assert label == expected
            seen += 1
    assert seen == 24


def test_nested_folder_trains_evaluates_and_predicts_every_image(cli, tmp_path):
    folder = make_nested_folder(tmp_path / "photos")
    result = cli("train", "cnn", "--data", folder, "--epochs", "1", "--batch-size", "8",
                 "--image-size", "12", "--set", "conv_blocks=1", "--set", "convs_per_block=1",
                 "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    scores = cli("evaluate", tmp_path / "run", "--data", folder, "--json")
    assert scores.exit_code == 0, scores.stderr
    assert json.loads(scores.stdout)["examples"] == 24
    predicted = cli("predict", tmp_path / "run", folder)
    assert predicted.exit_code == 0, predicted.stderr
    frame = pd.read_csv(io.StringIO(predicted.stdout))
    expected = sorted(str(path) for path in folder.rglob("*.png"))
    assert sorted(frame["id"]) == expected
    assert set(frame["prediction"]) <= set(BRIGHTNESS)


def _broken_folder(root):
    """8 good images per class, 3 undecodable image files and 3 files that are not images."""
    for name, level in BRIGHTNESS.items():
        for i in range(8):
            _png(root / name / f"{i}.png", level, i)
    buffer = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(buffer, format="JPEG")
    bad = {"bright/truncated.jpg": buffer.getvalue()[: len(buffer.getvalue()) // 2],
           "dark/noise.png": np.random.default_rng(0).bytes(500),
           "dark/sub/empty.png": b""}
    for name, content in bad.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    (root / "bright" / "notes.txt").write_text("taken in May\n")
    (root / "dark" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "dark" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    return root, [str(root / name) for name in bad]


def test_undecodable_images_are_all_named_before_training(cli, tmp_path):
    folder, bad = _broken_folder(tmp_path / "photos")
    result = cli("train", "cnn", "--data", folder, "--epochs", "1", "--image-size", "12",
                 "--set", "conv_blocks=1", "--output", tmp_path / "run")
    line = assert_one_line_error(result, 1, "3 of 19 image file(s)", "--skip-bad-files", *bad)
    assert "notes.txt" not in line
    assert not (tmp_path / "run").exists()


def test_skip_bad_files_trains_evaluates_and_predicts_on_the_rest(cli, tmp_path):
    folder, bad = _broken_folder(tmp_path / "photos")
    result = cli("train", "cnn", "--data", folder, "--epochs", "1", "--image-size", "12",
                 "--batch-size", "4", "--set", "conv_blocks=1", "--skip-bad-files",
                 "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    assert "Skipped 3 undecodable image file(s) of 19" in result.stderr
    assert "Ignored 3 non-image file(s)" in result.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert sum(config["spec"]["num_examples"].values()) == 16

    refused = cli("evaluate", tmp_path / "run", "--data", folder, "--skip-bad-files", "--json")
    assert refused.exit_code == 0, refused.stderr
    assert json.loads(refused.stdout)["examples"] == 16

    assert_one_line_error(cli("predict", tmp_path / "run", folder), 1, *bad)
    predicted = cli("predict", tmp_path / "run", folder, "--skip-bad-files")
    assert predicted.exit_code == 0, predicted.stderr
    frame = pd.read_csv(io.StringIO(predicted.stdout))
    assert len(frame) == 16 and not set(bad) & set(frame["id"])
    assert "Skipped 3" in predicted.stderr


def test_large_folders_show_a_progress_bar_on_stderr(tmp_path, monkeypatch, capsys):
    folder, bad = _broken_folder(tmp_path / "photos")
    monkeypatch.setattr(image_files, "PROGRESS_FROM", 5)
    paths = sorted(str(path) for path in folder.rglob("*.*g"))
    found = image_files.find_bad_images(paths)
    assert sorted(path for path, _ in found) == sorted(bad)
    captured = capsys.readouterr()
    assert "Checking images" in captured.err and captured.out == ""


@pytest.mark.parametrize("command", [
    ["tune", "cnn", "--max-trials", "1", "--no-retrain", "--output", "search"],
    ["compare", "cnn", "--vary", "conv_blocks=1", "--output", "comparison"],
    ["bench", "cnn", "--steps", "1", "--repeats", "1"],
])
def test_every_command_that_reads_a_folder_checks_it(cli, tmp_path, command):
    folder, bad = _broken_folder(tmp_path / "photos")
    options = ["--data", folder, "--batch-size", "4"]
    if command[0] != "bench":
        options += ["--epochs", "1", "--image-size", "12", "--set", "conv_blocks=1"]
    assert_one_line_error(cli(*command, *options), 1, "3 of 19 image file(s)", *bad)
    result = cli(*command, *options, "--skip-bad-files")
    assert result.exit_code == 0, result.stderr
    assert "Skipped 3 undecodable image file(s) of 19" in result.stderr
