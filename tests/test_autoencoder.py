"""The autoencoder recipe: every variant, anomaly detection, reconstruction errors."""

import json

import keras
import keras_tuner
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

from kerasdl import registry

autoencoder = registry.load_recipe("autoencoder")
SPEC = {"input_shape": [8, 8, 1]}


@pytest.mark.parametrize("variant", autoencoder.VARIANTS)
def test_every_variant_trains_saves_and_reloads(variant, tmp_path):
    hp = keras_tuner.HyperParameters()
    hp.Fixed("variant", variant)
    model = autoencoder.build_model(hp, SPEC)
    images = np.random.default_rng(0).uniform(0, 255, (64, 8, 8, 1)).astype("float32")
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((images, np.zeros(64)))
    batches = autoencoder.make_pipeline(data, SPEC, hp, training=True, batch_size=16)
    history = model.fit(batches, epochs=2, verbose=0)
    assert history.history["mse"][-1] < history.history["mse"][0] or variant == "denoising"
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(images[:8], verbose=0),
                               model.predict(images[:8], verbose=0), atol=1e-5)
    if variant == "variational":
        assert reloaded.sample(4).shape == (4, 8, 8, 1)


def test_noise_is_added_in_training_only():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("variant", "denoising")
    import tensorflow as tf

    images = np.full((8, 8, 8, 1), 128.0, "float32")
    data = tf.data.Dataset.from_tensor_slices((images, np.zeros(8)))
    x, y = next(iter(autoencoder.make_pipeline(data, SPEC, hp, training=True)))
    assert np.abs(x.numpy() - 128.0).mean() > 10 and np.allclose(y.numpy(), 128 / 255.0)
    x, _ = next(iter(autoencoder.make_pipeline(data, SPEC, hp, training=False)))
    assert np.allclose(x.numpy(), 128.0)


def test_trained_without_zeros_it_flags_zeros_as_anomalies(cli, tmp_path):
    result = cli("train", "autoencoder", "--exclude-class", "0", "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["anomaly_roc_auc"] >= 0.9
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["spec"]["excluded_classes"] == ["0"]
    assert config["spec"]["num_examples"]["train"] == 1077 - 106  # the 106 training 0s
    for plot in ("reconstructions.png", "learning_curves.png"):
        assert (tmp_path / "run" / "plots" / plot).is_file()

    # The same ranking through `kerasdl predict` on image files.
    digits = load_digits()
    folder = tmp_path / "images"
    folder.mkdir()
    chosen = [i for i in range(len(digits.target)) if digits.target[i] in (0, 3, 5)][-60:]
    for i in chosen:
        Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8)).save(
            folder / f"{i}_{digits.target[i]}.png")
    predicted = cli("predict", tmp_path / "run", folder)
    assert predicted.exit_code == 0, predicted.stderr
    frame = pd.read_csv(pd.io.common.StringIO(predicted.stdout))
    assert list(frame.columns) == ["id", "reconstruction_error"]
    is_zero = frame["id"].str.endswith("_0.png")
    assert roc_auc_score(is_zero, frame["reconstruction_error"]) >= 0.9


def test_variational_run_plots_prior_samples(cli, tmp_path):
    result = cli("train", "autoencoder", "--set", "variant=variational", "--epochs", "3",
                 "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "run" / "plots" / "prior_samples.png").is_file()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"kl_loss", "reconstruction_loss", "mse"} <= set(metrics["test"])


def test_unknown_excluded_class(cli, tmp_path):
    result = cli("train", "autoencoder", "--exclude-class", "eleven")
    assert result.exit_code == 1
    assert "Unknown class(es) in `exclude_classes`: eleven" in result.stderr
    assert not (tmp_path / "runs").exists()
