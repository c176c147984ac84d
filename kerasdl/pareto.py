"""Several objectives in one search: `kerasdl tune --objective A --objective B ...`.

The first objective drives Keras Tuner's oracle (it ranks the trials, picks the best to
retrain, and is what `--prune` and `--warm-start` compare). Keras Tuner's own list of
objectives (`MultiObjective`) is not used: it scores a trial by the plain sum of its
objectives (those to maximise negated), one number in which a parameter count of
thousands drowns an accuracy below 1; the trade-off is the Pareto front instead.

Every further objective is recorded for each trial, and the report marks the trials on
the front: those that no other finished trial beats in one objective without being
worse in another. An objective is a metric the trials log (read at the trial's best
epoch by the first objective, like every metric in results.csv) or one of two computed
after training:

- `params`: the trained model's `count_params()`;
- `latency`: the median of 5 timings, in milliseconds per example, of
  `model.predict_on_batch` on the same inputs for every trial (the first 64 examples
  of the validation pipeline's first batch), after one untimed call that traces the
  function. `predict_on_batch` rather than `predict`, whose per-call set-up of a data
  iterator (milliseconds) would swamp the model's own time on small models.

Both default to `min`. This module is pure: parsing and the front, without TensorFlow.
"""

import math
import re

# Computed objectives: name -> (results.csv column, default direction).
COMPUTED = {"params": ("params", "min"), "latency": ("latency_ms", "min")}
LATENCY_EXAMPLES = 64
LATENCY_REPEATS = 5
DIRECTIONS = ("min", "max")
_METRIC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")


class ObjectiveError(ValueError):
    """An `--objective` value that cannot be used (the CLI's exit 2)."""


def default_direction(name):
    """`max` for accuracy and AUC metrics and `min` for the rest (losses, errors, and
    the computed `params` and `latency`): the rule `kerasdl tune` has always used."""
    if name in COMPUTED:
        return COMPUTED[name][1]
    return "max" if "acc" in name or "auc" in name else "min"


def column(name):
    """The results.csv column of objective `name` (`latency` is `latency_ms`)."""
    return COMPUTED[name][0] if name in COMPUTED else name


def parse_objectives(texts):
    """Parses the repeated `--objective NAME[:min|max]` values.

    Args:
        texts: the values in the order given (an empty sequence: the recipe's objective).

    Returns:
        A list of `{"name", "direction"}`, the first the one that drives the search.

    Raises:
        ObjectiveError: for a bad direction, a name that is no metric name, the same
            objective twice, or a computed objective (`params`, `latency`) first.
    """
    objectives = []
    for text in texts:
        name, colon, direction = str(text).partition(":")
        name = name.strip()
        if colon and direction not in DIRECTIONS:
            raise ObjectiveError(f"`--objective` takes NAME or NAME:min or NAME:max. "
                                 f"Received: {text!r}")
        if not _METRIC_NAME.match(name):
            raise ObjectiveError(
                f"Unknown objective {name!r}: give a metric the trials log (such as "
                f"val_accuracy or val_loss), {' or '.join(COMPUTED)}. Received: {text!r}")
        if any(objective["name"] == name for objective in objectives):
            raise ObjectiveError(f"`--objective {name}` is given twice; give each objective "
                                 "once.")
        objectives.append({"name": name, "direction": direction or default_direction(name)})
    if objectives and objectives[0]["name"] in COMPUTED:
        raise ObjectiveError(
            f"The first `--objective` drives the search and must be a metric the trials log "
            f"every epoch (such as val_accuracy or val_loss); {objectives[0]['name']} is "
            "measured after training: give it after one. Received: "
            f"{objectives[0]['name']!r}")
    return objectives


def dominates(a, b, directions):
    """Whether point `a` is no worse than `b` in every objective and better in one."""
    better = False
    for x, y, direction in zip(a, b, directions):
        if direction == "max":
            x, y = -x, -y
        if x > y:
            return False
        better = better or x < y
    return better


def _usable(point):
    try:
        return point is not None and all(value is not None and math.isfinite(float(value))
                                         for value in point)
    except (TypeError, ValueError):
        return False


def pareto_front(points, directions):
    """Which points lie on the non-dominated (Pareto) front.

    Args:
        points: one sequence of numbers per point, one number per objective.
        directions: `min` or `max` for each objective.

    Returns:
        A list of booleans, one per point: True for a point that no other usable point
        dominates. A point with a missing (None), NaN or infinite value is not usable:
        it is never on the front and dominates none. Equal points do not dominate each
        other, so both are on the front or neither is.

    Raises:
        ValueError: for a direction other than `min` or `max`, or a point whose length
            differs from `directions`'.
    """
    directions = list(directions)
    for direction in directions:
        if direction not in DIRECTIONS:
            raise ValueError(f"A direction must be min or max. Received: {direction!r}")
    points = [None if point is None else list(point) for point in points]
    for point in points:
        if point is not None and len(point) != len(directions):
            raise ValueError(f"Each point needs {len(directions)} values, one per objective. "
                             f"Received: {point!r}")
    usable = [[float(value) for value in point] if _usable(point) else None
              for point in points]
    candidates = [point for point in usable if point is not None]
    return [point is not None
            and not any(dominates(other, point, directions) for other in candidates)
            for point in usable]


def others(meta):
    """The objectives of a search (its search.json) after the first, or []."""
    return [dict(objective) for objective in meta.get("objectives", [])[1:]]


def objective_columns(meta):
    """`(column, direction)` of each objective of a search, the first first.

    A further metric named like a hyperparameter is in results.csv's `metric_NAME`
    column, as every such metric.
    """
    names = {param["name"] for param in meta["search_space"]}
    pairs = [(meta["objective"]["name"], meta["objective"]["direction"])]
    for objective in others(meta):
        name = objective["name"]
        if name not in COMPUTED and name in names:
            name = f"metric_{name}"
        pairs.append((column(name), objective["direction"]))
    return pairs


def front_frame(frame, meta):
    """The finished trials of a results table marked `pareto` (not those `show` found
    damaged since), best first by the first objective.

    Columns: trial_id, status, each objective, the hyperparameters, best_epoch, epochs.
    """
    columns = [name for name, _ in objective_columns(meta)]
    if "pareto" not in frame or not len(frame):
        return frame.iloc[0:0]
    front = frame[(frame["pareto"].astype(str).str.lower() == "true")
                  & frame["status"].isin(["COMPLETED", "IMPORTED"])]
    front = front.sort_values(columns[0], ascending=meta["objective"]["direction"] == "min",
                              kind="stable")
    if "params" in front:
        front = front.assign(params=front["params"].astype("Int64"))  # a count
    keep = ["trial_id", "status", *columns, *(param["name"] for param in meta["search_space"]),
            "best_epoch", "epochs"]
    return front[[name for name in dict.fromkeys(keep) if name in front.columns]]


def lacking(frame, meta):
    """The finished trials left out of the front for a missing or NaN objective value
    (such as trials imported from a search that did not measure `latency`), and the
    objective columns with such gaps."""
    columns = [name for name, _ in objective_columns(meta)]
    finished = frame[frame["status"].isin(["COMPLETED", "IMPORTED"])]
    values = finished.reindex(columns=columns)
    return finished[values.isna().any(axis=1)], [c for c in columns if values[c].isna().any()]
