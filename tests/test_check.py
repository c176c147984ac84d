"""`kerasdl check`: every shipped recipe keeps the contract; each broken rule is named."""

import json

import pytest

from kerasdl import registry
from kerasdl.check import check_recipe

# A small recipe that keeps the contract (recipes/README.md); the tests below break it
# one rule at a time.
GOOD = '''"""Tiny MLP

A test's own recipe: a small MLP on xor.

Default data: xor.
Result: none measured.

Usage:
    kerasdl train ./tiny.py
"""

import keras
import keras_tuner
import numpy as np
import tensorflow as tf

TASK = "classification"
DEFAULTS = {"data": "xor", "epochs": 2, "batch_size": 16}
OBJECTIVE = "val_accuracy"


def make_pipeline(ds, spec, hp, training, batch_size=16):
    if training:
        ds = ds.shuffle(1000)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def build_model(hp, spec):
    units = hp.Int("units", 4, 64, step=4, default=8)
    model = keras.Sequential([keras.Input(shape=spec["input_shape"]),
                              keras.layers.Dense(units, activation="relu", name="hidden"),
                              keras.layers.Dense(spec["num_classes"], activation="softmax",
                                                 name="predictions")], name="tiny")
    model.compile(optimizer=keras.optimizers.Adam(hp.Float("learning_rate", 1e-4, 1e-1,
                                                           sampling="log", default=1e-2)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


if __name__ == "__main__":
    x = np.random.default_rng(0).uniform(-1, 1, (200, 2)).astype("float32")
    y = (x[:, 0] * x[:, 1] > 0).astype("int32")
    spec = {"input_shape": [2], "num_classes": 2}
    hp = keras_tuner.HyperParameters()
    model = build_model(hp, spec)
    model.fit(make_pipeline(tf.data.Dataset.from_tensor_slices((x, y)), spec, hp, True),
              epochs=2, verbose=0)
    print("trained")
'''


def write(tmp_path, text, name="tiny.py"):
    path = tmp_path / name
    path.write_text(text)
    return path


def violated(report):
    return {item["check"]: item["message"] for item in report["violations"]}


@pytest.mark.parametrize("name", registry.list_recipes())
def test_every_shipped_recipe_passes_the_check(name, monkeypatch):
    """The one pass over each shipped recipe's default model (test_contract.py reads the
    rest of the contract from the source): built, trained a step, saved and reloaded."""
    import keras
    import numpy as np

    histories = []
    fit = keras.Model.fit

    def recorded_fit(self, *args, **kwargs):  # the real fit; its history kept to read
        histories.append(fit(self, *args, **kwargs))
        return histories[-1]

    monkeypatch.setattr(keras.Model, "fit", recorded_fit)
    report = check_recipe(name, steps=1)
    assert report["passed"], report["violations"]
    assert names_are_distinct(report), report["checks"]
    checks = {item["check"] for item in report["checks"]}
    # The model was really built, trained, saved and reloaded; the header's parameter
    # count is the default model's; the recipe imports only what a copy may.
    assert {"default model", "training", "save and reload", "search space", "seed",
            "header parameters", "imports"} <= checks
    for hook in registry.recipe_info(name)["hooks"]:
        assert f"hook {hook}" in checks, hook
    # Every value of the training step's history (losses and metrics) is finite; a `fit`
    # hook may return something else (gan: its score), so the histories of Keras' own fit.
    recorded = [history.history for history in histories if history.history]
    assert recorded
    for values in recorded:
        assert all(np.isfinite(value[-1]) for value in values.values()), values


def test_a_good_recipe_file_passes(tmp_path):
    report = check_recipe(str(write(tmp_path, GOOD)))
    assert report["passed"], report["violations"]
    assert names_are_distinct(report), report["checks"]
    assert report["recipe"].endswith("tiny.py")


@pytest.mark.parametrize("edit, check, fragment", [
    # Required names and the TASK vocabulary.
    (lambda s: s.replace('OBJECTIVE = "val_accuracy"\n', "").replace(
        "def make_pipeline(", "def pipeline("), "contract names", "lacks OBJECTIVE, make_pipeline"),
    (lambda s: s.replace('TASK = "classification"', 'TASK = "clasification"'),
     "contract names", "TASK must be one of classification"),
    (lambda s: s.replace('TASK = "classification"', 'TASK = "generation"'),
     "contract names", "a generation recipe defines generate"),
    # The header and the demo.
    (lambda s: s.replace("Usage:\n    kerasdl train ./tiny.py\n", ""), "header", "lacks Usage:"),
    (lambda s: s[:s.index('if __name__ == "__main__":')], "demo", "__main__"),
    # Signatures of the required functions and of a declared hook.
    (lambda s: s.replace("def build_model(hp, spec):", "def build_model(spec, hp):"),
     "build_model", "must take (hp, spec)"),
    (lambda s: s.replace("training, batch_size=16)", "training)"), "make_pipeline",
     "batch_size"),
    (lambda s: s + "\n\ndef fit(hp, model, train_data, epochs=1):\n"
                   "    return model.fit(train_data, epochs=epochs)\n",
     "hook fit", "initial_epoch"),
    # What the model does.
    (lambda s: s.replace("    model.compile(", "    return model\n    model.compile("),
     "default model", "compiled"),
    (lambda s: s.replace('units = hp.Int("units"', 'name = "units"\n    units = hp.Int(name'),
     "search space", "units"),
    (lambda s: s.replace("    return model\n\n\nif", "    hidden = model.get_layer('hidden')\n"
                         "    hidden.kernel.assign(np.random.default_rng().normal(\n"
                         "        size=hidden.kernel.shape))  # seeded from the clock\n"
                         "    return model\n\n\nif"),
     "seed", "different initial weights"),
    (lambda s: s.replace("keras.layers.Dense(units, activation=\"relu\", name=\"hidden\")",
                         "Scale(name=\"hidden\")").replace(
        "TASK =", "class Scale(keras.layers.Layer):\n    def call(self, x):\n"
                  "        return x * 2.0\n\n\nTASK ="),
     "save and reload", "register_keras_serializable"),
    (lambda s: s + "\n\ndef image_grids(model):\n    return [model]\n",
     "hook image_grids call", "{name: (images, title)}"),
])
def test_a_broken_recipe_file_names_the_rule(tmp_path, edit, check, fragment):
    report = check_recipe(str(write(tmp_path, edit(GOOD))))
    assert not report["passed"]
    found = violated(report)
    assert check in found, found
    assert fragment in found[check], found[check]


def test_the_check_command_exits_1_and_prints_json(cli, tmp_path):
    path = write(tmp_path, GOOD.replace("Usage:\n    kerasdl train ./tiny.py\n", "")
                 .replace("def build_model(hp, spec):", "def build_model(spec, hp):"))
    result = cli("check", path.name, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert set(violated(report)) == {"header", "build_model"}
    assert "Violation: build_model: build_model must take (hp, spec)" in result.stderr

    good = write(tmp_path, GOOD, "good.py")
    result = cli("check", str(good))
    assert result.exit_code == 0, result.stderr
    assert "save and reload" in result.stdout and "VIOLATED" not in result.stdout


def test_check_of_a_missing_file_or_name_is_a_usage_error(cli, tmp_path):
    from conftest import assert_one_line_error

    assert_one_line_error(cli("check", "./nowhere.py"), 2, "Recipe file not found")
    assert_one_line_error(cli("check", "cnnn"), 2, "Unknown recipe: 'cnnn'")


def names_are_distinct(report):
    names = [item["check"] for item in report["checks"]]
    return len(names) == len(set(names))


def test_a_stale_parameter_count_warns_in_a_file_of_your_own(cli, tmp_path):
    # The default model: 2*8+8 + 8*2+2 = 42 parameters; the header says 99.
    stale = GOOD.replace("Result: none measured.\n", "Result: none measured.\n\n"
                         "Parameters: 99 (the default model on xor)\n")
    report = check_recipe(str(write(tmp_path, stale)))
    assert report["passed"], report["violations"]
    assert names_are_distinct(report), report["checks"]
    rows = {item["check"]: item for item in report["checks"]}
    assert rows["header"]["message"] == ""  # the header's fields are one row, the count another
    assert rows["header parameters"]["message"] == (
        "warning: the header says 99 parameters; the default model has 42: update the "
        "header's `Parameters:` line")

    result = cli("check", "./tiny.py", "--steps", "1")
    assert result.exit_code == 0, result.stderr
    row = [line.split() for line in result.stdout.splitlines()
           if line.startswith("header parameters")][0]
    assert row[2] == "warning"
    assert "Warning: header parameters: the header says 99 parameters" in result.stderr

    fixed = check_recipe(str(write(tmp_path, stale.replace("Parameters: 99", "Parameters: 42"))))
    assert {item["check"]: item["message"] for item in fixed["checks"]}["header parameters"] == ""


def test_a_stale_parameter_count_in_a_shipped_recipe_is_a_violation(monkeypatch):
    read = registry.recipe_info

    def stale(name):  # perceptron's header as it would read after an unrecorded edit
        info = read(name)
        return {**info, "parameters": info["parameters"] + 1}

    monkeypatch.setattr(registry, "recipe_info", stale)
    report = check_recipe("perceptron", steps=1)
    actual = read("perceptron")["parameters"]
    assert violated(report) == {"header parameters": (
        f"the header says {actual + 1:,} parameters; the default model has {actual:,}: update "
        "the header's `Parameters:` line")}
    assert names_are_distinct(report), report["checks"]


def test_a_failed_check_points_to_the_installed_contract(cli, tmp_path):
    path = write(tmp_path, GOOD.replace("def build_model(hp, spec):", "def build_model(spec, hp):"))
    result = cli("check", str(path))
    assert result.exit_code == 1
    assert f"The recipe contract: {registry.contract_path()}" in result.stderr
    assert registry.contract_path().read_text().startswith("# The recipe contract")
