"""Recipes read as text (ast): names, headers, defaults, objective and search space."""

import sys

import pytest

from kerasdl import registry
from kerasdl.errors import RecipeError


def test_recipe_info_reads_a_recipe_source(recipe_folder):
    assert registry.list_recipes() == ["tiny"]  # _private.py is not a recipe
    info = registry.recipe_info("tiny")
    assert info["title"] == "Tiny: a recipe written for a test."
    assert info["description"] == "A second line that describes it."
    assert info["task"] == "classification"
    assert info["defaults"] == {"data": "xor", "epochs": 3, "batch_size": 16}
    assert info["objective"] == {"name": "val_accuracy", "direction": "max"}
    assert info["parameters"] == 1234
    assert info["has_fit"] is False
    space = {row["name"]: row for row in info["search_space"]}
    assert list(space) == ["units", "learning_rate", "width", "mode", "batch_norm",
                           "head_epochs"]  # source order, the repeated name once
    assert space["units"] == {"type": "Int", "name": "units", "min_value": 4, "max_value": 64,
                              "step": 4, "sampling": "linear", "default": 8}
    assert space["learning_rate"]["sampling"] == "log"
    assert space["learning_rate"]["default"] == 1e-4  # Keras Tuner's: the minimum
    assert space["width"]["values"] == [8, 16, 32] and space["width"]["default"] == 8
    assert space["mode"]["values"] == ["fast", "slow"] and space["mode"]["default"] == "slow"
    assert space["batch_norm"]["default"] is False
    assert space["head_epochs"]["default"] == 2


def test_recipe_info_reads_an_objective_with_a_direction(recipe_folder):
    source = (recipe_folder / "tiny.py").read_text()
    (recipe_folder / "tiny.py").write_text(source.replace(
        'OBJECTIVE = "val_accuracy"', 'OBJECTIVE = keras_tuner.Objective("val_mae", "min")'
    ) + "\n\ndef fit(model, data):\n    return None\n")
    info = registry.recipe_info("tiny")
    assert info["objective"] == {"name": "val_mae", "direction": "min"}
    assert info["has_fit"] is True


def test_unknown_recipe_lists_the_valid_names(recipe_folder):
    with pytest.raises(RecipeError) as error:
        registry.recipe_info("tine")
    assert str(error.value) == "Unknown recipe: 'tine'. Did you mean 'tiny'? Valid recipes: tiny"


def test_an_unknown_recipe_far_from_every_name_gets_no_guess(recipe_folder):
    with pytest.raises(RecipeError) as error:
        registry.recipe_info("zzzzzz")
    assert str(error.value) == "Unknown recipe: 'zzzzzz'. Valid recipes: tiny"


def test_shipped_recipes_are_read_without_tensorflow():
    names = registry.list_recipes()
    assert {"cnn", "perceptron", "regression", "lstm", "gan"} <= set(names)
    for name in names:
        info = registry.recipe_info(name)
        assert info["task"] != "?" and info["objective"]["direction"] in ("min", "max"), name
        assert isinstance(info["defaults"], dict) and info["defaults"].get("data"), name
        assert info["search_space"], name
        for row in info["search_space"]:
            assert row["type"] in registry.HP_METHODS and isinstance(row["name"], str)
            if row["type"] in ("Int", "Float") and isinstance(row["min_value"], (int, float)):
                assert row["min_value"] <= row["default"] <= row["max_value"], (name, row)
            if row["type"] == "Choice" and isinstance(row["values"], list):
                assert row["default"] in row["values"], (name, row)
        assert registry.recipe_source(name).startswith('"""')


def test_data_sets_are_read_from_the_source():
    from kerasdl.data.sources import EMBEDDED

    sets = registry.data_sets()
    assert sets == EMBEDDED
    assert sets["digits"][0] == "images" and sets["auto_mpg"][0] == "tabular"


def test_load_recipe_checks_the_contract(recipe_folder, monkeypatch):
    (recipe_folder / "broken.py").write_text('"""Broken."""\nTASK = "regression"\n')
    (recipe_folder / "__init__.py").write_text("")
    monkeypatch.setattr(registry, "PACKAGE", "kerasdl_unit_recipes")
    monkeypatch.syspath_prepend(str(recipe_folder.parent))
    monkeypatch.delitem(sys.modules, "kerasdl_unit_recipes", raising=False)
    recipe_folder.rename(recipe_folder.parent / "kerasdl_unit_recipes")
    monkeypatch.setattr(registry, "recipes_dir",
                        lambda: recipe_folder.parent / "kerasdl_unit_recipes")
    try:
        with pytest.raises(RecipeError) as error:
            registry.load_recipe("broken")
    finally:
        for name in [name for name in sys.modules if name.startswith("kerasdl_unit_recipes")]:
            del sys.modules[name]
    assert "lacks DEFAULTS, OBJECTIVE, build_model, make_pipeline" in str(error.value)
