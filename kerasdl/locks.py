"""Folder locks: one process works in a search or run folder at a time.

A lock is a file, `.kerasdl.lock`, created with `O_CREAT | O_EXCL` (atomic on local
file systems) and holding the holder's PID, host and start time. A second process is
refused with the holder's PID and host; a lock whose holder is gone (a process on this
host that no longer runs) is stale and is taken over, with a note on stderr.
"""

import contextlib
import datetime
import json
import os
import platform
import sys
from pathlib import Path

from kerasdl.errors import RunError

LOCK_NAME = ".kerasdl.lock"


class FolderLocked(RunError):
    """Another live process holds the folder's lock."""


def pid_alive(pid):
    """Tells whether process `pid` of this host runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process not yet reaped by its parent is a zombie: gone all the same
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def _read(path):
    """The lock's record, or None when it does not read as one (torn or damaged)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if (not isinstance(record, dict) or isinstance(record.get("pid"), bool)
            or not isinstance(record.get("pid"), int) or not isinstance(record.get("host"), str)):
        return None
    return record


def _create(path):
    record = {"pid": os.getpid(), "host": platform.node(),
              "started": datetime.datetime.now().isoformat(timespec="seconds")}
    handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    with os.fdopen(handle, "w") as file:
        json.dump(record, file)


def acquire(folder, what="folder"):
    """Takes the lock of `folder` for this process.

    Args:
        what: how the folder is named in messages ("search", "run").

    Returns:
        The lock file's path.

    Raises:
        FolderLocked: when a live process (or one on another host) holds it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    for _ in range(3):
        try:
            _create(path)
            return path
        except FileExistsError:
            pass
        holder = _read(path)
        if holder is None:  # being written this instant, or a torn write: look again
            import time

            time.sleep(0.2)
            holder = _read(path)
        if holder is None:
            print(f"Note: {str(path)!r} was unreadable; taking the {what} lock over.",
                  file=sys.stderr)
            path.unlink(missing_ok=True)
            continue
        pid, host = holder.get("pid"), holder.get("host")
        if pid == os.getpid() and host == platform.node():
            return path  # re-entrant: this process already holds it
        if host == platform.node() and isinstance(pid, int) and not pid_alive(pid):
            print(f"Note: taking over the stale lock of {what} {str(folder)!r} "
                  f"(process {pid} on {host}, started {holder.get('started')}, is gone).",
                  file=sys.stderr)
            path.unlink(missing_ok=True)
            continue
        raise FolderLocked(
            f"The {what} {str(folder)!r} is in use by process {pid} on host {host} "
            f"(since {holder.get('started')}); wait for it to end, stop it, or choose "
            "another --output.")
    raise FolderLocked(f"Could not lock the {what} {str(folder)!r}: other processes keep "
                       "taking it.")


def refuse_if_held(folder, what="folder"):
    """Raises FolderLocked when a live process holds the lock of `folder`."""
    path = Path(folder) / LOCK_NAME
    holder = _read(path) if path.exists() else None
    if not holder:
        return
    pid, host = holder.get("pid"), holder.get("host")
    if host != platform.node() or (isinstance(pid, int) and pid_alive(pid)):
        raise FolderLocked(
            f"The {what} {str(folder)!r} is in use by process {pid} on host {host} "
            f"(since {holder.get('started')}); wait for it to end, stop it, or choose "
            "another --output.")


def release(path):
    """Removes the lock file at `path` if this process holds it."""
    path = Path(path)
    holder = _read(path)
    if holder and holder.get("pid") == os.getpid() and holder.get("host") == platform.node():
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def hold(folder, what="folder"):
    """Holds the lock of `folder` for the duration of the `with` block.

    A folder this creates for the lock and that is left empty is removed again: a
    command that failed early leaves nothing behind.
    """
    created, missing = [], Path(folder)
    while not missing.exists() and missing != missing.parent:
        created.append(missing)
        missing = missing.parent
    path = acquire(folder, what)
    try:
        yield path
    finally:
        release(path)
        for made in created:  # the folder first, then its new parents
            try:
                made.rmdir()  # only if empty
            except OSError:
                break
