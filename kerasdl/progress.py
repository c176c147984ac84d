"""Progress that fits where it runs: bars on a terminal, one line per epoch elsewhere.

Keras prints progress on stdout; the CLI sends it to stderr (stdout carries results
only), so the terminal test is made on stderr. `NO_COLOR` (https://no-color.org)
and a stderr that is not a terminal strip ANSI colour codes (see `kerasdl.cli`).
"""

import os
import re
import sys

# ANSI control sequences: colours and bold ("\x1b[1m"), erase line ("\x1b[2K"), ...
COLOUR_CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_terminal():
    """Whether progress is read live on a terminal (stderr is a tty)."""
    stream = sys.__stderr__ if sys.stderr is None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def colour_allowed():
    """Whether colour codes may be written: a terminal and no `NO_COLOR` set."""
    return on_terminal() and not os.environ.get("NO_COLOR")


def verbosity():
    """Keras `verbose`: 1 (a progress bar) on a terminal, 2 (a line per epoch) elsewhere."""
    return 1 if on_terminal() else 2


class Uncoloured:
    """A text stream that drops ANSI colour codes from what is written to it."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        return self._stream.write(COLOUR_CODES.sub("", text))

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def callback():
    """A Keras progress bar whose counter never passes the epoch's steps.

    With `steps_per_execution` larger than an epoch's steps, Keras' own bar counts
    the steps it asked for ("32/8"); this one counts the steps there are.
    """
    import keras

    class Progress(keras.callbacks.ProgbarLogger):
        def _update_progbar(self, batch, logs=None):
            if self.target is not None:
                batch = min(batch, self.target - 1)
            super()._update_progbar(batch, logs)

    return Progress()


def trial_line(trial, oracle, seconds):
    """One line for a finished Keras Tuner trial, for logs (instead of its tables).

    For example `Trial 3/8 completed in 4.2s: val_accuracy 0.9312 (best 0.9455)`.
    """
    try:
        number = len(oracle.trials)
    except AttributeError:  # a worker's OracleClient: the trial ids count from 0
        number = int(trial.trial_id) + 1 if str(trial.trial_id).isdigit() else None
    total = getattr(oracle, "max_trials", None)
    if number is None:
        counter = str(trial.trial_id)
    else:
        counter = f"{number}/{total}" if total and total >= number else str(number)
    name = oracle.objective.name
    score = "no score" if trial.score is None else f"{name} {trial.score:.4g}"
    best = oracle.get_best_trials(1)
    best = f" (best {best[0].score:.4g})" if best and best[0].score is not None else ""
    status = str(getattr(trial.status, "value", trial.status)).lower()
    return f"Trial {counter} {status} in {seconds:.1f}s: {score}{best}"
