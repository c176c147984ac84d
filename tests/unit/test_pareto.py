"""The Pareto front and the parsing of repeated `--objective` (kerasdl.pareto)."""

import itertools
import math
import random
import subprocess
import sys

import pytest

from kerasdl.pareto import ObjectiveError
from kerasdl.pareto import column
from kerasdl.pareto import dominates
from kerasdl.pareto import pareto_front
from kerasdl.pareto import parse_objectives
from tests.conftest import assert_one_line_error


def _brute_front(points, directions):
    """The front by its definition, for comparison: no other point at least as good in
    every objective and strictly better in one."""
    signs = [1 if d == "min" else -1 for d in directions]
    keyed = [[s * v for s, v in zip(signs, p)] for p in points]
    return [not any(all(o <= p_ for o, p_ in zip(other, point)) and other != point
                    for other in keyed) for point in keyed]


def test_one_point_is_the_front():
    assert pareto_front([[0.8, 1200]], ["max", "min"]) == [True]


def test_no_points():
    assert pareto_front([], ["max", "min"]) == []


def test_min_max_mix():
    # accuracy up, params down: (0.9, 500) beats (0.8, 600); (0.95, 2000) trades off.
    points = [[0.9, 500], [0.8, 600], [0.95, 2000], [0.7, 100]]
    assert pareto_front(points, ["max", "min"]) == [True, False, True, True]
    # Both minimised, the same numbers rank otherwise.
    assert pareto_front(points, ["min", "min"]) == [False, False, False, True]


def test_ties_in_one_objective():
    # Same accuracy: the smaller model dominates; same size, the more accurate.
    points = [[0.9, 500], [0.9, 400], [0.85, 400]]
    assert pareto_front(points, ["max", "min"]) == [False, True, False]


def test_equal_points_are_both_on_the_front_or_both_off():
    assert pareto_front([[0.9, 500], [0.9, 500]], ["max", "min"]) == [True, True]
    assert pareto_front([[0.9, 500], [0.9, 500], [0.95, 400]], ["max", "min"]) \
        == [False, False, True]


def test_missing_and_nan_values_are_left_out_and_dominate_nothing():
    points = [[0.9, 500], [float("nan"), 10], [0.99, None], None, [0.5, math.inf],
              [0.8, 900]]
    # (0.99, None) would dominate (0.9, 500) were it counted; it is not.
    assert pareto_front(points, ["max", "min"]) == [True, False, False, False, False, False]


def test_three_objectives_match_the_definition():
    rng = random.Random(7)
    for _ in range(50):
        points = [[rng.choice([0.1, 0.2, 0.3]), rng.randint(1, 4), rng.random()]
                  for _ in range(rng.randint(1, 12))]
        directions = [rng.choice(["min", "max"]) for _ in range(3)]
        front = pareto_front(points, directions)
        assert front == _brute_front(points, directions)
        assert any(front)  # a finite set of usable points always has a front
        # No point on the front dominates another on it.
        on = [p for p, f in zip(points, front) if f]
        assert not any(dominates(a, b, directions) for a, b in itertools.permutations(on, 2))


def test_bad_direction_or_length_is_refused():
    with pytest.raises(ValueError, match="min or max"):
        pareto_front([[1, 2]], ["max", "up"])
    with pytest.raises(ValueError, match="2 values"):
        pareto_front([[1, 2, 3]], ["max", "min"])


def test_parse_objectives_directions():
    parsed = parse_objectives(["val_accuracy", "params", "latency", "val_loss:max"])
    assert parsed == [{"name": "val_accuracy", "direction": "max"},
                      {"name": "params", "direction": "min"},
                      {"name": "latency", "direction": "min"},
                      {"name": "val_loss", "direction": "max"}]
    assert parse_objectives([]) == []
    assert [column(o["name"]) for o in parsed] == ["val_accuracy", "params", "latency_ms",
                                                   "val_loss"]


@pytest.mark.parametrize("texts, words", [
    (["val_accuracy", "params:up"], "NAME:min or NAME:max"),
    (["val_accuracy", "val_accuracy:min"], "given twice"),
    (["params", "val_accuracy"], "drives the search"),
    (["val_accuracy", "not a metric"], "params or latency"),
    ([":max"], "Unknown objective"),
])
def test_parse_objectives_refuses(texts, words):
    with pytest.raises(ObjectiveError, match=words):
        parse_objectives(texts)


@pytest.mark.parametrize("objectives, fragments", [
    (["val_accuracy", "params:fewest"], ["takes NAME or NAME:min or NAME:max",
                                         "'params:fewest'"]),
    (["val_accuracy", "params", "params:max"], ["`--objective params` is given twice"]),
    (["latency", "val_accuracy"], ["The first `--objective` drives the search",
                                   "give it after one"]),
    (["val_accuracy", "speed?"], ["Unknown objective 'speed?'", "params or latency"]),
])
def test_tune_refuses_bad_objectives(cli, tmp_path, objectives, fragments):
    args = [arg for name in objectives for arg in ("--objective", name)]
    assert_one_line_error(cli("tune", "perceptron", *args, "--output", "s"), 2, *fragments)
    assert not (tmp_path / "s").exists()


def test_a_bad_objective_is_refused_before_tensorflow_starts(tmp_path):
    code = ("import sys\nfrom kerasdl.cli import main\n"
            "sys.argv = ['kerasdl', 'tune', 'perceptron', '--objective', 'val_accuracy', "
            "'--objective', 'params:fewest', '--output', 's']\n"
            "try:\n    main()\nexcept SystemExit as exit:\n"
            "    print(exit.code, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.split() == ["2", "False", "False"], result.stderr
    assert "Error: `--objective` takes NAME or NAME:min or NAME:max" in result.stderr
    assert not (tmp_path / "s").exists()


def test_front_frame_and_lacking_on_a_results_table():
    import pandas as pd

    from kerasdl.pareto import front_frame
    from kerasdl.pareto import lacking
    from kerasdl.pareto import objective_columns

    meta = {"objective": {"name": "val_accuracy", "direction": "max"},
            "objectives": [{"name": "val_accuracy", "direction": "max"},
                           {"name": "params", "direction": "min"},
                           {"name": "loss", "direction": "min"}],
            "search_space": [{"name": "units"}, {"name": "loss"}]}
    # A metric named like a hyperparameter (`loss`) is read from `metric_loss`.
    assert objective_columns(meta) == [("val_accuracy", "max"), ("params", "min"),
                                       ("metric_loss", "min")]
    frame = pd.DataFrame({
        "trial_id": ["0", "1", "2", "3", "4"],
        "status": ["COMPLETED", "IMPORTED", "COMPLETED", "PRUNED", "DAMAGED"],
        "units": [8, 16, 32, 4, 64], "loss": ["mse"] * 5,
        "val_accuracy": [0.8, 0.9, 0.7, 0.99, 0.99],
        "params": [100.0, 300.0, None, 10.0, 10.0],
        "metric_loss": [0.5, 0.4, 0.6, 0.1, 0.1],
        "pareto": [True, True, False, False, True]})
    front = front_frame(frame, meta)
    # Best accuracy first; a trial `show` found damaged since is not listed.
    assert list(front["trial_id"]) == ["1", "0"]
    assert list(front.columns[:5]) == ["trial_id", "status", "val_accuracy", "params",
                                       "metric_loss"]
    assert str(front["params"].dtype) == "Int64"
    left_out, gaps = lacking(frame, meta)
    assert list(left_out["trial_id"]) == ["2"] and gaps == ["params"]
