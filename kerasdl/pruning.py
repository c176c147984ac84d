"""The median rule that stops a search's bad trials early (`kerasdl tune --prune`).

The rule of Optuna's MedianPruner: at the end of epoch `e` of a trial past the warm-up,
once at least `startup_trials` earlier trials completed epoch `e`, the trial stops when
its best objective so far is worse than the median of those trials' objective at `e`.

Pure functions, no TensorFlow: the search calls `should_prune` after every epoch.
It also tells a trial that diverged (`non_finite`, `diverged`): one stopped for a NaN
or infinite loss, never ranked.
"""

import math
import statistics

WARMUP_EPOCHS = 1
STARTUP_TRIALS = 1


def best_so_far(values, direction):
    """The best of a trial's finite objective values so far, or None."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    return max(finite) if direction == "max" else min(finite)


def should_prune(curve, others, epoch, direction, warmup_epochs=WARMUP_EPOCHS,
                 startup_trials=STARTUP_TRIALS, final_epoch=None):
    """Whether a trial stops after `epoch` (1-based, counted from the search's epoch 1).

    Args:
        curve: the trial's objective by epoch so far, `{epoch: value}` (1-based).
        others: the curves (`{epoch: value}`) of earlier trials that completed.
        epoch: the epoch just finished.
        direction: `max` or `min`, the objective's.
        warmup_epochs: epochs every trial runs before it can be stopped.
        startup_trials: completed trials reaching `epoch` needed before stopping any.
        final_epoch: the trial's last epoch: a trial that has run it is complete, as
            stopping it saves nothing (and it stays a reference for later trials).

    Returns:
        True when the trial's best value up to `epoch` is worse than the median of the
        other trials' values at `epoch`. A non-finite value (NaN loss) stops the trial
        once past the warm-up, as it can only be worse.
    """
    if direction not in ("max", "min"):
        raise ValueError(f"direction must be 'max' or 'min'. Received: {direction!r}")
    if epoch <= warmup_epochs or (final_epoch is not None and epoch >= final_epoch):
        return False
    at_epoch = [c[epoch] for c in others
                if c.get(epoch) is not None and math.isfinite(c[epoch])]
    if len(at_epoch) < max(startup_trials, 1):
        return False
    mine = best_so_far([v for e, v in curve.items() if e <= epoch], direction)
    if mine is None:
        return True
    median = statistics.median(at_epoch)
    return mine < median if direction == "max" else mine > median


def check_settings(warmup_epochs, startup_trials):
    """Raises ValueError naming a negative warm-up or start-up count."""
    for name, value in (("--prune-warmup-epochs", warmup_epochs),
                        ("--prune-startup-trials", startup_trials)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"`{name}` must be a whole number >= 0. Received: {value!r}")


# In the message of a trial that Keras Tuner recorded FAILED because it diverged.
DIVERGED = "TrialDiverged"


def non_finite(logs, objective_name=None):
    """The first loss (or the objective) in an epoch's logs that is NaN or infinite, as
    `(name, value)`, or None: a trial that reports one diverged."""
    for name, value in (logs or {}).items():
        if ("loss" in name or name == objective_name) and value is not None:
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(value):
                return name, value
    return None


def diverged(state, record=None):
    """Whether a trial diverged, from its trial.json (`state`) and kerasdl_trial.json.

    A trial of this kerasdl is FAILED with `TrialDiverged` in its message; one of an older
    kerasdl may be COMPLETED with a finite score (an accuracy) but a NaN loss.
    """
    if (record or {}).get("status") == "diverged":
        return True
    if state.get("status") == "FAILED":
        return DIVERGED in str(state.get("message") or "")
    if state.get("status") != "COMPLETED":
        return False
    score = state.get("score")
    if isinstance(score, float) and not math.isfinite(score):
        return True
    last = {name: metric["observations"][-1]["value"][0]
            for name, metric in (state.get("metrics") or {}).get("metrics", {}).items()
            if metric.get("observations") and metric["observations"][-1].get("value")}
    return non_finite(last) is not None
