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
        result = run_kerasdl("train", "regression", "--epochs", "60", "--strategy", strategy,
                             "--output", tmp_path / strategy, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        config = json.loads((tmp_path / strategy / "config.json").read_text())
        assert config["accelerator"]["strategy"] == strategy
        assert config["accelerator"]["replicas"] == (2 if strategy == "mirrored" else 1)
        maes[strategy] = json.loads((tmp_path / strategy / "metrics.json").read_text())["test"]["mae"]
    assert abs(maes["mirrored"] - maes["default"]) < 0.15 * maes["default"], maes


@pytest.mark.skipif(not devices.cpu_supports_bfloat16(), reason="this CPU has no bfloat16")
def test_mixed_precision_and_jit_are_applied_and_recorded(cli, tmp_path):
    result = cli("train", "cnn", "--epochs", "3", "--mixed-precision", "--jit",
                 "--output", "run")
    assert result.exit_code == 0, result.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["accelerator"]["precision"] == "mixed_bfloat16"
    assert config["accelerator"]["jit"] is True
    accuracy = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["accuracy"]
    assert accuracy > 0.9
    import keras

    assert keras.mixed_precision.global_policy().name == "float32"  # reset after the run


def test_bench_reports_throughput_flops_and_utilisation(cli):
    result = cli("bench", "cnn", "--steps", "10", "--json")
    assert result.exit_code == 0, result.stderr
    figures = json.loads(result.stdout)
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
