"""Your own recipe through the whole CLI: copy, edit, then run it by its path."""

import json

import keras
import pytest
from conftest import assert_one_line_error


def copied_recipe(cli, tmp_path):
    """`kerasdl copy regression`, edited: other default data, a wider default layer."""
    assert cli("copy", "regression", "house_prices.py").exit_code == 0
    path = tmp_path / "house_prices.py"
    source = path.read_text()
    edited = (source
              .replace('DEFAULTS = {"data": "auto_mpg", "epochs": 500, "batch_size": 32, '
                       '"early_stopping": 50}',
                       'DEFAULTS = {"data": "diabetes", "epochs": 3, "batch_size": 32}')
              .replace('hp.Int("units", 16, 256, step=16, default=32)',
                       'hp.Int("units", 16, 256, step=16, default=48)')
              .replace('name="regression")', 'name="house_prices")'))
    assert edited.count("diabetes") > source.count("diabetes")
    assert "default=48" in edited and 'name="house_prices"' in edited
    path.write_text(edited)
    return path


def test_a_copied_and_edited_recipe_trains_tunes_and_exports_from_its_path(cli, tmp_path):
    path = copied_recipe(cli, tmp_path)

    shown = cli("show", "./house_prices.py", "--json")
    assert shown.exit_code == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["name"] == "house_prices" and info["defaults"]["data"] == "diabetes"
    assert {row["name"]: row["default"] for row in info["search_space"]}["units"] == 48

    trained = cli("train", "./house_prices.py", "--epochs", "2", "--output", "run")
    assert trained.exit_code == 0, trained.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["recipe"] == str(path.resolve()) and config["spec"]["source"] == "diabetes"
    # The edited recipe built the model, not the shipped one.
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert model.name == "house_prices" and model.get_layer("dense1").units == 48
    assert config["hyperparameters"]["units"] == 48

    # Later commands find the file through the run's config, from another folder too.
    evaluated = cli("evaluate", tmp_path / "run", "--json")
    assert evaluated.exit_code == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["examples"] > 0
    exported = cli("export", "run", "--format", "keras", "--output", "house.keras")
    assert exported.exit_code == 0, exported.stderr
    assert keras.saving.load_model(tmp_path / "house.keras").name == "house_prices"

    tuned = cli("tune", "./house_prices.py", "--max-trials", "2", "--epochs", "1",
                "--output", "search", "--json")
    assert tuned.exit_code == 0, tuned.stderr
    meta = json.loads((tmp_path / "search" / "search.json").read_text())
    assert meta["recipe"] == str(path.resolve())
    best = json.loads((tmp_path / "search" / "best" / "config.json").read_text())
    assert best["recipe"] == str(path.resolve())
    assert keras.saving.load_model(tmp_path / "search" / "best" / "model.keras").name \
        == "house_prices"


def test_a_recipe_file_benches_compares_and_checks(cli, tmp_path):
    path = copied_recipe(cli, tmp_path)
    benched = cli("bench", "./house_prices.py", "--steps", "2", "--repeats", "1", "--json")
    assert benched.exit_code == 0, benched.stderr
    assert json.loads(benched.stdout)["train_samples_per_second"] > 0

    compared = cli("compare", "./house_prices.py", "--vary", "units=16,32", "--epochs", "1",
                   "--output", "comparison", "--json")
    assert compared.exit_code == 0, compared.stderr
    variants = json.loads(compared.stdout)["variants"]
    assert len(variants) == 2

    # The edits made the header's parameter count stale: in a file of your own, check warns
    # with the fix and passes; `show` labels the count as the header's, not the model's.
    checked = cli("check", "./house_prices.py", "--json", "--steps", "1")
    assert checked.exit_code == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["passed"] and report["violations"] == []
    assert {item["check"]: item["message"] for item in report["checks"]}[
        "header parameters"] == ("warning: the header says 1,419 parameters; the default model "
                                 "has 2,940: update the header's `Parameters:` line")
    shown = cli("show", "./house_prices.py")
    assert "Parameters stated by the header: 1,419" in shown.stdout
    assert "Default model: 1,419" not in shown.stdout
    counted = json.loads(cli("show", "./house_prices.py", "--params", "--json").stdout)
    assert counted["total"] == 2940
    source = path.read_text()
    path.write_text(source.replace("Parameters: 1,419", "Parameters: 2,940"))
    checked = cli("check", "./house_prices.py", "--json", "--steps", "1")
    assert checked.exit_code == 0, checked.stderr
    assert {item["check"]: item["message"] for item in json.loads(checked.stdout)["checks"]}[
        "header parameters"] == ""


BROKEN = '''"""Broken

It has a task and defaults only.
"""

TASK = "regression"
DEFAULTS = {"data": "diabetes"}
'''


@pytest.mark.parametrize("command", [
    ("train", "./broken.py", "--epochs", "1"),
    ("tune", "./broken.py", "--max-trials", "1"),
    ("bench", "./broken.py"),
    ("compare", "./broken.py", "--vary", "units=1,2"),
    ("show", "./broken.py"),
])
def test_a_recipe_file_that_breaks_the_contract_is_one_line(cli, tmp_path, command):
    (tmp_path / "broken.py").write_text(BROKEN)
    assert_one_line_error(cli(*command), 2, "'./broken.py' breaks the recipe contract",
                          "it lacks OBJECTIVE, build_model, make_pipeline")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "searches").exists()


def test_a_missing_recipe_file_and_copy_of_a_path(cli, tmp_path):
    assert_one_line_error(cli("train", "./nowhere.py"), 2, "Recipe file not found: "
                          "'./nowhere.py'")
    (tmp_path / "mine.py").write_text(BROKEN)
    assert_one_line_error(cli("copy", "./mine.py", "out/"), 2, "copies a shipped recipe")
    assert not (tmp_path / "out").exists()
