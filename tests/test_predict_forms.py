"""Every recipe that takes input predicts on the form of its training data.

Tabular recipes on CSV rows, image recipes on a folder of image files; the sequence
and forecasting recipes are in test_predict_sequences.py. The CLI's predictions must
equal the model's own on the same examples.
"""

import io

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kerasdl.data import features_from_frame
from kerasdl.data import sources

# recipe -> extra training options (tiny models, one epoch)
RECIPES = {
    "perceptron": [],
    "regression": [],
    "cnn": ["--set", "conv_blocks=1"],
    "autoencoder": [],
    "rbm": [],
    "vgg16": ["--weights", "none", "--image-size", "32", "--data", "digits", "--classes", "0,1",
              "--set", "head_epochs=1"],
    "mobilenet": ["--weights", "none", "--image-size", "32", "--data", "digits", "--classes",
                  "0,1", "--set", "head_epochs=1"],
}


def _write_images(folder, images):
    folder.mkdir()
    paths = []
    for index, image in enumerate(images):
        paths.append(folder / f"{index:02d}.png")
        pixels = image[..., 0] if image.shape[-1] == 1 else image
        Image.fromarray(pixels.astype(np.uint8)).save(paths[-1])
    return paths


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_recipe_predicts_on_the_form_of_its_training_data(cli, tmp_path, recipe):
    result = cli("train", recipe, "--epochs", "1", *RECIPES[recipe], "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    if recipe in ("perceptron", "regression"):
        data = {"perceptron": "xor", "regression": "auto_mpg"}[recipe]
        frame, target, _ = sources._embedded_frame(data, {})
        frame = frame.head(12)
        frame.to_csv(tmp_path / "rows.csv", index=False)  # the target column included
        predicted = cli("predict", tmp_path / "run", tmp_path / "rows.csv")
        assert predicted.exit_code == 0, predicted.stderr
        out = pd.read_csv(io.StringIO(predicted.stdout))
        assert list(out["id"]) == list(range(12))
        # The same rows encoded the way training encodes them (features_from_frame).
        spec = sources.load_data(data, "classification" if recipe == "perceptron"
                                 else "regression", {}).spec
        inputs, _, _ = features_from_frame(frame.drop(columns=[target]), spec["categories"],
                                           spec["feature_names"])
        expected = model.predict(inputs, verbose=0)
        if recipe == "regression":
            np.testing.assert_allclose(out["prediction"], expected[:, 0], rtol=1e-4, atol=1e-4)
        else:
            np.testing.assert_allclose(out["confidence"], expected.max(axis=1), atol=1e-5)
        return
    _, height, width, channels = model.input_shape
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, height, width, channels)).astype(np.float32)
    paths = _write_images(tmp_path / "new", images)
    predicted = cli("predict", tmp_path / "run", tmp_path / "new")
    assert predicted.exit_code == 0, predicted.stderr
    out = pd.read_csv(io.StringIO(predicted.stdout))
    assert list(out["id"]) == [str(path) for path in paths]
    outputs = np.asarray(model.predict(images, verbose=0))
    if "reconstruction_error" in out:
        errors = np.square(outputs - images / 255.0).reshape(5, -1).mean(axis=1)
        np.testing.assert_allclose(out["reconstruction_error"], errors, rtol=1e-4, atol=1e-6)
    else:
        np.testing.assert_allclose(out["confidence"], outputs.max(axis=1), atol=1e-5)
