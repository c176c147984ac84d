"""The recipe contract's declarations, read and checked without training (recipes/README.md)."""

import json
from pathlib import Path

import pytest

from kerasdl import pretrained
from kerasdl import registry
from kerasdl import settings
from kerasdl.errors import DataError
from kerasdl.errors import RecipeError
from kerasdl.errors import UsageError

# Keeps the names of the contract; nothing here is called, so nothing imports keras.
MINIMAL = '''"""Mine

A user's recipe.
"""

TASK = "regression"
DEFAULTS = {"data": "auto_mpg", "epochs": 2}
OBJECTIVE = "val_loss"


def make_pipeline(ds, spec, hp, training, batch_size=32):
    return ds.batch(batch_size)


def build_model(hp, spec):
    hp.Int("units", 4, 64, default=8)
'''


def recipe_file(tmp_path, text=MINIMAL, name="mine.py"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_recipe_file_is_loaded_by_its_path(tmp_path):
    path = recipe_file(tmp_path)
    module = registry.load_recipe(str(path))
    assert module.TASK == "regression" and module.build_model.__module__ == module.__name__
    assert registry.load_recipe(str(path)) is module  # imported once per process
    assert registry.recipe_reference(str(path)) == str(path.resolve())
    assert registry.recipe_name(str(path)) == "mine" and registry.recipe_name("cnn") == "cnn"
    assert registry.hook_of(module, "fit") is None


def test_a_recipe_file_is_read_as_text(tmp_path):
    path = recipe_file(tmp_path, MINIMAL + "\n\ndef fit(hp, model, train_data, **kwargs):\n"
                       "    return None\n\nPRETRAINED = {'layer': 'base', 'weights_files': "
                       "['x_*.h5']}\n")
    info = registry.recipe_info(str(path))
    assert info["name"] == "mine" and info["task"] == "regression"
    assert info["hooks"] == ["fit"] and info["has_fit"] is True
    assert info["pretrained"] == {"layer": "base", "weights_files": ["x_*.h5"]}
    assert [row["name"] for row in info["search_space"]] == ["units"]


@pytest.mark.parametrize("text, fragment", [
    (MINIMAL.replace('OBJECTIVE = "val_loss"\n', "").replace("def build_model", "def build"),
     "it lacks OBJECTIVE, build_model"),
    (MINIMAL.replace('TASK = "regression"', 'TASK = "regresion"'),
     "TASK must be one of classification, image_classification"),
    (MINIMAL.replace('TASK = "regression"', 'TASK = "reconstruction"'),
     "a reconstruction recipe defines reconstruction_target"),
    (MINIMAL.replace('TASK = "regression"', 'TASK = "generation"'),
     "a generation recipe defines generate"),
    (MINIMAL + "\nimport not_a_module_anywhere\n",
     "fails to import: ModuleNotFoundError: No module named 'not_a_module_anywhere'"),
    (MINIMAL + "\ndef broken(:\n", "fails to import at line"),
])
def test_a_recipe_file_that_breaks_the_contract_is_named(tmp_path, text, fragment):
    path = recipe_file(tmp_path, text, name=f"broken_{abs(hash(text))}.py")
    with pytest.raises(RecipeError) as error:
        registry.load_recipe(str(path))
    assert fragment in str(error.value)
    assert error.value.exit_code == 2


def test_a_missing_or_non_python_recipe_file_is_refused(tmp_path):
    with pytest.raises(RecipeError, match="Recipe file not found: './nowhere.py'"):
        registry.recipe_path("./nowhere.py")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(RecipeError, match="must be a .py file"):
        registry.recipe_path(str(tmp_path / "notes.txt"))
    assert not registry.is_file_reference("cnn") and registry.is_file_reference("cnn.py")


def test_hook_names_are_the_contracts():
    with pytest.raises(ValueError, match="Valid hooks: fit, reconstruction_target"):
        registry.hook_of(object(), "sample")


def test_shipped_recipes_declare_what_they_offer():
    """The declarations the library reads instead of sniffing names and attributes."""
    info = {name: registry.recipe_info(name) for name in registry.list_recipes()}
    assert info["gan"]["hooks"] == ["fit", "generate", "serving_model"]
    assert set(info["rbm"]["hooks"]) == {"reconstruction_target", "image_grids"}
    assert set(info["autoencoder"]["hooks"]) == {"reconstruction_target", "image_grids"}
    for name in ("vgg16", "mobilenet"):
        assert info[name]["pretrained"]["layer"] == "base" and info[name]["has_fit"]
        assert "weights" in info[name]["defaults"]
    assert [name for name in info if info[name]["pretrained"]] == ["mobilenet", "vgg16"]
    assert all(info[name]["task"] in registry.TASKS for name in info)


def test_the_weights_files_a_recipe_declares_are_recorded(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    # MobileNetV3's weights are named `weights_mobilenet_v3_*`: the old name match
    # (`^(vgg16|mobilenet)`) never recorded them.
    v3 = folder / "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    v3.write_bytes(b"v3")
    (folder / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"vgg")
    patterns = registry.recipe_info("mobilenet")["pretrained"]["weights_files"]
    pretrained.verify_downloads(folder, patterns=patterns)
    assert list(json.loads((folder / pretrained.RECORD).read_text())) == [v3.name]
    v3.write_bytes(b"cut short")
    with pytest.raises(DataError, match="changed since kerasdl first used it"):
        pretrained.verify_downloads(folder, patterns=patterns)


def test_a_base_is_the_layer_the_recipe_declares():
    with pytest.raises(DataError, match="declares no pretrained base"):
        pretrained.base_model(object(), None)

    class Model:
        def get_layer(self, name):
            if name == "backbone":
                return "the base"
            raise ValueError(name)

    assert pretrained.base_model(Model(), {"layer": "backbone"}) == "the base"
    with pytest.raises(DataError, match="no layer 'base'"):
        pretrained.base_model(Model(), {"layer": "base"})


def test_weights_for_a_recipe_without_a_pretrained_base_is_a_usage_error():
    resolved = settings.resolve(registry.recipe_info("cnn")["defaults"], None,
                                {"weights": "imagenet"})
    with pytest.raises(UsageError, match="cnn has none. Received: --weights imagenet"):
        settings.check_data(resolved, registry.recipe_info("cnn"))
    resolved = settings.resolve(registry.recipe_info("vgg16")["defaults"], None,
                                {"weights": "none"})
    settings.check_data(resolved, registry.recipe_info("vgg16"))  # accepted


def test_the_contract_ships_with_the_recipes_and_errors_point_to_it(tmp_path, cli):
    import configparser
    import importlib.resources

    # Installed, the contract is package data of kerasdl.recipes (not a repository path).
    config = configparser.ConfigParser()
    config.read(Path(__file__).resolve().parents[2] / "setup.cfg")
    assert "README.md" in config["options.package_data"]["kerasdl.recipes"].split()
    packaged = importlib.resources.files("kerasdl.recipes").joinpath("README.md")
    assert packaged.is_file() and Path(str(packaged)) == registry.contract_path()
    assert registry.contract_path().read_text().startswith("# The recipe contract")

    path = recipe_file(tmp_path, MINIMAL.replace('OBJECTIVE = "val_loss"\n', ""))
    with pytest.raises(RecipeError) as error:
        registry.contract_info(str(path))
    assert f"see the recipe contract, {registry.contract_path()}" in str(error.value)

    copied = cli("copy", "regression", "mine2.py")
    assert copied.exit_code == 0
    assert "kerasdl check ./mine2.py" in copied.stderr
    assert str(registry.contract_path()) in copied.stderr
