"""The supervisor's reports of how a process ended, and progress output."""

import io
import sys
import tempfile

import keras_tuner
import pytest

from kerasdl import progress
from kerasdl.supervisor import how_it_ended
from kerasdl.supervisor import last_error_line


@pytest.mark.parametrize("code,text", [
    (0, "exited with code 0"), (2, "exited with code 2"), (-9, "was killed by SIGKILL"),
    (-15, "was killed by SIGTERM"), (-200, "was killed by signal 200"),
])
def test_how_it_ended(code, text):
    assert how_it_ended(code) == text


def test_last_error_line_finds_the_last_error():
    log = ["Epoch 1/3", "Error: `epochs` must be a positive integer.", "  File x.py",
           "ValueError: bad shape  ", "cleaning up", "done"]
    assert last_error_line(log) == "ValueError: bad shape"
    assert last_error_line(["Traceback:", "tensorflow.errors.ResourceExhaustedError: OOM"]) \
        == "tensorflow.errors.ResourceExhaustedError: OOM"
    assert last_error_line(["Killed"]) == "Killed"
    assert last_error_line(["Epoch 1/3", "loss: 0.3 - errors: 2"]) is None
    assert last_error_line([]) is None


def test_uncoloured_strips_ansi_codes():
    buffer = io.StringIO()
    stream = progress.Uncoloured(buffer)
    stream.write("\x1b[1mEpoch 1/2\x1b[0m \x1b[32m━━━\x1b[0m\x1b[2K\r")
    stream.writelines(["a\x1b[?25l", "b\x1b[1;31mc\n"])
    assert buffer.getvalue() == "Epoch 1/2 ━━━\rabc\n"
    assert stream.getvalue() == buffer.getvalue()  # other attributes pass through


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_no_color_and_non_terminals_get_no_colour(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert progress.on_terminal() and progress.colour_allowed() and progress.verbosity() == 1
    monkeypatch.setenv("NO_COLOR", "1")
    assert not progress.colour_allowed()
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not progress.colour_allowed() and progress.verbosity() == 2


def test_a_command_under_no_color_writes_no_colour_codes(monkeypatch):
    from kerasdl import cli

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("NO_COLOR", "1")
    with cli._results_only():
        print("\x1b[1mbold\x1b[0m progress")  # stdout goes to stderr, uncoloured
    monkeypatch.delenv("NO_COLOR")
    with cli._results_only():
        sys.stderr.write("\x1b[1mcolour\x1b[0m\n")
    assert terminal.getvalue() == "bold progress\n\x1b[1mcolour\x1b[0m\n"


@pytest.mark.filterwarnings("ignore:.*currentThread:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:getName:DeprecationWarning")
def test_trial_line_reports_score_and_best(capsys):
    hp = keras_tuner.HyperParameters()
    hp.Int("units", 1, 10)
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("val_accuracy", "max"), max_trials=8,
        hyperparameters=hp, seed=1)
    oracle._set_project_dir(tempfile.mkdtemp(), "search")
    lines = []
    for score in (0.5, 0.9, None):
        trial = oracle.create_trial("tuner0")
        if score is not None:
            oracle.update_trial(trial.trial_id, {"val_accuracy": score})
            trial.status = "COMPLETED"
        else:
            trial.status = "FAILED"
        oracle.end_trial(trial)
        lines.append(progress.trial_line(trial, oracle, 4.21))
    assert lines == ["Trial 1/8 completed in 4.2s: val_accuracy 0.5 (best 0.5)",
                     "Trial 2/8 completed in 4.2s: val_accuracy 0.9 (best 0.9)",
                     "Trial 3/8 failed in 4.2s: no score (best 0.9)"]


def _ended(watch, count):
    """Waits for `count` of the supervisor's processes to end; their (name, code)."""
    import time

    ended = []
    deadline = time.monotonic() + 20
    while len(ended) < count and time.monotonic() < deadline:
        ended += watch.exited()
        time.sleep(0.05)
    return ended


@pytest.mark.parametrize("chief_first", [True, False])
def test_a_killed_worker_is_the_cause_not_the_chiefs_echo(capfd, chief_first):
    # The chief fails because its peer was killed: the one line names the killed peer,
    # and the chief's consequent `Error:` line is not shown, whichever is seen first.
    from kerasdl import supervisor
    from kerasdl.distributed import worker_labels

    watch = supervisor.Supervisor()
    chief = "import sys; print('Epoch 1/3', file=sys.stderr); " \
            "print('Error: Collective ops is aborted', file=sys.stderr); sys.exit(1)"
    watch.spawn("worker0", [sys.executable, "-c", chief], echo=True)
    with tempfile.TemporaryDirectory() as folder:
        watch.spawn("worker1", [sys.executable, "-c", "import os; os.kill(os.getpid(), 9)"],
                    log=f"{folder}/worker1.log")
        ended = _ended(watch, 2)
        ended.sort(key=lambda item: item[0] != "worker0" if chief_first else item[0] == "worker0")
        code = supervisor.report_failure(watch, ended, worker_labels(2))
        watch.release("worker0")
    err = capfd.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert code == 1
    assert len(errors) == 1 and errors[0].startswith("Error: worker 1 of 2 was killed by SIGKILL")
    assert "Epoch 1/3" in err  # progress still passes through


def test_the_chiefs_own_error_is_shown_once_when_it_is_the_cause(capfd):
    from kerasdl import supervisor
    from kerasdl.distributed import worker_labels

    watch = supervisor.Supervisor()
    chief = "import sys; print('Error: loss is NaN at epoch 2', file=sys.stderr); sys.exit(1)"
    watch.spawn("worker0", [sys.executable, "-c", chief], echo=True)
    watch.spawn("worker1", [sys.executable, "-c", "import sys, time; time.sleep(1); sys.exit(1)"])
    code = supervisor.report_failure(watch, _ended(watch, 2), worker_labels(2))
    watch.release("worker0")
    errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("Error:")]
    assert code == 1 and errors == ["Error: loss is NaN at epoch 2"]
