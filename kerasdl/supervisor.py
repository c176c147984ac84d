"""One supervisor for the local processes of `train --workers` and `tune --workers`.

`launch` is the one launcher of both: it starts the named children, watches them,
and returns an exit code (or what the command's policy returns). Every process is
started through `Supervisor.spawn` and nothing outlives the launcher:
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
import dataclasses
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
        self._specs = {}  # name -> how it was started, for `respawn`

    def spawn(self, name, argv, env=None, log=None, echo=False):
        """Starts `argv` as the process `name`.

        Args:
            log: a file path: the process's stdout and stderr go there (appended).
            echo: instead, its stderr is passed through to this process's stderr (its
                stdout is this command's), and its last lines are kept for the report.
                Its `Error:` lines are held back until `release(name)`: when another
                process's death caused them, the launcher shows that cause instead.
        """
        self._specs[name] = (argv, env, log, echo)
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

    def respawn(self, name):
        """Starts process `name` again as it was started before (its log is appended)."""
        argv, env, log, echo = self._specs[name]
        return self.spawn(name, argv, env=env, log=log, echo=echo)

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


@dataclasses.dataclass
class Child:
    """A process for `launch` to start.

    Attributes:
        name: its name in reports (`worker0`, `chief`).
        argv: its command line.
        env: its environment (default: this process's).
        log: a file for its stdout and stderr; None with `echo`.
        echo: pass its stderr through and give it this command's stdout (one child).
        label: how a one-line report names it (default: `name`).
        delay: seconds to wait after starting it before starting the next.
    """

    name: str
    argv: list
    env: dict = None
    log: Path = None
    echo: bool = False
    label: str = None
    delay: float = 0.0


def launch(children, watch_over=None, poll=0.2, settle=3.0):
    """Runs `children` as processes that live and die with this one; returns the exit code.

    SIGTERM and SIGINT are forwarded (`Interrupted`, exit 130); every child still
    running when the launch ends is stopped, and the held `Error:` lines of an echoed
    child are shown then.

    Args:
        children: `Child`s, started in order.
        watch_over: called every `poll` seconds as `watch_over(watch, ended)` with the
            `Supervisor` and the `(name, return code)` of the children that ended since
            the last call; it may start children again (`watch.respawn`), and returns
            None to go on or the value to end the launch with. Default: the first child
            that fails ends the launch (`report_failure`).
        poll: seconds between two looks.
        settle: with the default policy, seconds the others are given to end after a
            failure, so that the cause is named rather than its echoes.

    Returns:
        What `watch_over` returned, or 0 once every child has ended.
    """
    watch = Supervisor()
    labels = {child.name: child.label or child.name for child in children}
    watch_over = watch_over or (
        lambda watch, ended: stop_at_failure(watch, ended, labels, settle))
    try:
        with forward_signals():
            for child in children:
                watch.spawn(child.name, child.argv, env=child.env, log=child.log,
                            echo=child.echo)
                if child.delay:
                    time.sleep(child.delay)
            while True:
                outcome = watch_over(watch, watch.exited())
                if outcome is not None:
                    return outcome
                if not watch.processes:
                    return 0
                time.sleep(poll)
    finally:
        watch.stop()
        for child in children:
            if child.echo:
                watch.release(child.name)


def stop_at_failure(watch, ended, labels=None, settle=3.0):
    """`launch`'s default policy: a child that fails ends the launch (`report_failure`).

    A killed process makes its peers fail too (a multi-worker cluster's "Collective ops
    is aborted"): they are given a moment to end, then the cause is named, not its echoes.
    """
    failed = [(name, code) for name, code in ended if code]
    if not failed:
        return None
    failed += [(name, code) for name, code in watch.settle(settle) if code]
    return report_failure(watch, failed, labels)


_EXTERNAL = {-signal.SIGKILL, -signal.SIGTERM, -signal.SIGINT, -signal.SIGHUP}


def report_failure(watch, failed, labels=None):
    """Names the process whose end stopped the others in one line; returns the exit code.

    A process killed from outside (SIGKILL, SIGTERM, SIGINT, SIGHUP: the OOM killer, a
    user) is the cause over one that exited with an error or aborted; among equals, the
    first seen to end. An echoed process's own `Error:` line stands when it is the
    cause (its exit code is returned); otherwise every held line is dropped and the
    one line is printed (exit code 1).
    """
    name, code = min(failed, key=lambda item: (item[1] not in _EXTERNAL, failed.index(item)))
    line = watch.report(name, code, (labels or {}).get(name))
    watch.stop()
    if name in watch._held and code > 0 and "last error line: Error:" in line:
        return code  # its own one-line error is shown when the launch releases it
    for echoed in watch._held:
        watch.release(echoed, show=False)
    print(f"Error: {line}", file=sys.stderr)
    return 1
