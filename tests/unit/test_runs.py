"""Run files: atomic writes, damaged files named, run folders and their status."""

import json
import os
import platform
import stat
import subprocess
import sys

import pytest

from kerasdl import runs
from kerasdl.errors import RunError
from kerasdl.errors import UsageError


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_follows_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        runs.write_text(tmp_path / "a" / "notes.txt", "hello")
    finally:
        os.umask(old)
    path = tmp_path / "a" / "notes.txt"
    assert path.read_text() == "hello"
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_atomic_write_keeps_the_old_file_and_no_temporary_on_failure(tmp_path):
    path = tmp_path / "config.json"
    runs.write_json(path, {"recipe": "cnn"})

    def half_then_fail(tmp):
        with open(tmp, "w") as handle:
            handle.write('{"reci')
        raise OSError("disk broke")

    with pytest.raises(OSError, match="disk broke"):
        runs.atomic_write(path, half_then_fail)
    assert json.loads(path.read_text()) == {"recipe": "cnn"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_read_json_names_a_damaged_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("")
    with pytest.raises(runs.DamagedFileError, match="config.json' is damaged: it is empty"):
        runs.read_json(path)
    path.write_text('{"recipe": "cnn",')
    with pytest.raises(runs.DamagedFileError, match="not valid JSON .* at line 1"):
        runs.read_json(path)
    path.write_text('{"recipe": "cnn"}')
    with pytest.raises(runs.DamagedFileError, match="it lacks settings; restore"):
        runs.read_json(path, runs.RUN_KEYS, "restore")
    assert runs.read_json(path) == {"recipe": "cnn"}
    with pytest.raises(RunError, match="File not found: .*other.json"):
        runs.read_json(tmp_path / "other.json")


def test_check_output_accepts_new_or_empty_folders_only(tmp_path):
    assert runs.check_output(tmp_path / "new") == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    runs.check_output(tmp_path / "empty")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "model.keras").write_bytes(b"x")
    with pytest.raises(UsageError, match="'.*full' already holds files"):
        runs.check_output(tmp_path / "full")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is an existing file"):
        runs.check_output(tmp_path / "file")


def test_create_run_dir_never_reuses_a_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "RUNS_ROOT", tmp_path / "runs")
    first, second = runs.create_run_dir("cnn"), runs.create_run_dir("cnn")
    assert first != second and first.parent == second.parent == tmp_path / "runs" / "cnn"
    assert first.is_dir() and second.is_dir()


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_run_status_of_a_gone_process_is_killed():
    here = platform.node()
    assert runs.run_status({"status": "running", "pid": os.getpid(), "host": here}) == "running"
    assert runs.run_status({"status": "running", "pid": _dead_pid(), "host": here}) == "killed"
    assert runs.run_status({"status": "running", "pid": 1, "host": "elsewhere"}) == "running"
    assert runs.run_status({}) == "unknown"


def test_list_runs_shows_damaged_runs(tmp_path):
    good = tmp_path / "cnn" / "a"
    runs.write_json(good / "config.json", {"recipe": "cnn", "settings": {},
                                           "status": "failed", "created": "today"})
    runs.write_json(good / "metrics.json", {"test": {"accuracy": 0.5}})
    damaged = tmp_path / "cnn" / "b"
    damaged.mkdir(parents=True)
    (damaged / "config.json").write_text('{"recipe": "cn')
    (damaged / "history.csv").write_text("epoch\n")
    completed = tmp_path / "cnn" / "c"  # completed, but its model is not a .keras archive
    runs.write_json(completed / "config.json", {"recipe": "cnn", "settings": {},
                                                "status": "completed"})
    (completed / "model.keras").write_bytes(b"PK")
    other = tmp_path / "tool"  # some other tool's config.json: not a run
    runs.write_json(other / "config.json", {"name": "x"})
    found = {row["path"]: row for row in runs.list_runs(tmp_path)}
    assert set(found) == {str(good), str(damaged), str(completed)}
    assert found[str(good)]["status"] == "failed"
    assert found[str(good)]["test"] == {"accuracy": 0.5}
    assert found[str(damaged)]["status"] == "damaged"
    assert found[str(damaged)]["recipe"] == "?"
    assert found[str(completed)]["status"] == "damaged"


def test_resolve_run_and_resumable(tmp_path):
    with pytest.raises(RunError, match="local files only"):
        runs.resolve_run("http://example.com/model.keras")
    with pytest.raises(RunError, match="not found"):
        runs.resolve_run(tmp_path / "none")
    run = tmp_path / "run"
    runs.write_json(run / "config.json", {"recipe": "cnn", "settings": {},
                                          "status": "failed"})
    with pytest.raises(RunError, match=r"holds no model.keras \(run status: failed\)"):
        runs.resolve_run(run)
    assert runs.resumable(run)["recipe"] == "cnn"
    runs.write_json(run / "config.json", {"recipe": "cnn", "settings": {},
                                          "status": "completed"})
    with pytest.raises(RunError, match="already completed"):
        runs.resumable(run)
    (tmp_path / "model.txt").write_text("x")
    with pytest.raises(RunError, match="Not a run folder or .keras model file"):
        runs.resolve_run(tmp_path / "model.txt")
