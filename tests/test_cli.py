"""Metadata commands (list, show, copy) and the promise that they import no TensorFlow."""

import json
import subprocess
import sys

from conftest import ROOT
from conftest import run_kerasdl
from kerasdl import registry

NO_TENSORFLOW = """
import sys
from kerasdl.cli import main
sys.argv = ["kerasdl", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
heavy = [name for name in ("tensorflow", "keras", "keras_tuner") if name in sys.modules]
print("HEAVY:", ",".join(heavy), file=sys.stderr)
"""


def _heavy_modules(*args, cwd):
    result = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, *args], capture_output=True,
                            text=True, cwd=cwd, timeout=120)
    line = [line for line in result.stderr.splitlines() if line.startswith("HEAVY:")][0]
    return line.split(":", 1)[1].strip()


def test_metadata_commands_import_no_tensorflow(tmp_path):
    assert _heavy_modules("--help", cwd=tmp_path) == ""
    assert _heavy_modules("list", cwd=tmp_path) == ""
    assert _heavy_modules("show", "cnn", cwd=tmp_path) == ""
    assert _heavy_modules("copy", "cnn", str(tmp_path / "copied.py"), cwd=tmp_path) == ""
    assert (tmp_path / "copied.py").is_file()


def test_list_shows_every_recipe(cli):
    result = cli("list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "TASK", "DEFAULT", "DATA", "DESCRIPTION"]
    assert [line.split()[0] for line in lines[1:]] == registry.list_recipes()
    assert "digits" in result.stdout and "auto_mpg" in result.stdout
    listed = json.loads(cli("list", "--json").stdout)
    assert {entry["name"]: entry["task"] for entry in listed}["cnn"] == "image_classification"


def test_show_prints_header_defaults_search_space_and_parameters(cli):
    result = cli("show", "cnn")
    assert result.exit_code == 0
    text = result.stdout
    assert text.startswith("Convolutional image classifier")
    assert "epochs: 40" in text
    # The header's figure, labelled as such: show reads the source and builds no model.
    assert "Parameters stated by the header: 66,218 (on digits;" in text
    assert "`kerasdl show cnn --params`" in text and "Default model:" not in text
    rows = {line.split()[0]: line.split() for line in text.splitlines()
            if line.startswith("  ") and len(line.split()) >= 3}
    assert rows["filters"][1:] == ["Int", "16", "..", "128", "step", "16", "32"]
    assert rows["learning_rate"][1:] == ["Float", "0.0001", "..", "0.01", "(log)", "0.002"]
    assert rows["augment"][1:] == ["Boolean", "true,", "false", "False"]
    info = json.loads(cli("show", "regression", "--json").stdout)
    activation = [row for row in info["search_space"] if row["name"] == "activation"][0]
    assert activation["values"] == ["relu", "gelu", "tanh"] and activation["default"] == "relu"


def test_copy_to_folder_and_file_never_overwrites(cli, tmp_path):
    folder = tmp_path / "src" / "models"
    folder.mkdir(parents=True)
    result = cli("copy", "cnn", folder)
    assert result.exit_code == 0, result.stderr
    copied = folder / "cnn.py"
    assert copied.read_text() == registry.recipe_source("cnn")

    copied.write_text("# my edits\n")
    again = cli("copy", "cnn", folder)
    assert again.exit_code == 2 and "--force" in again.stderr
    assert copied.read_text() == "# my edits\n"
    assert cli("copy", "cnn", folder, "--force").exit_code == 0
    assert copied.read_text() == registry.recipe_source("cnn")

    named = tmp_path / "my_regression.py"
    assert cli("copy", "regression", named).exit_code == 0
    assert named.read_text() == registry.recipe_source("regression")


def test_root_cli_py_runs_from_a_checkout():
    result = subprocess.run([sys.executable, "cli.py", "list"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "regression" in result.stdout


def test_console_entry_point_in_a_real_process(tmp_path):
    result = run_kerasdl("--version", cwd=tmp_path)
    assert result.returncode == 0 and "kerasdl" in result.stdout


EXIT_AND_MODULES = """
import sys
from kerasdl.cli import main
sys.argv = ["kerasdl", *sys.argv[1:]]
code = 0
try:
    main()
except SystemExit as done:
    code = done.code
heavy = [name for name in ("tensorflow", "keras", "keras_tuner") if name in sys.modules]
print("EXIT:", code, "HEAVY:", ",".join(heavy), file=sys.stderr)
"""


def _exit_and_modules(*args, cwd):
    """`(exit code, heavy modules imported, the Error: line)` of `kerasdl ARGS`."""
    result = subprocess.run([sys.executable, "-c", EXIT_AND_MODULES, *map(str, args)],
                            capture_output=True, text=True, cwd=cwd, timeout=120)
    last = [line for line in result.stderr.splitlines() if line.startswith("EXIT:")][0]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return int(last.split()[1]), last.split("HEAVY:")[1].strip(), errors[0]


def test_wrong_targets_separators_and_folders_are_usage_errors_before_tensorflow(tmp_path):
    (tmp_path / "clinic.csv").write_text("age,risk,visits\n30,high,2\n41,low,3\n55,high,1\n")
    (tmp_path / "comma.csv").write_text("pid,age,target\n1,30,0\n2,60,1\n")
    run = tmp_path / "semirun"  # a run trained on a ';' file: its recorded reading settings
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"spec": {
        "task": "classification", "target": "target", "columns": {"age": "number"},
        "csv": {"sep": ";"}}}))
    cases = [
        (("train", "perceptron", "--target", "risk"),
         "`--target` applies to a CSV file"),
        (("train", "regression", "--data", "clinic.csv", "--target", "risk"),
         "A classifier recipe such as perceptron takes class targets"),
        (("list", "--runs", "nowhere"), "Runs folder 'nowhere' not found"),
        (("predict", run, "comma.csv"), "(the header reads as one column: pass --sep ',')"),
        (("evaluate", run, "--data", "comma.csv"),
         "(the header reads as one column: pass --sep ',')"),
        (("evaluate", run, "--sep", ","), "`--sep` says how to read a CSV file given with"),
        (("predict", run, tmp_path, "--sep", ";"), "`--sep` says how to read a CSV file"),
    ]
    for args, fragment in cases:
        code, heavy, line = _exit_and_modules(*args, cwd=tmp_path)
        assert (code, heavy) == (2, ""), (args, line)
        assert fragment in line, line
