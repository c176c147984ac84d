"""The gan recipe: sample quality judged by classifiers of real digits, generate, reload."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from kerasdl import settings
from kerasdl.data import load_data
from kerasdl.evaluation import load_run
from kerasdl.quality import classifier_yardstick
from kerasdl.quality import knn_probabilities


def test_generated_digits_look_like_digits(cli, tmp_path):
    result = cli("train", "gan", "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["validation"]["mmd"] < 0.05
    assert {"d_loss", "g_loss"} <= set(metrics["test"])
    assert (run / "plots" / "samples.png").is_file()
    assert len(list((run / "plots").glob("samples_epoch_*.png"))) == 5

    generated = cli("generate", run, "--num", "1000", "--seed", "0", "--output", tmp_path / "s")
    assert generated.exit_code == 0, generated.stderr
    files = sorted((tmp_path / "s").glob("*.png"))
    assert len(files) == 1000
    images = np.stack([np.asarray(Image.open(path), "float32")[..., None] for path in files])
    assert images.shape == (1000, 8, 8, 1)

    splits = load_data("digits", "image_classification", settings.resolve({}))
    train_x, train_y = (np.stack(a) for a in zip(*splits.train.as_numpy_iterator()))
    noise = np.random.default_rng(0).uniform(0, 255, images.shape)
    samples = classifier_yardstick(knn_probabilities(train_x / 255, train_y, images / 255), 10)
    baseline = classifier_yardstick(knn_probabilities(train_x / 255, train_y, noise / 255), 10)
    assert samples["classes_covered"] >= 8
    assert samples["mean_top_probability"] >= baseline["mean_top_probability"] + 0.15

    # Generator and discriminator come back from the run directory; one seed, one image set.
    model = load_run(run)[0]
    assert model.generator.name == "generator" and model.discriminator.name == "discriminator"
    np.testing.assert_allclose(np.asarray(model.generate(1000, seed=0)) * 255, images, atol=1.0)

    again = cli("generate", run, "--num", "3", "--output", tmp_path / "s")
    assert again.exit_code == 2 and "pass --force" in again.stderr
    assert len(list((tmp_path / "s").glob("*.png"))) == 1000


def test_generate_refuses_a_model_that_does_not_generate(cli, tmp_path):
    assert cli("train", "regression", "--epochs", "1", "--output", tmp_path / "run").exit_code == 0
    result = cli("generate", tmp_path / "run", "--output", tmp_path / "out")
    assert result.exit_code == 1 and "is not a generative model" in result.stderr
    assert not Path(tmp_path / "out").exists()
