"""`settings.from_options`: the one way from a command's shared options to its settings."""

import json

import pytest

from kerasdl import settings
from kerasdl.errors import UsageError

DEFAULTS = {"data": "xor", "epochs": 5, "batch_size": 32, "set": {"units": "8"}}


def _options(**given):
    """Option values as Click passes them when none is given, updated with `given`."""
    options = {name: None for name in settings.OPTION_SETTINGS}
    options.update({name: () for name in settings.REPEATABLE_OPTIONS})
    options.update(assignments=(), config_file=None)
    options.update(given)
    return options


def test_options_left_out_keep_the_defaults():
    resolved = settings.from_options(DEFAULTS, _options())
    assert resolved["data"] == "xor" and resolved["epochs"] == 5
    assert resolved["batch_size"] == 32 and resolved["set"] == {"units": "8"}
    # Repeatable options not repeated are no setting, not an empty list.
    assert all(resolved.get(name) is None for name in settings.REPEATABLE_OPTIONS)


def test_the_command_line_beats_the_config_file_which_beats_the_defaults(tmp_path):
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"epochs": 7, "seed": 3, "set": {"units": "16"}}))
    table = tmp_path / "rows.csv"
    table.write_text("id;name;x;y\n1;a;0.5;1\n2;b;0.7;0\n")
    resolved = settings.from_options(DEFAULTS, _options(
        epochs=9, config_file=str(config), assignments=("learning_rate=0.01",),
        data=str(table), target="y", sep="semicolon", drop=("id", "name"), image_size=8))
    assert resolved["epochs"] == 9  # the command line wins
    assert resolved["seed"] == 3  # the config file beats the built-in seed
    assert resolved["set"] == {"units": "16", "learning_rate": "0.01"}
    assert resolved["data"] == str(table) and resolved["target"] == "y"
    assert resolved["drop"] == ["id", "name"]  # a tuple of repeats becomes a list
    assert resolved["sep"] == ";"  # checked and normalised by `settings.check`
    assert resolved["image_size"] == [8, 8]


def test_a_missing_option_is_left_out_like_one_not_given():
    # `bench` has no --config, --epochs or CSV options: it passes only what it has.
    resolved = settings.from_options(DEFAULTS, {"data": None, "batch_size": 4,
                                                "assignments": ("units=4",)})
    assert resolved["batch_size"] == 4 and resolved["epochs"] == 5
    assert resolved["set"] == {"units": "4"}


@pytest.mark.parametrize("given,fragment", [
    ({"epochs": 0}, "`epochs` must be a positive integer"),
    ({"assignments": ("units",)}, "`--set` takes NAME=VALUE"),
    ({"data": "no-such-data-set"}, "no-such-data-set"),
    ({"config_file": "missing.yaml"}, "Config file not found"),
])
def test_a_bad_value_is_a_usage_error_naming_it(given, fragment):
    with pytest.raises(UsageError, match=fragment):
        settings.from_options(DEFAULTS, _options(**given))


@pytest.mark.parametrize("command", ["compare", "tune", "bench"])
def test_multiworker_is_for_train_only(command):
    with pytest.raises(UsageError, match=f"not `kerasdl {command}`"):
        settings.from_options(DEFAULTS, _options(strategy="multiworker"), command)
    resolved = settings.from_options(DEFAULTS, _options(strategy="multiworker"), "train")
    assert resolved["strategy"] == "multiworker"


def test_an_output_folder_that_holds_files_is_refused(tmp_path):
    (tmp_path / "old.txt").write_text("kept")
    with pytest.raises(UsageError):
        settings.from_options(DEFAULTS, _options(output=str(tmp_path)))
    assert (tmp_path / "old.txt").read_text() == "kept"
    new = tmp_path / "new"
    assert settings.from_options(DEFAULTS, _options(output=str(new)))["output"] == str(new)


def test_an_option_that_is_no_setting_is_a_programming_error():
    with pytest.raises(TypeError, match="vary"):
        settings.from_options(DEFAULTS, _options(vary=("units=1,2",)))


@pytest.mark.parametrize("recipe,given,named", [
    ("cnn", {}, "RECIPE"),
    (None, {"epochs": 3}, "--epochs"),
    (None, {"assignments": ("units=4",)}, "--set"),
    (None, {"exclude_classes": ("cat",)}, "--exclude-class"),
    (None, {"skip_bad_files": True}, "--skip-bad-files"),
])
def test_resume_takes_no_recipe_or_settings(recipe, given, named):
    with pytest.raises(UsageError, match="takes no recipe or settings") as raised:
        settings.check_resume(recipe, _options(**given))
    assert named in str(raised.value)


def test_resume_takes_device_options():
    settings.check_resume(None, _options(device="cpu", jit=False, strategy="default",
                                         mixed_precision=True, steps_per_execution=4))


def test_a_predict_input_is_checked_before_tensorflow(tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("id|x|y\n1|0.5|1\n")
    model = tmp_path / "model.keras"  # a model file: no run's columns to hold it against
    # The separator is normalised and returned; an ID column must be one of the header's.
    assert settings.check_run_input(model, rows, "pipe", id_column="id") == "|"
    with pytest.raises(UsageError, match="`--id-column` 'name' is not a column.*id, x, y"):
        settings.check_run_input(model, rows, "|", id_column="name")
    # A header that reads as one column under the default separator names the right one.
    with pytest.raises(UsageError, match="'|'"):
        settings.check_run_input(model, rows, None, target="y")
    # --sep and --id-column are for CSV files, not an image folder.
    with pytest.raises(UsageError, match="`--sep` says how to read a CSV file"):
        settings.check_run_input(model, tmp_path, ";")
    with pytest.raises(UsageError, match="is a folder"):
        settings.check_run_input(model, tmp_path, id_column="id")


def test_evaluate_takes_sep_only_with_data(tmp_path):
    with pytest.raises(UsageError, match="Give --data FILE.csv"):
        settings.check_scoring_data(tmp_path, None, None, ";")
    assert settings.check_scoring_data(tmp_path) is None
