"""Usage errors the CLI answers before TensorFlow starts: exit 2, one `Error:` line."""

import subprocess
import sys

import pytest

from kerasdl.artifacts import check_export_output
from kerasdl.errors import UsageError
from tests.conftest import assert_one_line_error


@pytest.mark.parametrize("args,fragments", [
    (["train", "cnn", "--epochs", "0"], ["`epochs` must be a positive integer",
                                         "epochs=0"]),
    (["train", "cnn", "--batch-size", "-4"], ["`batch_size`", "batch_size=-4"]),
    (["train", "cnn", "--epochs", "many"], ["'many' is not a valid integer"]),
    (["train", "cnn", "--device", "tpu"], ["'tpu' is not one of"]),
    (["train", "cnn", "--set", "nosuch=1"], ["Unknown hyperparameter: 'nosuch'",
                                             "Valid names:"]),
    (["train", "cnn", "--set", "learning_rate"], ["NAME=VALUE"]),
    (["train", "cnn", "--data", "missing.csv"], ["Data not found: 'missing.csv'", "digits"]),
    (["train", "cnn", "--target", "label"], ["`--target` names a column of a CSV file"]),
    (["train", "cnn", "--config", "missing.yaml"], ["Config file not found"]),
    (["train", "cnnn"], ["Unknown recipe: 'cnnn'", "Valid recipes:", "perceptron"]),
    (["train"], ["Give a RECIPE to train"]),
    (["train", "cnn", "--resume", "somewhere"], ["`--resume RUN_DIR` takes no recipe"]),
    (["tune", "cnn", "--strategy", "multiworker"], ["`--strategy multiworker` is for"]),
    (["show", "nope"], ["Unknown recipe: 'nope'"]),
    (["evaluate", "missing-run"], ["not found", "missing-run"]),
    (["export", "missing-run"], ["Run folder or model file not found: 'missing-run'"]),
    (["serve", "missing-run"], ["Run folder or artifact not found"]),
    (["compare", "perceptron", "--vary", "typo=1,2"], ["Unknown name in `--vary`: 'typo'"]),
    (["compare", "perceptron", "--vary", "batch_size=8", "--vary", "batch_size=16"],
     ["`--vary` names 'batch_size' twice"]),
    (["frobnicate"], ["No such command 'frobnicate'"]),
])
def test_usage_errors_exit_2_with_one_line(cli, args, fragments):
    assert_one_line_error(cli(*args), 2, *fragments)


def test_a_bad_config_value_names_it(cli, tmp_path):
    (tmp_path / "run.yaml").write_text("epochs: 3\nbatch: 8\n")
    assert_one_line_error(cli("train", "perceptron", "--config", "run.yaml"), 2,
                          "Unknown setting(s) 'batch'", "Valid keys:")
    (tmp_path / "run.yaml").write_text("epochs: -1\n")
    assert_one_line_error(cli("train", "perceptron", "--config", "run.yaml"), 2,
                          "epochs=-1")


def test_train_refuses_an_output_folder_that_holds_files(cli, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    assert_one_line_error(cli("train", "perceptron", "--epochs", "1", "--output", "out"), 2,
                          "already holds files")
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("output,fmt,fragment", [
    ("model.onnx", "tflite", "--format tflite must end with .tflite"),
    ("model.keras", "onnx", "--format onnx must end with .onnx"),
    ("out/model.tflite", "saved_model", "is a folder, not a .tflite file"),
    ("model.keras", "saved_model", "(for that file give --format keras)"),
])
def test_export_output_suffix_must_match_the_format(output, fmt, fragment):
    with pytest.raises(UsageError) as error:
        check_export_output(output, fmt)
    assert fragment in str(error.value) and output in str(error.value)


@pytest.mark.parametrize("output,fmt", [
    ("model.tflite", "tflite"), ("m.onnx", "onnx"), ("m.keras", "keras"),
    ("exported", "saved_model"), (None, "tflite"),
])
def test_export_output_that_matches_is_accepted(output, fmt):
    check_export_output(output, fmt)


def test_export_suffix_mismatch_through_the_cli(cli, tmp_path):
    (tmp_path / "run").mkdir()
    result = cli("export", "run", "--format", "tflite", "--output", "run/model.onnx")
    assert_one_line_error(result, 2, "must end with .tflite")
    assert not (tmp_path / "run" / "model.onnx").exists()


def test_copy_to_a_folder_a_py_file_and_never_over_a_file(cli, tmp_path):
    from kerasdl import registry

    source = registry.recipe_source("perceptron")
    result = cli("copy", "perceptron", "mine")  # no .py suffix: a folder, created
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "mine/perceptron.py"
    assert (tmp_path / "mine" / "perceptron.py").read_text() == source
    result = cli("copy", "perceptron", "edited.py")
    assert result.exit_code == 0 and (tmp_path / "edited.py").read_text() == source
    (tmp_path / "edited.py").write_text("# my edits\n")
    assert_one_line_error(cli("copy", "perceptron", "edited.py"), 2, "exists", "--force")
    assert (tmp_path / "edited.py").read_text() == "# my edits\n"
    assert cli("copy", "perceptron", "edited.py", "--force").exit_code == 0
    assert (tmp_path / "edited.py").read_text() == source
    (tmp_path / "notes").write_text("x")
    assert_one_line_error(cli("copy", "perceptron", "notes"), 2,
                          "is a file without a .py suffix")
    assert_one_line_error(cli("copy", "nope", "x.py"), 2, "Unknown recipe: 'nope'")


def test_a_usage_error_answers_without_importing_tensorflow(tmp_path):
    """In a real process: the error comes before TensorFlow is imported."""
    code = ("import sys\nfrom kerasdl.cli import main\n"
            "sys.argv = ['kerasdl', 'train', 'cnn', '--set', 'learning_rate=7']\n"
            "try:\n    main()\nexcept SystemExit as exit:\n"
            "    print(exit.code, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.split() == ["2", "False", "False"], result.stderr
    assert "Error: `learning_rate` must be a number in" in result.stderr


def test_bare_kerasdl_prints_its_help_on_stderr_not_an_error_line():
    result = subprocess.run([sys.executable, "-m", "kerasdl"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("Usage: kerasdl") and "Error:" not in result.stderr
    assert "train " in result.stderr and "See 'kerasdl --help'" not in result.stderr
