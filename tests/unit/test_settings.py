"""Settings: defaults < config file < command line, and the checks of every value."""

import json

import pytest

from kerasdl import settings
from kerasdl.data import Splits
from kerasdl.errors import UsageError


def test_resolve_layers_defaults_config_and_cli():
    defaults = {"epochs": 5, "batch_size": 32, "data": "digits", "set": {"units": "8"}}
    config = {"epochs": 7, "seed": 3, "set": {"units": "16", "rate": "0.1"}}
    cli = {"epochs": 9, "batch_size": None, "set": {"dropout": "0.2"}}
    resolved = settings.resolve(defaults, config, cli)
    assert resolved["epochs"] == 9  # the command line wins
    assert resolved["batch_size"] == 32  # None on the command line leaves the default
    assert resolved["seed"] == 3  # the config file beats the built-in default
    assert resolved["data"] == "digits"
    assert resolved["set"] == {"units": "16", "rate": "0.1", "dropout": "0.2"}  # merged
    assert resolved["validation_split"] == 0.2 and resolved["split_seed"] == 1337


def test_resolve_without_layers_gives_the_defaults():
    resolved = settings.resolve(None)
    assert resolved["seed"] == settings.DEFAULT_SEED
    assert resolved["set"] == {}


@pytest.mark.parametrize("key,value", [
    ("epochs", 0), ("epochs", -3), ("epochs", 2.5), ("epochs", True), ("batch_size", "32"),
    ("window", 0), ("horizon", -1), ("train_examples", 0), ("early_stopping", 1.5),
    ("steps_per_execution", 0), ("keep_best", "yes"), ("device", "tpu"),
    ("strategy", "ring"), ("balance", "smote"), ("seed", -1), ("split_seed", 1.5),
    ("validation_split", 0.5), ("test_split", 0), ("validation_split", "0.1"),
    ("image_size", [32]), ("image_size", 0), ("image_size", [32, "x"]), ("channels", 2),
    # YAML `true` and 1 are equal in Python, but neither is what the other setting means.
    ("channels", True), ("keep_best", 1), ("keep_best", 0),
])
def test_check_names_the_setting_and_the_received_value(key, value):
    with pytest.raises(UsageError) as error:
        settings.resolve({}, None, {key: value})
    message = str(error.value)
    assert f"`{key}`" in message, message
    assert "Received:" in message and str(value) in message.split("Received:")[1], message


def test_check_normalizes_image_size_and_classes(tmp_path):
    resolved = settings.resolve({}, None, {"image_size": 48, "classes": "3, 5,,7",
                                           "exclude_classes": "cat"})
    assert resolved["image_size"] == [48, 48]
    assert resolved["classes"] == ["3", "5", "7"]
    assert resolved["exclude_classes"] == ["cat"]


def test_weights_must_be_an_existing_h5_file(tmp_path):
    with pytest.raises(UsageError, match="weights=.*missing.h5"):
        settings.resolve({}, None, {"weights": str(tmp_path / "missing.h5")})
    other = tmp_path / "base.bin"
    other.write_bytes(b"x")
    with pytest.raises(UsageError, match="weights="):
        settings.resolve({}, None, {"weights": str(other)})
    good = tmp_path / "base.h5"
    good.write_bytes(b"x")
    assert settings.resolve({}, None, {"weights": str(good)})["weights"] == str(good.resolve())
    assert settings.resolve({}, None, {"weights": "imagenet"})["weights"] == "imagenet"


def test_read_config_json_and_yaml(tmp_path):
    json_file = tmp_path / "run.json"
    json_file.write_text(json.dumps({"epochs": 4, "set": {"units": 8}}))
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("epochs: 6\nimage_size: [32, 40]\nset:\n  units: 16\n")
    assert settings.read_config(json_file) == {"epochs": 4, "set": {"units": 8}}
    assert settings.read_config(yaml_file) == {"epochs": 6, "image_size": [32, 40],
                                               "set": {"units": 16}}
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    assert settings.read_config(empty) == {}


def test_read_config_refuses_unknown_keys_listing_the_valid_ones(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("epochs: 3\nepoch: 4\nlr: 0.1\n")
    with pytest.raises(UsageError) as error:
        settings.read_config(path)
    message = str(error.value)
    assert "'epoch'" in message and "'lr'" in message and "run.yaml" in message
    assert "Valid keys:" in message and "batch_size" in message


@pytest.mark.parametrize("name,text,fragment", [
    ("broken.json", '{"epochs": 3,', "Malformed config file"),
    ("broken.yaml", "epochs: [3\n", "Malformed config file"),
    ("list.yaml", "- 1\n- 2\n", "must hold a mapping"),
    ("set.json", '{"set": ["units=3"]}', "`set`"),
])
def test_read_config_names_a_damaged_file(tmp_path, name, text, fragment):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UsageError) as error:
        settings.read_config(path)
    assert fragment in str(error.value) and name in str(error.value)


def test_read_config_missing_file(tmp_path):
    with pytest.raises(UsageError, match="Config file not found: .*nope.json"):
        settings.read_config(tmp_path / "nope.json")


def _splits(train, shape):
    spec = {"num_examples": {"train": train}, "input_shape": shape}
    return Splits(train=None, validation=None, test=None, spec=spec)


def test_check_fits_refuses_a_batch_larger_than_the_training_set():
    with pytest.raises(UsageError) as error:
        settings.check_fits({"batch_size": 101, "data": "mine.csv"}, _splits(100, [4]))
    assert "batch_size=101" in str(error.value) and "100" in str(error.value)
    settings.check_fits({"batch_size": 100}, _splits(100, [4]))  # equal is fine
    # With --train-examples a large batch is one step an epoch, not an error.
    settings.check_fits({"batch_size": 101, "train_examples": 10}, _splits(100, [4]))


def test_check_fits_refuses_images_that_cannot_fit_in_memory():
    splits = _splits(1000, [32, 32, 3])
    # 1000 cached images of 256x256x3 float32 (768 KiB each) are about 0.75 GiB.
    with pytest.raises(UsageError) as error:
        settings.check_fits({"batch_size": 32, "image_size": [256, 256]}, splits,
                            memory=2 ** 29)
    message = str(error.value)
    assert "256x256" in message and "0.5 GiB is available" in message, message
    settings.check_fits({"batch_size": 32, "image_size": [256, 256]}, splits, memory=2 ** 32)
    # Not cached: only the batches count, which fit in half a GiB.
    settings.check_fits({"batch_size": 32, "image_size": [256, 256]}, splits, cached=False,
                        memory=2 ** 29)


SPACE = [{"name": "head_epochs", "type": "Int", "min_value": 1, "max_value": 20},
         {"name": "units", "type": "Int", "min_value": 1, "max_value": 99}]


def test_check_epoch_parameters_refuses_a_phase_longer_than_training():
    with pytest.raises(UsageError) as error:
        settings.check_epoch_parameters({"epochs": 3, "set": {"head_epochs": "5"}}, SPACE)
    message = str(error.value)
    assert "head_epochs=5" in message and "[1, 3]" in message and "epochs=3" in message
    settings.check_epoch_parameters({"epochs": 5, "set": {"head_epochs": "5"}}, SPACE)
    settings.check_epoch_parameters({"epochs": 3, "set": {"units": "50"}}, SPACE)


def test_check_data_refuses_missing_files_and_target_on_images(tmp_path):
    with pytest.raises(UsageError, match="Data not found: .*nothing.csv.*digits"):
        settings.check_data({"data": str(tmp_path / "nothing.csv")})
    with pytest.raises(UsageError, match="--target"):
        settings.check_data({"data": "digits", "target": "label"})
    folder = tmp_path / "images"
    folder.mkdir()
    with pytest.raises(UsageError, match="image folder"):
        settings.check_data({"data": str(folder), "target": "label"})
    settings.check_data({"data": "auto_mpg", "target": "mpg"})


def test_a_csv_target_is_checked_against_its_header_before_tensorflow(tmp_path):
    path = tmp_path / "wine.csv"
    path.write_text("alcohol,ash,kind\n12.1,2.3,a\n13.0,2.1,b\n")
    with pytest.raises(UsageError, match="Target column 'nosuch' not found.*alcohol, ash, kind"):
        settings.check_data({"data": str(path), "target": "nosuch"})
    with pytest.raises(UsageError, match="needs `--target COLUMN`.*alcohol, ash, kind"):
        settings.check_data({"data": str(path)}, {"task": "classification", "search_space": []})
    settings.check_data({"data": str(path), "target": "kind"},
                        {"task": "classification", "search_space": []})
    # A series needs no target: forecasting predicts its columns.
    settings.check_data({"data": str(path)}, {"task": "forecasting", "search_space": []})


def test_the_recipes_default_batch_above_a_small_data_set_is_a_note_not_an_error(capsys):
    class Train:
        def cardinality(self):
            return 24

    small = Splits(train=Train(), validation=None, test=None,
                   spec={"num_examples": {"train": 24}, "input_shape": [8, 8, 1]})
    settings.check_fits({"batch_size": 32, "data": "photos"}, small, memory=2**34,
                        default_batch_size=32)
    assert "default batch size 32 is more than the 24 training examples" in capsys.readouterr().err
    with pytest.raises(UsageError, match="at most the number of training examples"):
        settings.check_fits({"batch_size": 64, "data": "photos"}, small, memory=2**34,
                            default_batch_size=32)


def test_target_with_embedded_data_must_be_one_of_its_columns():
    # A silently ignored --target would train on another column than the one asked for.
    with pytest.raises(UsageError, match=r"`--target` applies to a CSV file.*'xor' is an "
                                         r"embedded data set whose columns are x1, x2, label"):
        settings.check_data({"data": "xor", "target": "risk"})
    with pytest.raises(UsageError, match="'patterns' is an embedded data set with its own"):
        settings.check_data({"data": "patterns", "target": "label"})
    settings.check_data({"data": "auto_mpg", "target": "horsepower"})
    settings.check_data({"data": "diabetes", "target": "bmi"})


@pytest.mark.parametrize("name", ["xor", "blobs", "digits64", "imbalanced", "auto_mpg",
                                  "diabetes"])
def test_embedded_columns_are_those_the_loader_builds(name):
    from kerasdl.data import sources

    frame, _, _ = sources._embedded_frame(name, {})
    assert settings.embedded_columns(name) == [str(column) for column in frame.columns]


def test_embedded_series_columns_are_those_the_loader_builds():
    from kerasdl.data import series

    assert settings.embedded_columns("seasonal") == list(series.seasonal_frame().columns)


def test_a_text_regression_target_is_a_usage_error_with_the_classifier_hint(tmp_path):
    path = tmp_path / "clinic.csv"
    path.write_text("age,risk,visits\n30,high,2\n41,low,3\n55,high,1\n")
    info = {"task": "regression", "search_space": [], "name": "regression"}
    with pytest.raises(UsageError, match=r"'risk' must be numeric for regression. Received: "
                                         r"'high'. A classifier recipe such as perceptron"):
        settings.check_data({"data": str(path), "target": "risk"}, info)
    settings.check_data({"data": str(path), "target": "visits"}, info)
    # Classifiers take the same text column.
    settings.check_data({"data": str(path), "target": "risk"},
                        {"task": "classification", "search_space": [], "name": "perceptron"})


def test_a_csv_input_read_with_the_wrong_separator_names_the_right_one(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("pid;age;target\n1;30;0\n2;60;1\n")
    with pytest.raises(UsageError, match=r"read with the separator ',' has the one column "
                                         r"'pid;age;target' \(the header reads as one column: "
                                         r"pass --sep ';'\); the run's columns are age, target"):
        settings.check_csv_input(path, None, ["age", "target"])
    settings.check_csv_input(path, ";", ["age", "target"])
    tabs = tmp_path / "tabs.csv"
    tabs.write_text("age\ttarget\n30\t0\n")
    with pytest.raises(UsageError, match=r"pass --sep '\\t'"):
        settings.check_csv_input(tabs, ";", ["age", "target"])
    assert settings.normalise_sep("tab") == "\t" and settings.normalise_sep(None) is None
    with pytest.raises(UsageError, match="`sep` must be one character"):
        settings.normalise_sep(";;")
