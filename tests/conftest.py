"""Shared test helpers: running the CLI in-process and in a real subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Files of the longest tests (multi-process searches and training runs, quality figures),
# run first: pytest-xdist hands tests out in collection order, so a test of minutes near
# the end keeps one process busy after the other has run out of work. Each file's tests
# stay together (a module fixture runs once), the rest keep pytest's order, and xdist still
# starts with its groups (`xdist_group`, largest first).
LONGEST_FIRST = ("test_transfer.py", "test_tune_workers.py", "test_tune_faults.py",
                 "test_reliability.py", "test_gan.py", "test_devices.py",
                 "test_search_features.py", "test_pareto_search.py", "test_worker_shards.py",
                 "test_compare.py", "test_tune.py", "test_tfds_cache.py", "test_train.py")


def pytest_collection_modifyitems(items):
    """Moves the tests of `LONGEST_FIRST` to the front, in its order (a stable sort)."""
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Runs `kerasdl ARGS...` in-process from `tmp_path`; returns Click's Result."""
    from kerasdl.cli import cli as group

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args):
        return runner.invoke(group, [str(arg) for arg in args], catch_exceptions=False)

    return run


def run_kerasdl(*args, cwd=None, env=None, timeout=600):
    """Runs `python -m kerasdl ARGS...` in a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "kerasdl", *map(str, args)], cwd=cwd, capture_output=True,
        text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


def assert_one_line_error(result, code, *fragments):
    """Asserts a failed command: exit `code`, one `Error:` line on stderr, no traceback."""
    stderr = result.stderr.strip()
    exit_code = result.exit_code if hasattr(result, "exit_code") else result.returncode
    assert exit_code == code, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def search_results(directory):
    """The results.csv of a `kerasdl tune` folder."""
    import pandas as pd

    return pd.read_csv(directory / "results.csv")


def assert_trials_complete_and_unique(frame, count, names):
    """`count` completed trials, none of them a configuration that ran twice."""
    assert len(frame) == count, frame
    assert (frame["status"] == "COMPLETED").all(), frame
    assert frame["trial_id"].is_unique
    assert not frame[names].astype(str).duplicated().any(), "a configuration ran twice"
