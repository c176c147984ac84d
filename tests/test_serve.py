"""`kerasdl serve`: a real HTTP client against a real server process on a loopback port."""

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

# One worker runs this file: its module fixtures train the runs and start the servers.
pytestmark = pytest.mark.xdist_group("serve")


def _train(root, name, *args):
    from click.testing import CliRunner

    from kerasdl.cli import cli

    result = CliRunner().invoke(cli, ["train", name, "--epochs", "2", "--output",
                                      str(root / name), *args])
    assert result.exit_code == 0, result.stderr
    return root / name


class Server:
    """`kerasdl serve` in its own process, on a free port (`--port 0`), ended by PID."""

    def __init__(self, *args):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kerasdl", "serve", *map(str, args), "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
        self.url = self.process.stdout.readline().strip()
        assert self.url.startswith("http://127.0.0.1:"), self.process.stderr.read()

    def request(self, path="", body=None, method=None):
        """`(status, JSON answer)`; `body` is a dict (sent as JSON) or raw bytes."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def predict(self, body):
        return self.request(":predict", body)

    def stop(self):
        """Sends SIGTERM (unless it has ended) and returns `(exit code, stderr)`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _, stderr = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        return self.process.returncode, stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {"cnn": _train(root, "cnn"), "regression": _train(root, "regression")}


@pytest.fixture(scope="module")
def image_server(runs):
    # A long batching window makes concurrent requests share batches on any machine.
    server = Server(runs["cnn"], "--batch-window-ms", "200", "--max-body-mb", "0.25")
    yield server
    assert server.stop()[0] == 0


@pytest.fixture(scope="module")
def table_server(runs):
    server = Server(runs["regression"], "--name", "mpg")
    yield server
    assert server.stop()[0] == 0


@pytest.fixture(scope="module")
def digits(runs):
    """Test images of the run's data and the Keras model's outputs on them."""
    import keras

    from kerasdl.data import load_data

    config = json.loads((runs["cnn"] / "config.json").read_text())
    splits = load_data("digits", "image_classification", config["settings"],
                       spec=config["spec"])
    images = np.stack([x for x, _ in splits.test.take(64).as_numpy_iterator()])
    model = keras.saving.load_model(runs["cnn"] / "model.keras")
    return images, model.predict(images, verbose=0), config["spec"]["class_names"]


def test_status_and_metadata(image_server):
    status, body = image_server.request()
    assert status == 200
    assert body["model_version_status"][0]["state"] == "AVAILABLE"
    status, body = image_server.request("/metadata")
    assert status == 200 and body["model_spec"]["name"] == "cnn"
    dims = body["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"][
        "inputs"]["tensor_shape"]["dim"]
    assert [d["size"] for d in dims] == ["-1", "8", "8", "1"]
    assert body["kerasdl"]["class_names"] == [str(i) for i in range(10)]


def test_image_predictions_equal_keras_and_name_the_class(image_server, digits):
    images, expected, names = digits
    status, body = image_server.predict({"instances": images[:5].tolist()})
    assert status == 200
    served = np.asarray(body["predictions"])
    assert served.shape == (5, 10)
    assert np.abs(served - expected[:5]).max() < 1e-4
    assert body["classes"] == [names[i] for i in expected[:5].argmax(axis=1)]
    # Columns ("inputs"), as TensorFlow Serving answers them: "outputs".
    status, body = image_server.predict({"inputs": images[:2].tolist()})
    assert status == 200 and np.abs(np.asarray(body["outputs"]) - expected[:2]).max() < 1e-4


@pytest.mark.parametrize("body, status, fragment", [
    (b'{"instances": [1, 2', 400, "Malformed JSON"),
    ({"instances": [[[0.0]]]}, 400, "shape [8, 8, 1]"),
    ({"instances": [[["a"] * 8] * 8]}, 400, "must be numbers"),
    ({"rows": []}, 400, "Unknown key(s) 'rows'"),
    ({"instances": [], "inputs": []}, 400, "exactly one"),
    ({"instances": []}, 400, "non-empty list"),
])
def test_bad_requests_get_400_naming_the_problem(image_server, body, status, fragment):
    got, answer = image_server.predict(body)
    assert got == status and fragment in answer["error"], answer
    assert image_server.request()[0] == 200, "the server must survive a bad request"


def test_unknown_model_is_404_and_oversized_body_413(image_server, digits):
    url = image_server.url
    image_server.url = url.rsplit("/", 1)[0] + "/nope"
    try:
        status, answer = image_server.predict({"instances": digits[0][:1].tolist()})
    finally:
        image_server.url = url
    assert status == 404 and "Unknown model 'nope'" in answer["error"]
    status, answer = image_server.predict(b'{"instances": [' + b"0," * 200_000 + b"0]}")
    assert status == 413 and "over the limit of 0.25 MB" in answer["error"]
    assert image_server.predict({"instances": digits[0][:1].tolist()})[0] == 200


def test_concurrent_requests_are_batched_and_answered_each_its_own(image_server, digits):
    images, expected, _ = digits
    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(lambda image: image_server.predict(
            {"instances": [image.tolist()]}), images))
    assert [status for status, _ in answers] == [200] * 64
    served = np.concatenate([np.asarray(body["predictions"]) for _, body in answers])
    assert np.abs(served - expected).max() < 1e-4, "a request got another's answer"
    batching = image_server.request("/metadata")[1]["kerasdl"]["batching"]
    assert 1 < batching["largest_batch"] <= 64


def test_tabular_rows_are_read_like_predict(table_server, runs):
    import keras
    import pandas as pd

    from kerasdl.data import features_from_frame

    rows = [{"cylinders": 4, "displacement": 97.0, "horsepower": 88.0, "weight": 2130,
             "acceleration": 14.5, "model_year": 1970, "origin": "Japan"},
            {"cylinders": 8, "displacement": 350.0, "horsepower": 165.0, "weight": 3693,
             "acceleration": 11.5, "model_year": 1970, "origin": "USA"}]
    status, body = table_server.predict({"instances": rows})
    assert status == 200, body
    spec = json.loads((runs["regression"] / "config.json").read_text())["spec"]
    features, _, _ = features_from_frame(pd.DataFrame(rows), spec["categories"],
                                         spec["feature_names"])
    model = keras.saving.load_model(runs["regression"] / "model.keras")
    expected = model.predict(features, verbose=0)
    assert np.abs(np.asarray(body["predictions"]) - expected).max() < 1e-4
    assert "classes" not in body
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    status, body = table_server.predict({"inputs": columns})
    assert status == 200 and np.abs(np.asarray(body["outputs"]) - expected).max() < 1e-4
    metadata = table_server.request("/metadata")[1]["kerasdl"]
    assert metadata["columns"] == list(rows[0])

    misspelt = [{**{k: v for k, v in rows[0].items() if k != "weight"}, "wieght": 2130}]
    status, answer = table_server.predict({"instances": misspelt})
    assert status == 400 and "'wieght'" in answer["error"] and "weight" in answer["error"]
    status, answer = table_server.predict({"instances": [{**rows[0], "horsepower": "fast"}]})
    assert status == 400 and "'horsepower' must be numeric" in answer["error"]
    # Rows of a request are named by their place in it, not by lines of a file.
    assert "'fast' at row 1 of the request" in answer["error"], answer["error"]
    status, answer = table_server.predict({"instances": [[1, 2, 3]]})
    assert status == 400 and "objects keyed by column" in answer["error"]


def test_sigterm_lets_requests_in_flight_finish(runs, digits):
    # A 2-second window holds the requests in the server when SIGTERM arrives.
    server = Server(runs["cnn"], "--batch-window-ms", "2000")
    images = digits[0]
    results = []

    def ask(image):
        results.append(server.predict({"instances": [image.tolist()]}))

    threads = [threading.Thread(target=ask, args=(image,)) for image in images[:8]]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    server.process.send_signal(signal.SIGTERM)  # a supervisor's retry: still graceful
    for thread in threads:
        thread.join(timeout=60)
    assert [status for status, _ in results] == [200] * 8
    code, stderr = server.stop()
    assert code == 0 and "finishing the requests in flight" in stderr


def test_port_in_use_and_missing_run_are_one_line_errors(image_server, runs, tmp_path):
    from conftest import assert_one_line_error
    from conftest import run_kerasdl

    port = image_server.url.split(":")[2].split("/")[0]
    result = run_kerasdl("serve", runs["cnn"], "--port", port)
    assert_one_line_error(result, 1, f"Cannot listen on 127.0.0.1:{port}", "--port")
    assert_one_line_error(run_kerasdl("serve", tmp_path / "missing"), 2, "not found")


def test_an_exported_tflite_serves_from_litert(runs, digits, tmp_path):
    from conftest import run_kerasdl

    artifact = tmp_path / "digits.tflite"
    result = run_kerasdl("export", runs["cnn"], "--format", "tflite", "--output", artifact)
    assert result.returncode == 0, result.stderr
    images, expected, names = digits
    # Outside its run folder, the artifact's run is named for its class names.
    server = Server(artifact, "--run", runs["cnn"], "--name", "digits")
    try:
        assert server.url.endswith("/v1/models/digits")
        assert server.request("/metadata")[1]["kerasdl"]["runtime"].startswith("ai-edge-litert")
        status, body = server.predict({"instances": images[:4].tolist()})
        assert status == 200
        assert np.abs(np.asarray(body["predictions"]) - expected[:4]).max() < 1e-4
        assert body["classes"] == [names[i] for i in expected[:4].argmax(axis=1)]
    finally:
        assert server.stop()[0] == 0


def test_the_batcher_never_exceeds_max_batch_and_returns_each_its_rows():
    import asyncio

    from kerasdl.serve import Batcher

    seen = []

    def double(batch):
        seen.append(len(batch))
        return batch * 2

    async def main():
        batcher = Batcher(double, max_batch=5, window_ms=50)
        worker = asyncio.create_task(batcher.run())
        requests = [np.full((size, 1), index, np.float32)
                    for index, size in enumerate([2, 2, 2, 1, 3, 5, 1])]
        answers = await asyncio.gather(*(batcher.submit(r) for r in requests))
        worker.cancel()
        batcher.executor.shutdown()
        return requests, answers

    requests, answers = asyncio.run(main())
    for request, answer in zip(requests, answers):
        np.testing.assert_array_equal(answer, request * 2)
    assert sum(seen) == 16 and max(seen) <= 5 and len(seen) < 7, seen


def test_a_failing_model_call_fails_its_requests_not_the_worker():
    import asyncio

    from kerasdl.serve import Batcher

    calls = []

    def flaky(batch):
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return batch + 1

    async def main():
        batcher = Batcher(flaky, max_batch=4, window_ms=0)
        worker = asyncio.create_task(batcher.run())
        with pytest.raises(RuntimeError, match="out of memory"):
            await batcher.submit(np.zeros((1, 1), np.float32))
        answer = await batcher.submit(np.zeros((1, 1), np.float32))
        worker.cancel()
        batcher.executor.shutdown()
        return answer

    np.testing.assert_array_equal(asyncio.run(main()), [[1.0]])
