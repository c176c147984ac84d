"""Bad input: a one-line error naming the problem, the right exit code, nothing changed."""

import json

import pytest

from conftest import assert_one_line_error
from conftest import run_kerasdl
from kerasdl import registry


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("a,b,price\n1,2,3\n4,5,6\n7,8,9\n1,1,1\n2,2,2\n3,3,3\n4,4,4\n5,5,5\n")
    return path


def _snapshot(root):
    return {str(path): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


CASES = [
    # (args, exit code, fragments of the message)
    (["train", "cnnn"], 2, ["Unknown recipe: 'cnnn'", "Valid recipes: {recipes}"]),
    (["show", "nope"], 2, ["Unknown recipe: 'nope'", "Valid recipes: {recipes}"]),
    (["copy", "nope", "x.py"], 2, ["Unknown recipe: 'nope'"]),
    (["train", "cnn", "--set", "filterz=32"], 2,
     ["Unknown hyperparameter: 'filterz'", "Valid names: augment, batch_norm, conv_blocks"]),
    (["train", "cnn", "--set", "filters=abc"], 2,
     ["`filters` must be an integer in [16, 128]", "Received: filters=abc"]),
    (["train", "cnn", "--set", "filters=1000"], 2, ["`filters` must be an integer in [16, 128]"]),
    (["train", "cnn", "--set", "dropout_rate=0.9"], 2, ["`dropout_rate` must be a number in [0.0, 0.6]"]),
    (["train", "regression", "--set", "activation=swish"], 2,
     ["`activation` must be one of relu, gelu, tanh"]),
    (["train", "cnn", "--set", "augment=maybe"], 2, ["`augment` must be true or false"]),
    (["train", "cnn", "--set", "filters"], 2, ["`--set` takes NAME=VALUE"]),
    (["train", "cnn", "--epochs", "0"], 2, ["`epochs` must be a positive integer", "epochs=0"]),
    (["train", "cnn", "--epochs", "-3"], 2, ["`epochs` must be a positive integer"]),
    (["train", "cnn", "--batch-size", "0"], 2, ["`batch_size` must be a positive integer"]),
    (["train", "cnn", "--epochs", "two"], 2, ["'two' is not a valid integer"]),
    (["train", "regression", "--data", "missing.csv"], 2,
     ["Data not found: 'missing.csv'", "an embedded data set"]),
    (["train", "regression", "--data", "{csv}", "--target", "cost"], 2,
     ["Target column 'cost' not found", "Columns: a, b, price"]),
    (["train", "regression", "--data", "{csv}"], 2, ["needs `--target COLUMN`"]),
    (["train", "regression", "--data", "digits"], 1, ["holds images", "needs tabular data"]),
    (["train", "cnn", "--data", "auto_mpg"], 1, ["holds a table; an image classification "
                                                   "recipe needs image data"]),
    (["train", "perceptron", "--data", "digits"], 1, ["holds images; a classification recipe "
                                                      "needs tabular data with classes (xor"]),
    (["train", "cnn", "--data", "{empty_folder}"], 1, ["No usable images in folder"]),
    (["train", "cnn", "--data", "tfds:not_a_dataset_xyz"], 1,
     ["Unknown TFDS data set: 'not_a_dataset_xyz'"]),
    (["train", "cnn", "--output", "{existing_file}"], 2,
     ["`--output`", "is an existing file"]),
    (["train", "cnn", "--output", "{existing_run}"], 2, ["already holds files"]),
    (["train", "cnn", "--config", "{bad_yaml}"], 2, ["Malformed config file"]),
    (["train", "cnn", "--config", "{bad_key}"], 2, ["Unknown setting(s) 'epoch'", "Valid keys: data"]),
    (["train", "cnn", "--config", "{bad_epochs}"], 2, ["`epochs` must be a positive integer"]),
    (["train", "cnn", "--config", "nowhere.yaml"], 2, ["Config file not found"]),
    (["evaluate", "no_such_run"], 2, ["Run folder, model file or artifact not found: 'no_such_run'"]),
    (["evaluate", "{corrupt_model}"], 1, ["is damaged", "not a whole .keras archive"]),
    (["predict", "{existing_run}", "{csv}"], 1, ["holds no model.keras"]),
    (["predict", "{existing_run}", "x.csv"], 2, ["Input not found: 'x.csv'"]),
    (["train", "regression", "--data", "{strings_csv}", "--target", "price"], 2,
     ["Target column 'price' must be numeric for regression", "Received: 'cheap'",
      "A classifier recipe such as perceptron takes class targets"]),
    (["train", "regression", "--data", "{nan_csv}", "--target", "price"], 1,
     ["Missing values in column(s) 'a' (1)"]),
    (["train", "lstm", "--data", "{csv}", "--target", "nope"], 2, ["Target column 'nope' not found"]),
    (["tune", "regression", "--objective", "val_mae:up", "--output", "s"], 2,
     ["`--objective` takes NAME or NAME:min or NAME:max"]),
    (["export", "no_such_run"], 2, ["Run folder or model file not found"]),
    (["export", "{existing_run}", "--format", "pdf"], 2, ["'pdf' is not one of"]),
    (["generate", "no_such_run", "--num", "0", "--output", "x"], 2, ["0 is not in the range x>=1"]),
    (["predict", "no_such_run", "x.csv"], 2, ["Run folder or model file not found"]),
    (["train", "--resume", "{existing_run}"], 1, ["Not a run directory (no config.json)"]),
    (["train"], 2, ["Give a RECIPE to train"]),
    (["train", "cnn", "--bogus"], 2, ["No such option '--bogus'", "kerasdl train --help"]),
]


@pytest.mark.parametrize("args,code,fragments", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input(cli, tmp_path, csv_file, args, code, fragments):
    (tmp_path / "empty_folder").mkdir()
    (tmp_path / "existing_file").write_text("keep me\n")
    (tmp_path / "existing_run").mkdir()
    (tmp_path / "existing_run" / "notes.txt").write_text("keep me too\n")
    (tmp_path / "bad.yaml").write_text("epochs: [1, 2\n")
    (tmp_path / "bad_key.yaml").write_text("epoch: 3\n")
    (tmp_path / "bad_epochs.json").write_text(json.dumps({"epochs": -1}))
    (tmp_path / "corrupt.keras").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "strings.csv").write_text("a,price\n" + "1,2\n" * 8 + "3,cheap\n")
    (tmp_path / "nan.csv").write_text("a,price\n" + "1,2\n" * 8 + ",3\n")
    names = {"csv": csv_file, "empty_folder": tmp_path / "empty_folder",
             "existing_file": tmp_path / "existing_file",
             "existing_run": tmp_path / "existing_run", "bad_yaml": tmp_path / "bad.yaml",
             "bad_key": tmp_path / "bad_key.yaml", "bad_epochs": tmp_path / "bad_epochs.json",
             "corrupt_model": tmp_path / "corrupt.keras", "strings_csv": tmp_path / "strings.csv",
             "nan_csv": tmp_path / "nan.csv"}
    args = [arg.format(**names) for arg in args]
    fragments = [text.replace("{recipes}", ", ".join(registry.list_recipes())) for text in fragments]
    before = _snapshot(tmp_path)

    result = cli(*args)

    assert_one_line_error(result, code, *fragments)
    assert result.stdout == ""
    assert _snapshot(tmp_path) == before, "a failed command changed files"
    assert not (tmp_path / "runs").exists(), "a failed command left a run directory"


def test_predict_rejects_csv_that_does_not_match_the_model(cli, tmp_path):
    assert cli("train", "regression", "--epochs", "1", "--output", tmp_path / "run").exit_code == 0
    (tmp_path / "strings.csv").write_text("cylinders,displacement,horsepower,weight,acceleration,"
                                          "model_year,origin\nfour,1,1,1,1,1970,USA\n")
    result = cli("predict", tmp_path / "run", tmp_path / "strings.csv")
    assert_one_line_error(result, 1, "Column 'cylinders' must be numeric", "Received: 'four'")
    (tmp_path / "gaps.csv").write_text("cylinders,displacement,horsepower,weight,acceleration,"
                                       "model_year,origin\n4,,90,2000,15,1975,Japan\n")
    result = cli("predict", tmp_path / "run", tmp_path / "gaps.csv")
    assert_one_line_error(result, 1,
                          "Missing values in column(s) 'displacement' (1) at data row 1 (line 2)")
    (tmp_path / "image.png").write_bytes(b"not an image")
    result = cli("predict", tmp_path / "run", tmp_path / "image.png")
    assert_one_line_error(result, 1, "takes tabular rows; give a .csv file")
    out = tmp_path / "out.csv"
    out.write_text("precious\n")
    (tmp_path / "ok.csv").write_text("cylinders,displacement,horsepower,weight,acceleration,"
                                     "model_year,origin\n4,100,90,2000,15,1975,Japan\n")
    result = cli("predict", tmp_path / "run", tmp_path / "ok.csv", "--output", out)
    assert_one_line_error(result, 2, "exists; pass --force")
    assert out.read_text() == "precious\n"


def test_unreadable_image_in_predict(cli, tmp_path):
    assert cli("train", "cnn", "--epochs", "1", "--set", "conv_blocks=1",
               "--output", tmp_path / "run").exit_code == 0
    (tmp_path / "broken.png").write_bytes(b"\x89PNG truncated")
    result = cli("predict", tmp_path / "run", tmp_path / "broken.png")
    assert_one_line_error(result, 1, "Cannot decode image")


def test_errors_in_a_real_process_have_no_traceback(tmp_path):
    result = run_kerasdl("train", "regression", "--set", "units=7", cwd=tmp_path)
    assert_one_line_error(result, 2, "`units` must be an integer in [16, 256]")
    assert not (tmp_path / "runs").exists()
