"""Fixtures of the fast tier (tests/conftest.py's `cli` and helpers apply here too)."""

import pytest

# Files of the other tier import their helpers with `from conftest import ...`; whichever
# conftest module Python finds first must have them.
from tests.conftest import assert_one_line_error  # noqa: F401
from tests.conftest import assert_trials_complete_and_unique  # noqa: F401
from tests.conftest import run_kerasdl  # noqa: F401
from tests.conftest import search_results  # noqa: F401

RECIPE = '''"""Tiny: a recipe written for a test.

A second line that describes it.

Parameters: 1,234 (the default model)
"""

import keras
import keras_tuner

TASK = "classification"
DEFAULTS = {"data": "xor", "epochs": 3, "batch_size": 16}
OBJECTIVE = "val_accuracy"
WIDTHS = [8, 16, 32]
MODES = {"fast": 1, "slow": 2}


def build_model(hp, spec):
    units = hp.Int("units", 4, 64, step=4, default=8)
    rate = hp.Float("learning_rate", min_value=1e-4, max_value=1e-1, sampling="log")
    width = hp.Choice("width", WIDTHS)
    mode = hp.Choice("mode", list(MODES), default="slow")
    hp.Boolean("batch_norm")
    hp.Fixed("head_epochs", 2)
    hp.Int("units", 1, 2)  # a second call of the same name: the first one counts
    return keras.Sequential([keras.layers.Dense(units)])


def make_pipeline(hp, spec):
    return None
'''


@pytest.fixture
def recipe_folder(tmp_path, monkeypatch):
    """A recipes folder holding `tiny.py` (above), which `kerasdl.registry` reads."""
    from kerasdl import registry

    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "tiny.py").write_text(RECIPE, encoding="utf-8")
    (folder / "_private.py").write_text("X = 1\n", encoding="utf-8")
    monkeypatch.setattr(registry, "recipes_dir", lambda: folder)
    return folder
