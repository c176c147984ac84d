"""`kerasdl show RECIPE --params`: each layer's count by its formula equals Keras' own."""

import json

import keras_tuner
import pytest

from kerasdl import registry
from kerasdl import settings
from kerasdl.data import load_data
from kerasdl.params import parameter_rows

VARIANTS = [
    ("cnn", {}), ("regression", {}), ("gan", {}),
    ("lstm", {}), ("lstm", {"cell": "lstm"}), ("lstm", {"cell": "lstm", "bidirectional": True,
                                                        "num_layers": 2}),
    *[("autoencoder", {"variant": variant}) for variant in
      ("undercomplete", "sparse", "convolutional", "contractive", "variational")],
    ("mobilenet", {}), ("vgg16", {}),
]


@pytest.mark.parametrize("recipe,pins", VARIANTS, ids=[f"{r}-{p}" for r, p in VARIANTS])
def test_every_formula_matches_keras(recipe, pins):
    module = registry.load_recipe(recipe)
    resolved = settings.resolve(module.DEFAULTS)
    spec = {**load_data(resolved["data"], module.TASK, resolved).spec, "weights": "none"}
    hp = keras_tuner.HyperParameters()
    for name, value in pins.items():
        hp.Fixed(name, value)
    model = module.build_model(hp, spec)
    rows = parameter_rows(model)
    assert rows
    for row in rows:
        assert row["count"] == row["keras"], row
    assert sum(row["count"] for row in rows) == model.count_params()


def test_formulas_name_the_textbook_terms():
    module = registry.load_recipe("lstm")
    spec = load_data("seasonal", "forecasting", settings.resolve(module.DEFAULTS)).spec
    hp = keras_tuner.HyperParameters()
    hp.Fixed("cell", "lstm")
    rows = {row["type"]: row for row in parameter_rows(module.build_model(hp, spec))}
    # LSTM: 4 x (units x (inputs + units) + units), with 32 units and 1 input feature.
    assert rows["LSTM"]["formula"].startswith("4 gates x (32 units x (1 inputs + 32 units)")
    assert rows["LSTM"]["count"] == 4 * (32 * (1 + 32) + 32)
    assert rows["Dense"]["formula"] == "32 inputs x 1 units + 1 biases"


def test_show_params_command(cli):
    result = cli("show", "cnn", "--params")
    assert result.exit_code == 0, result.stderr
    assert "block1_conv1  Conv2D" in result.stdout
    assert "3 x 3 kernel x 1 in-channels x 32 filters" in result.stdout
    assert "Total: 66,218 by the formulas; Keras counts 66,218" in result.stdout
    data = json.loads(cli("show", "regression", "--params", "--json").stdout)
    assert data["total"] == registry.recipe_info("regression")["parameters"] and data["layers"][0]["formula"].endswith("biases")
