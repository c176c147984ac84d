"""`kerasdl export`: every recipe, every format, checked in the format's own runtime."""

import json

import pytest

from conftest import assert_one_line_error
from kerasdl import export as export_module
from kerasdl import registry

# One worker runs this file: its module fixture trains the runs every test exports.
pytestmark = pytest.mark.xdist_group("export")

FORMATS = ["keras", "saved_model", "tflite", "onnx"]
# vgg16 exports through the same code as mobilenet, at 30 times the size: left out for time.
RECIPES = [name for name in registry.list_recipes() if name != "vgg16"]
# No download here: the transfer recipes' weights are random, their images small.
EXTRA = {"mobilenet": ["--weights", "none", "--image-size", "32"]}
ARTIFACTS = {"keras": "model.keras", "saved_model": "saved_model", "tflite": "model.tflite",
             "onnx": "model.onnx"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cnn_run):
    """One short run of every recipe (and the VAE), trained once for all export tests.

    The cnn is `cnn_run` (3 epochs), shared with the quantization tests: their
    artifacts have names of their own (model-int8.tflite, ...).
    """
    from click.testing import CliRunner

    from kerasdl.cli import cli

    root = tmp_path_factory.mktemp("runs")
    found = {"cnn": cnn_run}
    for name, extra in [*[(recipe, EXTRA.get(recipe, [])) for recipe in RECIPES],
                        ("autoencoder", ["--set", "variant=variational"])]:
        key = f"{name}-variational" if "variant=variational" in extra else name
        if key in found:
            continue
        result = CliRunner().invoke(cli, ["train", name, "--epochs", "1", "--output",
                                          str(root / key), *extra])
        assert result.exit_code == 0, result.stderr
        found[key] = root / key
    return found


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("key", [*RECIPES, "autoencoder-variational"])
def test_export_matches_keras_in_its_runtime(cli, trained, key, fmt):
    result = cli("export", trained[key], "--format", fmt, "--json")
    assert result.exit_code == 0, result.stderr
    check = json.loads(result.stdout)
    artifact = trained[key] / "export" / ARTIFACTS[fmt]
    assert check["passed"] and check["artifact"] == str(artifact) and artifact.exists()
    assert check["max_abs_diff"] <= check["atol"] + check["rtol"] * 1e3
    assert check["examples"] == 16
    runtime = {"keras": "keras", "saved_model": "tensorflow", "tflite": "ai-edge-litert",
               "onnx": "onnxruntime"}[fmt]
    assert check["runtime"].startswith(runtime)
    stored = json.loads((trained[key] / "export" / f"{ARTIFACTS[fmt]}.check.json").read_text())
    assert stored == check
    assert "passed" in result.stderr


def test_export_never_overwrites_without_force(cli, trained):
    run = trained["regression"]
    assert cli("export", run, "--format", "tflite").exit_code in (0, 2)
    artifact = run / "export" / "model.tflite"
    before = artifact.read_bytes()
    assert_one_line_error(cli("export", run, "--format", "tflite"), 2, "exists; pass --force")
    assert artifact.read_bytes() == before
    assert cli("export", run, "--format", "tflite", "--force").exit_code == 0
    assert not list((run / "export").glob(".*partial*")), "a temporary file was left behind"


def test_a_failed_check_fails_the_command_and_keeps_the_evidence(cli, trained, tmp_path,
                                                                 monkeypatch):
    # No conversion is exact to the last bit: with zero tolerance the check must fail.
    monkeypatch.setitem(export_module.FORMATS, "tflite", ("model.tflite", 0.0, 0.0))
    out = tmp_path / "strict.tflite"
    result = cli("export", trained["cnn"], "--format", "tflite", "--output", out)
    assert_one_line_error(result, 1, "The tflite export answers differently",
                          "kept at")
    check = json.loads((tmp_path / "strict.tflite.check.json").read_text())
    assert check["passed"] is False and check["max_abs_diff"] > 0


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    """A default CNN trained long enough that quantization error shows in its accuracy."""
    from click.testing import CliRunner

    from kerasdl.cli import cli

    run = tmp_path_factory.mktemp("quantize") / "cnn"
    result = CliRunner().invoke(cli, ["train", "cnn", "--epochs", "3", "--output", str(run)])
    assert result.exit_code == 0, result.stderr
    return run


def _evaluate(cli, *args):
    result = cli("evaluate", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("method, most_ratio, points", [
    ("dynamic", 0.4, 0.02), ("float16", 0.6, 0.005), ("int8", 0.4, 0.02)])
def test_quantized_tflite_is_smaller_and_scored_in_litert(cli, cnn_run, method, most_ratio,
                                                          points):
    result = cli("export", cnn_run, "--format", "tflite", "--quantize", method, "--json")
    assert result.exit_code == 0, result.stderr
    check = json.loads(result.stdout)
    artifact = cnn_run / "export" / f"model-{method}.tflite"
    assert check["artifact"] == str(artifact) and check["bytes"] == artifact.stat().st_size
    found = check["quantization"]
    assert found["method"] == method and found["bytes"] <= most_ratio * found["float_bytes"]
    float_accuracy = _evaluate(cli, cnn_run)["accuracy"]
    assert found["float_metrics"]["accuracy"] == pytest.approx(float_accuracy)
    assert abs(found["metrics"]["accuracy"] - float_accuracy) <= points
    # The artifact scored on its own, in LiteRT, gives the figures the export reported.
    scored = _evaluate(cli, artifact)
    assert scored["runtime"].startswith("ai-edge-litert") and scored["examples"] == 360
    assert scored["accuracy"] == pytest.approx(found["metrics"]["accuracy"])
    assert "Quantized" in result.stderr and "Test split: accuracy" in result.stderr


def test_keras_int8_quantizes_the_dense_layers_only(cli, cnn_run):
    import keras

    result = cli("export", cnn_run, "--format", "keras", "--quantize", "int8", "--json")
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)["quantization"]
    model = keras.saving.load_model(cnn_run / "model.keras")
    dense = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert dense and sorted(found["int8_layers"]) == sorted(dense)
    quantized = keras.saving.load_model(cnn_run / "export" / "model-int8.keras")
    assert {layer.name for layer in quantized.layers
            if layer.dtype_policy.name.startswith("int8")} == set(dense)
    scored = _evaluate(cli, cnn_run / "export" / "model-int8.keras", "--run", cnn_run)
    assert scored["runtime"].startswith("keras")
    assert abs(scored["accuracy"] - found["float_metrics"]["accuracy"]) <= 0.02


@pytest.mark.parametrize("fmt", ["saved_model", "tflite", "onnx"])
def test_a_float_artifact_scores_what_its_run_scores(cli, cnn_run, tmp_path, fmt):
    out = tmp_path / ARTIFACTS[fmt]
    assert cli("export", cnn_run, "--format", fmt, "--output", out).exit_code == 0
    expected = _evaluate(cli, cnn_run)
    scored = _evaluate(cli, out, "--run", cnn_run)
    assert scored["accuracy"] == pytest.approx(expected["accuracy"])
    assert scored["loss"] == pytest.approx(expected["loss"], abs=1e-4)
    assert scored["examples"] == expected["examples"] and scored["split"] == "test"
    on_train = _evaluate(cli, out, "--run", cnn_run, "--split", "train")
    assert on_train["examples"] == 1077


def test_quantize_and_artifact_mistakes_are_one_line_errors(cli, cnn_run, tmp_path):
    assert_one_line_error(cli("export", cnn_run, "--format", "onnx", "--quantize", "int8"), 2,
                          "does not apply to --format onnx", "--format tflite --quantize")
    assert_one_line_error(cli("export", cnn_run, "--format", "keras", "--quantize", "float16"),
                          2, "does not apply to --format keras")
    stray = tmp_path / "stray.tflite"
    assert cli("export", cnn_run, "--format", "tflite", "--output", stray).exit_code == 0
    assert_one_line_error(cli("evaluate", stray), 2, "--run RUN")
    assert_one_line_error(cli("evaluate", tmp_path / "stray.tflite.check.json", "--run",
                              cnn_run), 1, "Not a model artifact")
