"""One contract test over every recipe (DESIGN.md, "The recipe contract")."""

import inspect
import json
import os
import subprocess
import sys

import keras_tuner
import pytest

from kerasdl import registry

RECIPES = registry.list_recipes()
# Runs each recipe file given as __main__ where `import kerasdl` fails, as in a user's
# project; one process for all (each process pays TensorFlow's start-up), each demo's
# stdout and error written to the JSON file named first.
STANDALONE = """
import contextlib, gc, io, json, runpy, sys, traceback
sys.modules['kerasdl'] = None
results = {}
for path in sys.argv[2:]:
    stdout = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout):
            runpy.run_path(path, run_name='__main__')
        error = None
    except SystemExit as stop:  # a script's exit status: 0 or None is success
        error = None if stop.code in (None, 0) else traceback.format_exc()
    except Exception:
        error = traceback.format_exc()
    results[path] = {'stdout': stdout.getvalue(), 'error': error}
    with open(sys.argv[1], 'w') as file:
        json.dump(results, file)
    import keras
    keras.backend.clear_session()
    gc.collect()
"""


def test_registry_finds_the_recipes():
    assert {"autoencoder", "cnn", "gan", "lstm", "mobilenet", "regression",
            "vgg16"} <= set(RECIPES)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_contract(name):
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

    # The default model on the default data (built twice for the seed, trained a step
    # through the recipe's own pipeline and `fit`, saved and reloaded in safe mode with
    # the same answers, its search space and parameter count against the header, each
    # hook called): `kerasdl check` runs all of it, once per recipe, in
    # test_check.py::test_every_shipped_recipe_passes_the_check.


@pytest.fixture(scope="module")
def demo_results(tmp_path_factory):
    """Each recipe's copy run as a script in one process: path -> stdout and error."""
    folder = tmp_path_factory.mktemp("demos")
    paths = []
    for name in RECIPES:
        paths.append(folder / f"{name}.py")
        paths[-1].write_text(registry.recipe_source(name))
    report = folder / "results.json"
    result = subprocess.run([sys.executable, "-c", STANDALONE, str(report), *map(str, paths)],
                            cwd=folder, capture_output=True, text=True, timeout=300 * len(paths),
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    results = json.loads(report.read_text()) if report.exists() else {}
    return {name: results.get(str(path), {"error": f"the demo process ended "
                                                   f"({result.returncode}) before it: "
                                                   f"{result.stderr[-3000:]}"})
            for name, path in zip(RECIPES, paths)}


# One worker runs them all (the module fixture runs once per process).
@pytest.mark.xdist_group("demos")
@pytest.mark.parametrize("name", RECIPES)
def test_recipe_demo_runs_standalone(name, demo_results):
    """The `__main__` demo of a copied recipe runs where kerasdl cannot be imported."""
    result = demo_results[name]
    assert result["error"] is None, result["error"][-3000:]
    assert result["stdout"].strip().splitlines()[-1]
