"""One supervisor for the local processes of `train --workers` and `tune --workers`.

The launcher starts every process through `Supervisor.spawn` and nothing outlives it:
- SIGTERM and SIGINT of the launcher are forwarded (`forward_signals`): each child is
  asked to stop (SIGTERM), then killed if it has not ended within a grace period;
- SIGKILL of the launcher cannot be caught, so each child watches its parent
  (`child_setup`): Linux's parent-death signal (`prctl(PR_SET_PDEATHSIG)`) and a thread
  that polls `os.getppid()` end it within about a second of its launcher;
- a child that dies is reported in one line: which process, how (signal or exit code)
  and the last error line of its log.
"""

import collections
import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from kerasdl.errors import KerasdlError

PARENT_ENV = "KERASDL_PARENT_PID"
GRACE_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1
_ERROR_LINE = re.compile(r"^(Error:|[A-Za-z_.]*(Error|Exception|Exit)\b|Killed|Fatal)")


class Interrupted(KerasdlError):
    """The launcher was asked to stop (SIGTERM or SIGINT); its children were stopped."""

    exit_code = 130


def _exit_when_orphaned(parent):
    # Signals to this process go to the main thread (a multi-worker wait blocks SIGTERM
    # there for the watcher to see it pending: `kerasdl.distributed`).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            # Ask the main thread to clean up; end regardless if it is stuck in native code.
            with contextlib.suppress(OSError):
                os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(GRACE_SECONDS / 2)
            os._exit(143)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def child_setup():
    """Ties this process to the launcher that started it (no-op outside a supervisor).

    The launcher's PID comes in the environment; the variable is removed so processes
    this one starts are not tied to the launcher too. SIGTERM becomes KeyboardInterrupt,
    so `finally` blocks run: a run's config.json reads `interrupted` and temporary
    folders are removed.
    """
    parent = os.environ.pop(PARENT_ENV, None)
    if not parent:
        return
    parent = int(parent)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the launcher died before the line above
        os._exit(143)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True,
                     name="kerasdl-parent-watch").start()


@contextlib.contextmanager
def forward_signals():
    """Turns SIGTERM (and SIGINT) of the launcher into `Interrupted` while the block runs."""
    def handler(signum, frame):
        raise Interrupted(f"Stopped by {signal.Signals(signum).name}; every worker process "
                          "was stopped with it.")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def last_error_line(lines):
    """The last line of a log that reads as an error (`Error: ...`, `ValueError: ...`)."""
    for line in reversed([line.strip() for line in lines]):
        if _ERROR_LINE.match(line):
            return line
    return None


def how_it_ended(code):
    """`exit code N` or `killed by SIGNAME` for a Popen return code."""
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    """Starts, watches, reports and stops the local processes of one command."""

    def __init__(self):
        self.processes = {}
        self._logs = {}
        self._tails = {}
        self._threads = []
        self._quiet = threading.Event()  # set while stopping: the children's last words
        self._held = {}  # name -> the `Error:` lines of an echoed child, not yet shown

    def spawn(self, name, argv, env=None, log=None, echo=False):
        """Starts `argv` as the process `name`.

        Args:
            log: a file path: the process's stdout and stderr go there (appended).
            echo: instead, its stderr is passed through to this process's stderr (its
                stdout is this command's), and its last lines are kept for the report.
                Its `Error:` lines are held back until `release(name)`: when another
                process's death caused them, the launcher shows that cause instead.
        """
        env = {**(env or os.environ), PARENT_ENV: str(os.getpid())}
        if log is not None:
            with open(log, "a") as output:
                process = subprocess.Popen(argv, env=env, stdout=output,
                                           stderr=subprocess.STDOUT)
            self._logs[name] = Path(log)
        elif echo:
            process = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE)
            tail = self._tails[name] = collections.deque(maxlen=50)
            held = self._held[name] = []
            thread = threading.Thread(target=self._pass_through,
                                      args=(process.stderr, tail, held), daemon=True)
            thread.start()
            self._threads.append(thread)
        else:
            process = subprocess.Popen(argv, env=env)
        self.processes[name] = process
        return process

    def _pass_through(self, stream, tail, held):
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            if self._quiet.is_set():  # "Error: Aborted." of a child this process stopped
                continue
            tail.append(line.rstrip("\n"))
            if line.startswith("Error:"):
                held.append(line)
                continue
            sys.stderr.write(line)
            sys.stderr.flush()
        stream.close()

    def release(self, name, show=True):
        """Shows (or, with `show=False`, drops) the held `Error:` lines of `name`."""
        for thread in self._threads:
            thread.join(timeout=2)
        held = self._held.get(name, [])
        if show and held:
            sys.stderr.write("".join(held))
            sys.stderr.flush()
        held.clear()

    def settle(self, seconds=3.0):
        """Waits up to `seconds` for the other processes to end after one failed, and
        returns the `(name, return code)` of those that did."""
        ended = []
        deadline = time.monotonic() + seconds
        while self.processes and time.monotonic() < deadline:
            ended.extend(self.exited())
            time.sleep(0.1)
        return ended + self.exited()

    def exited(self):
        """The `(name, return code)` of the processes that ended since the last call."""
        ended = []
        for name, process in list(self.processes.items()):
            code = process.poll()
            if code is not None:
                ended.append((name, code))
                del self.processes[name]
        return ended

    def report(self, name, code, label=None):
        """One line: which process died, how, and the last error line of its log."""
        if name in self._tails:
            for thread in self._threads:
                thread.join(timeout=2)
            lines = list(self._tails[name])
            where = ""
        else:
            log = self._logs.get(name)
            try:
                lines = log.read_text(errors="replace").splitlines() if log else []
            except OSError:
                lines = []
            where = f" (log: {log})" if log else ""
        error = last_error_line(lines)
        error = f"; last error line: {error}" if error else "; no error line in its log"
        return f"{label or name} {how_it_ended(code)}{error}{where}"

    def stop(self, grace=GRACE_SECONDS):
        """Asks every running process to stop (SIGTERM), kills those still running after
        `grace` seconds, and reaps them all."""
        self._quiet.set()
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        for thread in self._threads:
            thread.join(timeout=2)


def temporary_folder(prefix):
    """A temporary folder named after this process, after removing those of dead ones.

    A launcher killed with SIGKILL cannot remove its folder; the next launch does.
    """
    root = Path(tempfile.gettempdir())
    for folder in root.glob(f"{prefix}*"):
        match = re.match(rf"{re.escape(prefix)}(\d+)-", folder.name)
        if match and int(match.group(1)) != os.getpid():
            from kerasdl.locks import pid_alive

            if not pid_alive(int(match.group(1))):
                shutil.rmtree(folder, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))
