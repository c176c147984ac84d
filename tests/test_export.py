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
def trained(tmp_path_factory):
    """One short run of every recipe (and the VAE), trained once for all export tests."""
    from click.testing import CliRunner

    from kerasdl.cli import cli

    root = tmp_path_factory.mktemp("runs")
    found = {}
    for name, extra in [*[(recipe, EXTRA.get(recipe, [])) for recipe in RECIPES],
                        ("autoencoder", ["--set", "variant=variational"])]:
        key = f"{name}-variational" if "variant=variational" in extra else name
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
