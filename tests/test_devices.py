"""Devices: `kerasdl info`, `--device/--mixed-precision/--jit/--strategy`, `kerasdl bench`."""

import json

import pytest

from conftest import assert_one_line_error
from conftest import run_kerasdl
from kerasdl import devices


def test_info_lists_the_devices_tensorflow_sees(cli):
    result = cli("info", "--json")
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    assert any(device["type"] == "CPU" for device in found["physical_devices"])
    assert found["tensorflow"] and found["keras"] and found["cpu_cores"] >= 1
    assert found["mixed_precision"] in ("mixed_float16", "mixed_bfloat16", "unavailable")


def test_mirrored_strategy_on_two_logical_cpus_matches_one_device(tmp_path):
    """MirroredStrategy over 2 CPU replicas lands in the same band as one device."""
    maes = {}
    for strategy, env in (("default", {}), ("mirrored", {"KERASDL_CPU_DEVICES": "2"})):
        result = run_kerasdl("train", "regression", "--epochs", "40", "--strategy", strategy,
                             "--output", tmp_path / strategy, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        config = json.loads((tmp_path / strategy / "config.json").read_text())
        assert config["accelerator"]["strategy"] == strategy
        assert config["accelerator"]["replicas"] == (2 if strategy == "mirrored" else 1)
        maes[strategy] = json.loads((tmp_path / strategy / "metrics.json").read_text())["test"]["mae"]
    assert abs(maes["mirrored"] - maes["default"]) < 0.15 * maes["default"], maes


def _compute_dtypes(model):
    """The compute dtypes of a model's layers that hold weights (nested models opened)."""
    found = set()

    def visit(layer):
        children = list(getattr(layer, "layers", None) or [])
        for child in children:
            visit(child)
        if not children and layer.weights:
            found.add(layer.dtype_policy.compute_dtype)

    visit(model)
    return found


BF16 = pytest.mark.skipif(not devices.cpu_supports_bfloat16(), reason="this CPU has no bfloat16")


@BF16
def test_mixed_precision_and_jit_are_applied_and_recorded(cli, tmp_path):
    result = cli("train", "cnn", "--epochs", "3", "--mixed-precision", "--jit",
                 "--output", "run")
    assert result.exit_code == 0, result.stderr
    assert "tensorflow#45441" in result.stderr  # float16 is usually slower on CPUs
    import keras

    # The trained model computes in bfloat16 (clear_session used to reset the policy).
    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    assert _compute_dtypes(model) == {"bfloat16"}
    assert {w.dtype for w in model.weights} == {"float32"}  # variables stay float32
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["accelerator"]["precision"] == "mixed_bfloat16"
    assert config["accelerator"]["jit"] is True
    accuracy = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["accuracy"]
    assert accuracy > 0.8
    assert keras.mixed_precision.global_policy().name == "float32"  # reset after the run

    plain = cli("train", "cnn", "--epochs", "1", "--output", "plain")
    assert plain.exit_code == 0, plain.stderr
    assert _compute_dtypes(keras.models.load_model(tmp_path / "plain" / "model.keras")) == {
        "float32"}
    config = json.loads((tmp_path / "plain" / "config.json").read_text())
    assert config["accelerator"]["precision"] == "float32"


@BF16
def test_mixed_precision_reaches_every_trial_of_a_search(cli, tmp_path, monkeypatch):
    from kerasdl import tuning

    seen = []
    fit = tuning.RecipeHyperModel.fit

    def recording_fit(self, hp, model, *args, **kwargs):
        seen.append(_compute_dtypes(model))
        return fit(self, hp, model, *args, **kwargs)

    monkeypatch.setattr(tuning.RecipeHyperModel, "fit", recording_fit)
    result = cli("tune", "perceptron", "--max-trials", "3", "--epochs", "1",
                 "--mixed-precision", "--output", "search")
    assert result.exit_code == 0, result.stderr
    # Keras Tuner clears the session before every trial's build.
    assert seen == [{"bfloat16"}] * 3
    import keras

    best = keras.models.load_model(tmp_path / "search" / "best" / "model.keras")
    assert _compute_dtypes(best) == {"bfloat16"}


@BF16
def test_mixed_precision_in_bench_and_compare(cli, tmp_path, monkeypatch):
    from kerasdl import bench

    built = []
    build = bench.build

    def recording_build(*args, **kwargs):
        model, hp = build(*args, **kwargs)
        built.append(model)
        return model, hp

    monkeypatch.setattr(bench, "build", recording_build)
    result = cli("bench", "cnn", "--steps", "2", "--repeats", "1", "--mixed-precision", "--json")
    assert result.exit_code == 0, result.stderr
    assert _compute_dtypes(built[0]) == {"bfloat16"}
    assert json.loads(result.stdout)["precision"] == "mixed_bfloat16"

    compared = cli("compare", "perceptron", "--vary", "hidden_layers=0,1", "--epochs", "1",
                   "--mixed-precision", "--output", "compare")
    assert compared.exit_code == 0, compared.stderr
    import keras

    models = sorted((tmp_path / "compare" / "runs").glob("*/model.keras"))
    assert len(models) == 2
    for path in models:
        assert _compute_dtypes(keras.models.load_model(path)) == {"bfloat16"}, path


def test_bench_reports_throughput_flops_and_utilisation(cli):
    result = cli("bench", "cnn", "--steps", "10", "--repeats", "2", "--json")
    assert result.exit_code == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["repeats"] == 2 and figures["steps_per_execution"] == 32
    assert 0 < figures["best_step_ms"] <= figures["step_ms"]
    # 66,218 parameters; a forward pass of an 8x8 digit: about 3.3 MFLOPs.
    assert 1e6 < figures["train_flops_per_sample"] / 3 < 1e8
    assert figures["train_samples_per_second"] > 0 and figures["step_ms"] > 0
    assert figures["pipeline_samples_per_second"] > figures["train_samples_per_second"]
    assert figures["matmul_peak_gflops"] > 1
    assert figures["utilisation"] == pytest.approx(
        figures["achieved_gflops"] / figures["matmul_peak_gflops"], rel=0.01)


def test_gpu_device_without_a_gpu_is_a_clear_error(cli, tmp_path):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    result = cli("train", "regression", "--device", "gpu", "--output", "run")
    assert_one_line_error(result, 2, "`--device gpu`: TensorFlow sees no GPU")
    assert not (tmp_path / "run").exists()


def test_two_loopback_workers_train_like_one(tmp_path):
    """`--workers 2`: MultiWorkerMirroredStrategy over two local processes (TF_CONFIG on
    loopback) completes, the chief writes the run, and test accuracy lands in the band
    of a one-worker run with the same global batch."""
    accuracy = {}
    for workers in (1, 2):
        run = tmp_path / f"workers{workers}"
        result = run_kerasdl("train", "cnn", "--epochs", "3", "--workers", workers,
                             "--output", run, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip() == str(run)  # only the chief prints the run
        config = json.loads((run / "config.json").read_text())
        assert config["status"] == "completed"
        history = (run / "history.csv").read_text().splitlines()
        assert len(history) == 1 + 3
        accuracy[workers] = json.loads((run / "metrics.json").read_text())["test"]["accuracy"]
    assert config["accelerator"]["strategy"] == "multiworker"
    assert config["accelerator"]["workers"] == 2 and config["accelerator"]["replicas"] == 2
    assert accuracy[2] > 0.93, accuracy
    assert abs(accuracy[2] - accuracy[1]) < 0.04, accuracy
    # The other worker wrote to a temporary folder, removed when it finished.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["workers1", "workers2"]


def test_multiworker_needs_tf_config(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    result = cli("train", "regression", "--strategy", "multiworker", "--output", "run")
    assert_one_line_error(result, 2, "`--strategy multiworker` needs TF_CONFIG")
    assert not (tmp_path / "run").exists()
    monkeypatch.setenv("TF_CONFIG", "{not json")
    result = cli("train", "regression", "--strategy", "multiworker", "--output", "run")
    assert_one_line_error(result, 2, "TF_CONFIG is not valid")


def test_multiworker_is_refused_where_it_cannot_work(cli):
    result = cli("train", "gan", "--workers", "2")
    assert_one_line_error(result, 2, "gan has its own `fit`")
    result = cli("train", "cnn", "--workers", "2", "--strategy", "mirrored")
    assert_one_line_error(result, 2, "`--workers 2` trains with `--strategy multiworker`")
    result = cli("tune", "cnn", "--strategy", "multiworker")
    assert_one_line_error(result, 2, "`--strategy multiworker` is for `kerasdl train`")


def test_steps_per_execution_is_applied_recorded_and_checked(cli, tmp_path):
    result = cli("train", "regression", "--epochs", "3", "--steps-per-execution", "4",
                 "--output", "four")
    assert result.exit_code == 0, result.stderr
    config = json.loads((tmp_path / "four" / "config.json").read_text())
    assert config["accelerator"]["steps_per_execution"] == 4
    assert len((tmp_path / "four" / "history.csv").read_text().splitlines()) == 1 + 3
    result = cli("train", "regression", "--steps-per-execution", "0", "--output", "zero")
    assert_one_line_error(result, 2, "--steps-per-execution", "0 is not in the range x>=1")
    (tmp_path / "settings.json").write_text('{"steps_per_execution": "many"}')
    result = cli("train", "regression", "--config", "settings.json", "--output", "zero")
    assert_one_line_error(result, 2, "`steps_per_execution` must be a positive integer")
    assert not (tmp_path / "zero").exists()


def test_mixed_precision_policy_reaches_the_trained_layers_on_any_cpu(cli, tmp_path,
                                                                       monkeypatch):
    """The same path as `--mixed-precision` on a bfloat16 CPU, on whatever CPU runs the
    suite: the bfloat16 check is made to answer yes (TensorFlow's CPU kernels compute
    bfloat16 either way, natively or not), so the policy's path is always exercised: the
    layers of the trained model compute in bfloat16, as the record says."""
    monkeypatch.setattr(devices, "cpu_supports_bfloat16", lambda: True)
    result = cli("train", "perceptron", "--data", "blobs", "--epochs", "5",
                 "--mixed-precision", "--output", "run")
    assert result.exit_code == 0, result.stderr
    assert "mixed_bfloat16" in result.stderr
    import keras

    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    assert _compute_dtypes(model) == {"bfloat16"}
    assert {w.dtype for w in model.weights} == {"float32"}  # variables stay float32
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["accelerator"]["precision"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"  # reset after the run
    accuracy = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["accuracy"]
    assert accuracy > 0.8  # blobs are linearly separable: bfloat16 still learns them
