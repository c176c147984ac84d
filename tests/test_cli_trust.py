"""A command line that scripts and people can trust (issue 15).

stdout carries results only, progress fits where it runs, exit codes are the ones the
README promises, `show` tells what the hypermodel builds, files follow the umask, and
damaged files are named as damaged.
"""

import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from conftest import assert_one_line_error
from conftest import run_kerasdl
from kerasdl import registry

NO_TENSORFLOW = """
import sys
from kerasdl.cli import main
sys.argv = ["kerasdl", *sys.argv[1:]]
code = 0
try:
    main()
except SystemExit as exit:
    code = exit.code
heavy = [name for name in ("tensorflow", "keras", "keras_tuner") if name in sys.modules]
print("HEAVY:", ",".join(heavy), "CODE:", code, file=sys.stderr)
"""


def _parses(stdout):
    """What a script reads from stdout: JSON, CSV, or one path. Returns the kind."""
    text = stdout.strip()
    assert text, "nothing on stdout"
    try:
        json.loads(text)
        return "json"
    except ValueError:
        pass
    lines = text.splitlines()
    if len(lines) == 1 and Path(lines[0]).exists():
        return "path"
    frame = pd.read_csv(io.StringIO(text))
    assert len(frame.columns) > 1 and len(frame) >= 1, text
    return "csv"


def test_every_command_prints_only_results_on_stdout(cli, tmp_path):
    """Every command, run the way a script runs it: stdout parses as JSON, CSV or a path."""
    seen = {}

    def run(*args, kind=None):
        result = cli(*args)
        assert result.exit_code == 0, result.stderr
        assert "\x1b[" not in result.stdout and "\x1b[" not in result.stderr
        found = _parses(result.stdout)
        if kind:
            assert found == kind, (args, result.stdout)
        seen[args[0]] = found
        return result

    assert json.loads(run("list", "--json").stdout)[0]["name"] == registry.list_recipes()[0]
    run("show", "cnn", "--json", kind="json")
    assert json.loads(run("check", "perceptron", "--steps", "1", "--json",
                          kind="json").stdout)["passed"]
    run("info", "--json", kind="json")
    run("copy", "perceptron", tmp_path / "copied", kind="path")

    trained = json.loads(run("train", "perceptron", "--epochs", "2", "--output",
                             tmp_path / "run", "--json", kind="json").stdout)
    assert trained["run"] == str(tmp_path / "run")
    assert set(trained["metrics"]["test"]) >= {"accuracy", "loss"}
    assert run("train", "perceptron", "--epochs", "1", "--output", tmp_path / "run2",
               kind="path").stdout.strip() == str(tmp_path / "run2")
    listed = json.loads(run("list", "--runs", tmp_path, "--json", kind="json").stdout)
    assert {entry["status"] for entry in listed} == {"completed"}
    metrics = json.loads(run("evaluate", tmp_path / "run", "--json", kind="json").stdout)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    pd.DataFrame({"x1": [0.5, -0.5], "x2": [0.5, 0.5]}).to_csv(tmp_path / "rows.csv",
                                                             index=False)
    predictions = pd.read_csv(io.StringIO(run("predict", tmp_path / "run", tmp_path / "rows.csv",
                                              kind="csv").stdout))
    assert len(predictions) == 2
    exported = json.loads(run("export", tmp_path / "run", "--format", "keras", "--json",
                              kind="json").stdout)
    assert exported["passed"] is True
    figures = json.loads(run("bench", "perceptron", "--steps", "2", "--repeats", "1", "--json",
                             kind="json").stdout)
    assert figures["train_samples_per_second"] > 0

    compared = json.loads(run("compare", "perceptron", "--vary", "units=4,8", "--epochs", "1",
                              "--output", tmp_path / "compared", "--json", kind="json").stdout)
    assert len(compared["variants"]) == 2
    table = cli("compare", "perceptron", "--vary", "units=4,8", "--epochs", "1",
                "--output", tmp_path / "compared2")
    lines = table.stdout.strip().splitlines()  # the table, then the folder
    assert lines[-1] == str(tmp_path / "compared2") and lines[0].startswith("VARIANT")
    assert any("units=8" in line for line in lines[1:-1]), lines

    stable = ("--set", "learning_rate=0.01", "--set", "optimizer=adam")  # no NaN trial
    searched = json.loads(run("tune", "perceptron", "--max-trials", "1", "--epochs", "1",
                              *stable, "--output", tmp_path / "search", "--json",
                              kind="json").stdout)
    assert searched["directory"] == str(tmp_path / "search")
    assert "accuracy" in searched["best_run"]["metrics"]["test"]
    # Run again, Keras Tuner says "Reloading Tuner from ...": on stderr, not stdout.
    again = run("tune", "perceptron", "--max-trials", "1", "--epochs", "1", *stable,
                "--output", tmp_path / "search", "--no-retrain", kind="path")
    assert again.stdout.strip() == str(tmp_path / "search")
    assert "Reloading Tuner" in again.stderr
    run("show", tmp_path / "search", "--json", kind="json")

    run("train", "gan", "--epochs", "1", "--train-examples", "64", "--output",
        tmp_path / "gan", kind="path")
    run("generate", tmp_path / "gan", "--num", "2", "--output", tmp_path / "images",
        kind="path")
    # serve runs until SIGTERM: its whole stdout is the one URL line.
    server = subprocess.Popen([sys.executable, "-m", "kerasdl", "serve", tmp_path / "run",
                               "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        url = server.stdout.readline().strip()
        with urllib.request.urlopen(url, timeout=60) as response:
            assert json.loads(response.read())["model_version_status"]
    finally:
        server.send_signal(signal.SIGTERM)
        rest, stderr = server.communicate(timeout=60)
    assert server.returncode == 0, stderr
    assert url.startswith("http://127.0.0.1:") and rest == "", (url, rest)
    seen["serve"] = "url"

    commands = set(registry_commands())
    assert commands <= set(seen) | {"list"}, commands - set(seen)


def registry_commands():
    from kerasdl.cli import cli as group

    return list(group.commands)


def test_files_a_user_keeps_follow_the_umask(cli, tmp_path):
    old = os.umask(0o022)
    try:
        assert cli("copy", "cnn", tmp_path / "src" / "models").exit_code == 0
        copied = tmp_path / "src" / "models" / "cnn.py"
        assert stat.S_IMODE(copied.stat().st_mode) == 0o644
        from kerasdl import runs

        runs.write_json(tmp_path / "report.json", {"a": 1})
        assert stat.S_IMODE((tmp_path / "report.json").stat().st_mode) == 0o644
        os.umask(0o077)
        runs.write_text(tmp_path / "private.txt", "x")
        assert stat.S_IMODE((tmp_path / "private.txt").stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]


def test_copy_to_a_new_folder_without_py_suffix_creates_it(cli, tmp_path):
    result = cli("copy", "cnn", "src/models")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "src" / "models").is_dir()
    assert (tmp_path / "src" / "models" / "cnn.py").read_text() == registry.recipe_source("cnn")
    assert result.stdout.strip() == str(Path("src/models/cnn.py"))
    (tmp_path / "notes").write_text("mine\n")
    assert_one_line_error(cli("copy", "cnn", "notes"), 2, "without a .py suffix")
    assert (tmp_path / "notes").read_text() == "mine\n"


def test_show_objective_and_choices_read_as_values(cli):
    text = cli("show", "autoencoder").stdout
    assert "Objective: val_mse (minimised)" in text and "keras_tuner.Objective" not in text
    row = [line.split(None, 2) for line in text.splitlines() if line.startswith("  variant ")]
    assert row[0][2].startswith("undercomplete, sparse, denoising, convolutional, contractive, "
                                "variational")
    mobilenet = cli("show", "mobilenet").stdout
    assert "v2, v3_small, v3_large" in mobilenet
    perceptron = json.loads(cli("show", "perceptron", "--json").stdout)
    optimizer = [p for p in perceptron["search_space"] if p["name"] == "optimizer"][0]
    assert optimizer["values"][0] == "sgd" and optimizer["default"] == "adam"
    units = [p for p in perceptron["search_space"] if p["name"] == "units"][0]
    assert units["default"] == 8


@pytest.mark.parametrize("name", registry.list_recipes())
def test_show_matches_the_built_hypermodel(name):
    """`show`'s search space is what building the recipe's hypermodel declares."""
    import keras
    import keras_tuner

    from kerasdl import settings
    from kerasdl.data import load_data
    from kerasdl.hparams import describe
    from kerasdl.tuning import objective_from

    recipe = registry.load_recipe(name)
    resolved = settings.resolve(recipe.DEFAULTS)
    splits = load_data(resolved["data"], recipe.TASK, {**resolved, "train_examples": 64})
    spec = {**splits.spec, "weights": "none"} if "weights" in recipe.DEFAULTS else splits.spec
    space = keras_tuner.HyperParameters()
    recipe.build_model(space, spec)
    recipe.make_pipeline(splits.train, splits.spec, space, training=True, batch_size=8)
    keras.backend.clear_session()
    built = {row["name"]: row for row in describe(space)}
    shown = {row["name"]: row for row in registry.recipe_info(name)["search_space"]}
    assert set(built) <= set(shown), set(built) - set(shown)
    for key, row in built.items():
        declared = {field: value for field, value in shown[key].items() if field in row}
        assert declared == row, key
    objective = objective_from(None, recipe)
    assert registry.recipe_info(name)["objective"] == {"name": objective.name,
                                                      "direction": objective.direction}


def test_usage_errors_exit_2_before_tensorflow_is_imported(tmp_path):
    def run(*args):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, *args], cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
        line = [line for line in result.stderr.splitlines() if line.startswith("HEAVY:")][0]
        return line, result.stderr, time.perf_counter() - start

    (tmp_path / "run").mkdir()
    for args in (["evaluate", "missing/"], ["predict", "missing/", "rows.csv"],
                 ["predict", "run", "rows.csv"], ["export", "missing"],
                 ["export", "run", "--format", "onnx", "--output", "model.keras"],
                 ["export", "run", "--format", "saved_model", "--output", "model.tflite"],
                 ["generate", "missing", "--output", "images"],
                 ["train", "cnn", "--data", "folder_that_is_not_there"],
                 ["train", "cnn", "--target", "label"],
                 ["tune", "cnn", "--set", "filters=1000"], ["train", "cnn", "--set", "filterz=1"],
                 ["train", "mobilenet", "--epochs", "3", "--set", "head_epochs=5"],
                 ["train", "nope"], ["show", "nope"], ["train", "cnn", "--epochs", "zero"]):
        line, stderr, seconds = run(*args)
        assert line == "HEAVY:  CODE: 2", (args, stderr)
        assert "Traceback" not in stderr
    # Loosely "well under a second": the whole interpreter start included.
    _, _, seconds = run("evaluate", "missing/")
    assert seconds < 4, seconds


def test_usage_errors_of_every_command_exit_2(cli, tmp_path):
    (tmp_path / "images" / "a").mkdir(parents=True)
    cases = [
        (["list", "--bogus"], "No such option"),
        (["show", "nope"], "Unknown recipe"),
        (["copy", "nope", "x.py"], "Unknown recipe"),
        (["train", "cnn", "--epochs", "0"], "`epochs` must be a positive integer"),
        (["train", "cnn", "--data", "images", "--target", "label"], "`--target` names a column"),
        (["compare", "perceptron"], "--vary"),
        (["tune", "cnn", "--tuner", "genetic"], "'genetic' is not one of"),
        (["evaluate", "missing/"], "Run folder, model file or artifact not found: 'missing/'"),
        (["predict", "missing/", "x.csv"], "Run folder or model file not found"),
        (["generate", "missing", "--output", "out"], "Run folder or model file not found"),
        (["export", "images", "--format", "tflite", "--output", "m.onnx"],
         "must end with .tflite"),
        (["bench", "cnn", "--steps", "0"], "0 is not in the range"),
        (["info", "--bogus"], "No such option"),
    ]
    for args, fragment in cases:
        result = cli(*args)
        assert_one_line_error(result, 2, fragment)
        assert result.stdout == ""


def test_impossible_arguments_are_refused_with_the_reason(cli, tmp_path):
    result = cli("train", "cnn", "--batch-size", "100000", "--output", tmp_path / "run")
    line = assert_one_line_error(result, 2, "`batch_size` must be at most", "of digits",
                                 "batch_size=100000")
    assert "1,077" in line  # digits' training split
    huge = cli("train", "vgg16", "--image-size", "30000", "--weights", "none",
               "--output", tmp_path / "run2")
    assert_one_line_error(huge, 2, "`image_size` 30000x30000 needs at least", "available",
                          "smaller --image-size")
    epochs = cli("train", "vgg16", "--epochs", "3", "--set", "head_epochs=4")
    assert_one_line_error(epochs, 2, "`head_epochs` must be in [1, 3]", "head_epochs=4")
    assert_one_line_error(cli("tune", "cnn", "--set", "conv_blocks=9"), 2,
                          "`conv_blocks` must be an integer in [1, 4]")
    assert not (tmp_path / "run").exists() and not (tmp_path / "run2").exists()


def test_damaged_files_are_named(cli, tmp_path):
    assert cli("train", "perceptron", "--epochs", "1", "--output", tmp_path / "run").exit_code == 0
    model = tmp_path / "run" / "model.keras"
    whole = model.read_bytes()
    for damage in (b"", whole[: len(whole) // 2], os.urandom(2000)):
        model.write_bytes(damage)
        line = assert_one_line_error(cli("evaluate", tmp_path / "run"), 1, "is damaged",
                                     str(model))
        assert "File not found" not in line
    model.write_bytes(whole)
    listed = {Path(run["path"]).name: run for run in
              json.loads(cli("list", "--runs", tmp_path, "--json").stdout)}
    assert listed["run"]["status"] == "completed"

    config = tmp_path / "run" / "config.json"
    text = config.read_text()
    config.write_text(text[: len(text) // 2])
    assert_one_line_error(cli("evaluate", tmp_path / "run"), 1, str(config), "is damaged",
                          "not valid JSON")
    listed = json.loads(cli("list", "--runs", tmp_path, "--json").stdout)
    assert [(Path(run["path"]).name, run["status"]) for run in listed] == [("run", "damaged")]
    table = cli("list", "--runs", tmp_path).stdout
    assert "damaged" in table
    config.write_text(json.dumps({"recipe": "perceptron"}))
    assert_one_line_error(cli("evaluate", tmp_path / "run"), 1, "is damaged",
                          "lacks settings")

    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "search.json").write_text("{not json")
    assert_one_line_error(cli("show", tmp_path / "search"), 1,
                          str(tmp_path / "search" / "search.json"), "is damaged", "--overwrite")
    resumed = cli("tune", "perceptron", "--max-trials", "1", "--epochs", "1", "--output",
                  tmp_path / "search")
    assert_one_line_error(resumed, 1, str(tmp_path / "search" / "search.json"), "is damaged",
                          "--overwrite")
    assert (tmp_path / "search" / "search.json").read_text() == "{not json"


def test_progress_off_a_terminal_has_no_colour_and_a_line_per_epoch(tmp_path):
    result = run_kerasdl("train", "perceptron", "--epochs", "3", "--output", tmp_path / "run",
                         cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{tmp_path / 'run'}\n"
    assert "\x1b[" not in result.stderr and "\r" not in result.stderr
    assert "\b" not in result.stderr
    assert sum(line.startswith("Epoch ") for line in result.stderr.splitlines()) == 3


def test_no_color_strips_colour_from_terminal_progress(monkeypatch, capsys):
    from kerasdl import progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert progress.colour_allowed() and progress.verbosity() == 1
    monkeypatch.setenv("NO_COLOR", "1")
    assert not progress.colour_allowed()
    plain = progress.Uncoloured(io.StringIO())
    plain.write("\x1b[1m8/8\x1b[0m \x1b[32m━━\x1b[0m")
    assert plain.getvalue() == "8/8 ━━"


def test_progress_bar_counts_the_steps_there_are(capsys):
    """With steps_per_execution 32 and 8 steps an epoch, the bar reads 8/8, not 32/8."""
    import keras
    import numpy as np
    import tensorflow as tf

    from kerasdl import progress

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse", steps_per_execution=32)
    data = tf.data.Dataset.from_tensor_slices((np.zeros((256, 2), "float32"),
                                               np.zeros((256, 1), "float32"))).batch(32)
    model.fit(data, epochs=1, verbose=1, callbacks=[progress.callback()])
    shown = progress.COLOUR_CODES.sub("", capsys.readouterr().out)
    assert "8/8" in shown and "32/8" not in shown


def test_ctrl_c_exits_130(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "kerasdl", "train", "cnn", "--epochs", "200", "--output",
         str(tmp_path / "run")], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not (tmp_path / "run" / "history.csv").exists():
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert stdout == "" and "Traceback" not in stderr


def test_nan_hint_gives_a_concrete_learning_rate(cli, tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=90), "y": rng.normal(size=90) * 1e25}).to_csv(
        tmp_path / "huge.csv", index=False)
    result = cli("train", "regression", "--data", tmp_path / "huge.csv", "--target", "y",
                 "--set", "loss=mse", "--set", "learning_rate=0.004")
    line = assert_one_line_error(result, 1, "The loss became",
                                 "`--set learning_rate=0.0004` (a tenth of the current 0.004)")
    assert "..." not in line


def test_data_help_lists_every_embedded_data_set_and_recipes_complete(cli, tmp_path):
    from kerasdl.data import EMBEDDED

    text = " ".join(cli("train", "--help").stdout.split())
    for name in EMBEDDED:
        assert name in text, name
    env = {**os.environ, "_KERASDL_COMPLETE": "bash_complete", "COMP_WORDS": "kerasdl train c",
           "COMP_CWORD": "2"}
    result = subprocess.run([sys.executable, "-m", "kerasdl"], env=env, capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    assert "plain,cnn" in result.stdout.splitlines(), result.stdout
    assert not [line for line in result.stdout.splitlines() if line.endswith(",perceptron")]
    source = subprocess.run([sys.executable, "-m", "kerasdl"],
                            env={**os.environ, "_KERASDL_COMPLETE": "zsh_source"},
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert "compdef" in source.stdout


def test_tune_off_a_terminal_logs_one_line_per_trial_with_a_true_counter(cli, tmp_path):
    args = ("tune", "perceptron", "--epochs", "1", "--set", "learning_rate=0.01", "--set",
            "optimizer=adam", "--output", tmp_path / "search", "--no-retrain")
    first = cli(*args, "--max-trials", "2")
    assert first.exit_code == 0, first.stderr
    trials = [line for line in first.stderr.splitlines() if line.startswith("Trial ")]
    assert [line.split()[1] for line in trials] == ["1/2", "2/2"], first.stderr
    assert "completed in" in trials[0] and "val_accuracy" in trials[0]
    assert "Search: Running Trial" not in first.stderr and "\x1b[" not in first.stderr
    more = cli(*args, "--max-trials", "3")  # continues the search: one more trial
    trials = [line for line in more.stderr.splitlines() if line.startswith("Trial ")]
    assert [line.split()[1] for line in trials] == ["3/3"], more.stderr
