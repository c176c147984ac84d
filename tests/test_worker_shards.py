"""`train --workers 2` on data read from files: each worker reads only its own share.

Each worker's training pipeline records what it read (`KERASDL_SHARD_RECORD`): the
files it decoded, the CSV rows it parsed. The two shares must be disjoint, equal in
size and together the whole training split, and the chief's run must be complete.
"""

import json

import numpy as np
from PIL import Image

from conftest import run_kerasdl
from kerasdl.data import images as image_files
from kerasdl.data import streaming
from kerasdl.data.splits import split_indices


def _records(folder):
    return [(folder / f"worker{index}.txt").read_text().split() for index in (0, 1)]


def _assert_shares(records, expected):
    first, second = records
    assert len(first) == len(second) == -(-len(expected) // 2)
    assert not set(first) & set(second)
    assert set(first) | set(second) == set(expected)
    # A repeat only fills an odd count: one example, of the worker's own.
    assert len(first) + len(second) - len(expected) == len(expected) % 2


def _assert_completed(run):
    config = json.loads((run / "config.json").read_text())
    assert config["status"] == "completed"
    assert config["accelerator"]["workers"] == 2
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_examples"] == config["spec"]["num_examples"]
    history = (run / "history.csv").read_text().splitlines()
    assert "val_loss" in history[0] and len(history) == 2
    return config, metrics


def test_two_workers_decode_disjoint_equal_halves_of_an_image_folder(tmp_path):
    folder = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for name, level in (("bright", 220), ("dark", 30)):
        (folder / name).mkdir(parents=True)
        for i in range(16):
            pixels = rng.integers(-20, 20, (8, 8, 3)) + level
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(
                folder / name / f"{i}.png")
    run, record = tmp_path / "run", tmp_path / "record"
    result = run_kerasdl("train", "cnn", "--data", folder, "--image-size", "8",
                         "--epochs", "1", "--batch-size", "4", "--workers", "2",
                         "--output", run, env={"KERASDL_SHARD_RECORD": str(record)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Note: each of the 2 workers reads its own" in result.stderr
    config, metrics = _assert_completed(run)
    paths, labels, _ = image_files.list_image_folder(folder, check=False)
    train = np.asarray(paths)[split_indices(len(paths), labels, config["settings"])[0]]
    assert len(train) == config["spec"]["num_examples"]["train"]
    shares = _records(record)
    _assert_shares(shares, train.tolist())
    # Every file of a share in its one epoch: both classes on each worker.
    assert all({path.split("/")[-2] for path in share} == {"bright", "dark"}
               for share in shares)
    assert metrics["test"]["accuracy"] >= 0.0 and len(metrics["per_class_recall"]) == 2


def test_two_workers_parse_disjoint_equal_row_ranges_of_a_streamed_csv(tmp_path):
    rng = np.random.default_rng(1)
    rows = 301
    x = rng.normal(size=(rows, 3))
    data = tmp_path / "table.csv"
    with open(data, "w") as handle:
        handle.write("a,b,c,y\n")
        for (a, b, c) in x:
            handle.write(f"{a:.4f},{b:.4f},{c:.4f},{2 * a - b + 0.1 * c:.4f}\n")
    run, record = tmp_path / "run", tmp_path / "record"
    result = run_kerasdl("train", "regression", "--data", data, "--target", "y",
                         "--epochs", "1", "--batch-size", "16", "--workers", "2",
                         "--output", run, env={"KERASDL_SHARD_RECORD": str(record),
                                               "KERASDL_CSV_STREAM_MB": "0"})
    assert result.returncode == 0, result.stderr[-3000:]
    config, metrics = _assert_completed(run)
    assert config["spec"]["streamed"]
    names = streaming.split_names(np.arange(rows), config["settings"])
    train = [str(row) for row in np.flatnonzero(names == 0)]
    shares = _records(record)
    _assert_shares(shares, train)
    # Contiguous ranges: worker 0 the first training rows, worker 1 the rest.
    assert max(map(int, shares[0])) < min(map(int, shares[1]))
    assert np.isfinite(metrics["test"]["mae"])
