"""Helpers for fault tests: find a process's descendants, wait, and end them by PID."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kerasdl.locks import pid_alive as alive


def descendants(pid):
    """The PIDs of every live descendant of `pid` (from /proc)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return [p for p in found if alive(p)]


def wait_until(condition, timeout, what, process=None):
    """Polls `condition()` until true; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process ended ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.2)


def end_all(pids):
    """SIGKILLs each PID still alive (the cleanup of every test that starts processes)."""
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_kerasdl(*args, env=None, cwd=None):
    """Starts `python -m kerasdl ARGS...` with pipes for stdout and stderr."""
    return subprocess.Popen([sys.executable, "-m", "kerasdl", *map(str, args)], cwd=cwd,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs: a real file system that fills up (needs root; skipped otherwise)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk, leave):
    """Fills `disk` with one file, `filler`, leaving about `leave` bytes free."""
    free = shutil.disk_usage(disk).free
    (disk / "filler").write_bytes(b"\0" * max(0, free - leave))


_NO_SPACE_CHECK = ("import sys; from kerasdl import diskspace; "
                   "diskspace.ensure = lambda folder, needed: None; "
                   "from kerasdl.cli import main; sys.argv[0] = 'kerasdl'; main()")


def run_without_space_check(*args, timeout=300):
    """`kerasdl ARGS...` in a subprocess whose free-space check before saving passes:
    a full disk then fails the write itself (ENOSPC), as when something else fills
    the disk between the check and the save."""
    return subprocess.run([sys.executable, "-c", _NO_SPACE_CHECK, *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)
