"""One contract test over every recipe (DESIGN.md, "The recipe contract")."""

import inspect
import os
import subprocess
import sys

import keras
import keras_tuner
import numpy as np
import pytest

from kerasdl import registry
from kerasdl import settings
from kerasdl.data import load_data
from kerasdl.hparams import describe

RECIPES = registry.list_recipes()
# Runs a recipe file as __main__ where `import kerasdl` fails, as in a user's project.
STANDALONE = (
    "import runpy, sys; sys.modules['kerasdl'] = None; "
    "runpy.run_path(sys.argv[1], run_name='__main__')"
)


def test_registry_finds_the_recipes():
    assert {"autoencoder", "cnn", "gan", "lstm", "mobilenet", "regression",
            "vgg16"} <= set(RECIPES)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_contract(name, tmp_path):
    recipe = registry.load_recipe(name)
    info = registry.recipe_info(name)
    source = registry.recipe_source(name)

    # The header: title, one-line description, default data, measured result, usage.
    assert info["title"] and info["description"]
    for field in ("Default data:", "Result:", "Parameters:", "Usage:"):
        assert field in info["doc"], f"{name}'s header lacks {field}"
    assert isinstance(recipe.DEFAULTS, dict) and "data" in recipe.DEFAULTS
    assert isinstance(recipe.OBJECTIVE, (str, keras_tuner.Objective))
    assert list(inspect.signature(recipe.build_model).parameters) == ["hp", "spec"]
    assert list(inspect.signature(recipe.make_pipeline).parameters)[:4] == [
        "ds", "spec", "hp", "training"]

    # Recipes import only keras, tensorflow, keras_tuner, numpy and the standard library.
    imported = {line.split()[1].split(".")[0] for line in source.splitlines()
                if line.startswith(("import ", "from "))}
    assert imported <= {"keras", "tensorflow", "keras_tuner", "numpy"} | set(sys.stdlib_module_names)

    # The default model from a fresh HyperParameters, on the default data.
    run_settings = settings.resolve(recipe.DEFAULTS)
    splits = load_data(recipe.DEFAULTS["data"], recipe.TASK, run_settings)
    if "weights" in recipe.DEFAULTS:  # no download here: the same model, random weights
        splits.spec = {**splits.spec, "weights": "none"}
    hp = keras_tuner.HyperParameters()
    model = recipe.build_model(hp, splits.spec)
    batches = recipe.make_pipeline(splits.train, splits.spec, hp, training=True, batch_size=8)
    assert model.optimizer is not None, "build_model must return a compiled model"
    assert model.count_params() == info["parameters"], "the header's parameter count is stale"

    # `kerasdl show` reads the search space from the source; it must be the real one.
    real = {row["name"]: row for row in describe(hp)}
    static = {row["name"]: row for row in info["search_space"]}
    assert set(real) == set(static)
    for key, row in real.items():
        assert static[key]["type"] == row["type"]
        assert static[key].get("default") == row["default"]

    # One training step through the recipe's own pipeline, then save and reload.
    history = model.fit(batches.take(1), epochs=1, verbose=0)
    assert history.history and all(np.isfinite(values[0]) for values in history.history.values())
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert_same_outputs(model, reloaded, next(iter(batches)))


def assert_same_outputs(model, reloaded, batch):
    """A reloaded model answers like the original: predictions, or samples for one seed."""
    if hasattr(model, "generate"):
        expected, actual = model.generate(16, seed=3), reloaded.generate(16, seed=3)
    else:
        x = batch[0] if isinstance(batch, tuple) else batch
        expected, actual = model.predict_on_batch(x), reloaded.predict_on_batch(x)
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_demo_runs_standalone(name, tmp_path):
    """The `__main__` demo of a copied recipe runs where kerasdl cannot be imported."""
    copied = tmp_path / f"{name}.py"
    copied.write_text(registry.recipe_source(name))
    result = subprocess.run([sys.executable, "-c", STANDALONE, str(copied)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1]
