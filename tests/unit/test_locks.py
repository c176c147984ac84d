"""Folder locks: one process per run or search folder; stale locks are taken over."""

import json
import os
import platform
import subprocess
import sys

import pytest

from kerasdl import locks


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _write_lock(folder, pid, host=None):
    folder.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "host": host or platform.node(), "started": "2026-01-01T00:00:00"}
    (folder / locks.LOCK_NAME).write_text(json.dumps(record))


def test_acquire_and_release(tmp_path):
    path = locks.acquire(tmp_path / "run", "run")
    assert path == tmp_path / "run" / locks.LOCK_NAME
    assert json.loads(path.read_text())["pid"] == os.getpid()
    assert locks.acquire(tmp_path / "run") == path  # re-entrant in this process
    locks.release(path)
    assert not path.exists()


def test_a_live_holder_refuses_naming_pid_and_host(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        _write_lock(tmp_path, sleeper.pid)
        with pytest.raises(locks.FolderLocked) as error:
            locks.acquire(tmp_path, "search")
        message = str(error.value)
        assert f"process {sleeper.pid} on host {platform.node()}" in message
        assert message.startswith("The search ")
        with pytest.raises(locks.FolderLocked):
            locks.refuse_if_held(tmp_path)
        locks.release(tmp_path / locks.LOCK_NAME)  # not ours: left in place
        assert (tmp_path / locks.LOCK_NAME).exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_lock_on_another_host_is_never_taken_over(tmp_path):
    _write_lock(tmp_path, _dead_pid(), host="other-machine")
    with pytest.raises(locks.FolderLocked, match="on host other-machine"):
        locks.acquire(tmp_path)


def test_a_stale_lock_is_taken_over_with_a_note(tmp_path, capsys):
    dead = _dead_pid()
    _write_lock(tmp_path, dead)
    locks.refuse_if_held(tmp_path)  # a dead holder does not count
    path = locks.acquire(tmp_path, "run")
    assert json.loads(path.read_text())["pid"] == os.getpid()
    assert f"process {dead}" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["{not json", "[]", "{}", '{"pid": "12", "host": "h"}'])
def test_an_unreadable_lock_is_taken_over(tmp_path, capsys, text):
    """JSON that is no lock record used to crash (a list) or lock forever (`{}`)."""
    (tmp_path / locks.LOCK_NAME).write_text(text)
    locks.refuse_if_held(tmp_path)
    path = locks.acquire(tmp_path)
    assert json.loads(path.read_text())["pid"] == os.getpid()
    assert "unreadable" in capsys.readouterr().err


def test_hold_removes_the_folder_it_created_when_empty(tmp_path):
    with locks.hold(tmp_path / "a" / "b") as path:
        assert path.exists()
    assert not (tmp_path / "a").exists()
    with locks.hold(tmp_path / "c") as path:
        (tmp_path / "c" / "model.keras").write_text("x")
    assert not path.exists() and (tmp_path / "c" / "model.keras").exists()


def test_pid_alive():
    assert locks.pid_alive(os.getpid())
    assert not locks.pid_alive(_dead_pid())
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        for _ in range(200):  # exited but not reaped: a zombie is not alive
            if not locks.pid_alive(zombie.pid):
                break
            import time

            time.sleep(0.05)
        assert not locks.pid_alive(zombie.pid)
    finally:
        zombie.wait()
