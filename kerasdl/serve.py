"""`kerasdl serve`: a run or an exported artifact over HTTP, in TensorFlow Serving's REST shape.

Routes (NAME defaults to the run's recipe):
- `GET /v1/models/NAME`: the model's status;
- `GET /v1/models/NAME/metadata`: inputs, outputs, class names, runtime;
- `POST /v1/models/NAME:predict`: `{"instances": [...]}` (rows) answers
  `{"predictions": [...]}`; `{"inputs": ...}` (columns) answers `{"outputs": ...}`, as
  TensorFlow Serving does. Classifiers also answer the class name of each row in
  `"classes"`.

Built on aiohttp: its server parses HTTP, enforces the request size limit and shuts
down gracefully (no new connections; requests in flight finish). One inference worker
thread owns the model; requests reach it through a queue, and whatever arrives within
a short window (or while the worker is busy) is run as one batch. The event loop never
blocks on the model, and the model is never called from two threads at once.
"""

import asyncio
import concurrent.futures
import json
import signal
import sys

import numpy as np

from kerasdl.errors import DataError
from kerasdl.errors import KerasdlError
from kerasdl.errors import UsageError

MAX_BATCH = 64
BATCH_WINDOW_MS = 2.0
MAX_BODY_MB = 8.0
SHUTDOWN_TIMEOUT_S = 30.0
CLASSIFICATION = ("classification", "image_classification")


class BadRequest(Exception):
    """A request the server answers with 400 and a JSON error."""


class Servable:
    """A loaded model and what it was trained on: the input schema and class names."""

    def __init__(self, path, run=None, name=None, unsafe=False):
        from kerasdl import runs
        from kerasdl.artifacts import open_artifact
        from kerasdl.artifacts import run_of

        self.runtime = open_artifact(path, unsafe)
        run = run or run_of(path)
        self.config = runs.resolve_run(run)[1] if run else None
        self.spec = (self.config or {}).get("spec") or {}
        recipe = (self.config or {}).get("recipe")
        if name is None and recipe:
            from kerasdl.registry import recipe_name

            name = recipe_name(recipe)  # a recipe file's stem, not its path
        self.name = name or "model"
        self.task = self.spec.get("task") or ("image_classification"
                                               if len(self.runtime.input_shape) == 3 else None)
        # Rows keyed by column name: tabular models trained on a CSV's columns.
        self.columns = None
        if len(self.runtime.input_shape) == 1 and self.spec.get("feature_names"):
            categories = self.spec.get("categories") or {}
            self.columns = list(dict.fromkeys(
                name.split("=", 1)[0] if name.split("=", 1)[0] in categories else name
                for name in self.spec["feature_names"]))
        self.class_names = (self.spec.get("class_names")
                            if self.task in CLASSIFICATION else None)

    def metadata(self):
        """TensorFlow Serving's metadata shape, plus what kerasdl knows of the model."""
        shape = [-1, *self.runtime.input_shape]
        return {
            "model_spec": {"name": self.name, "signature_name": "", "version": "1"},
            "metadata": {"signature_def": {"signature_def": {"serving_default": {
                "inputs": {"inputs": {"dtype": "DT_FLOAT",
                                      "tensor_shape": {"dim": [{"size": str(d)} for d in shape]}}},
                "method_name": "tensorflow/serving/predict"}}}},
            "kerasdl": {"recipe": (self.config or {}).get("recipe"), "task": self.task,
                        "runtime": self.runtime.name, "input_shape": list(self.runtime.input_shape),
                        "columns": self.columns, "class_names": self.class_names},
        }

    def parse(self, body):
        """Turns a request body into `(inputs, row_format)`.

        Raises:
            BadRequest: naming what is wrong and what would be valid.
        """
        try:
            request = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise BadRequest(f"Malformed JSON body: {error}") from None
        if not isinstance(request, dict):
            raise BadRequest('The body must be a JSON object with "instances" (rows) or '
                             '"inputs" (columns).')
        unknown = set(request) - {"instances", "inputs", "signature_name"}
        if unknown:
            raise BadRequest(f"Unknown key(s) {', '.join(sorted(map(repr, unknown)))}; valid: "
                             '"instances" or "inputs", and "signature_name".')
        if request.get("signature_name", "serving_default") != "serving_default":
            raise BadRequest(f"Unknown signature_name {request['signature_name']!r}; the only "
                             "one is 'serving_default'.")
        if ("instances" in request) == ("inputs" in request):
            raise BadRequest('Give exactly one of "instances" (a list of rows) or "inputs" '
                             "(columns).")
        rows = "instances" in request
        data = request["instances" if rows else "inputs"]
        if self.columns is not None:
            return self._table(data, rows), rows
        return self._arrays(data), rows

    def _arrays(self, data):
        if not isinstance(data, list) or not data:
            raise BadRequest("Give a non-empty list of examples, each of shape "
                             f"{list(self.runtime.input_shape)}.")
        try:
            inputs = np.asarray(data, dtype=np.float32)
        except (ValueError, TypeError):
            raise BadRequest("Examples must be numbers in nested lists, each of shape "
                             f"{list(self.runtime.input_shape)} (all alike).") from None
        if inputs.shape[1:] != self.runtime.input_shape:
            raise BadRequest(f"Each example must have shape {list(self.runtime.input_shape)}. "
                             f"Received: {list(inputs.shape[1:])}")
        if not np.isfinite(inputs).all():
            raise BadRequest("Examples hold NaN or infinite values.")
        return inputs

    def _table(self, data, rows):
        import pandas as pd

        from kerasdl.data import frame_to_inputs
        from kerasdl.data.tabular import REQUEST_ROWS

        if rows and not (isinstance(data, list) and data
                         and all(isinstance(row, dict) for row in data)):
            raise BadRequest('"instances" must be a non-empty list of objects keyed by column: '
                             f"{', '.join(self.columns)}.")
        if not rows and not (isinstance(data, dict) and data):
            raise BadRequest('"inputs" must be an object of column name to a list of values: '
                             f"{', '.join(self.columns)}.")
        try:
            frame = pd.DataFrame(data) if rows else pd.DataFrame({k: (v if isinstance(v, list)
                                                                     else [v])
                                                                 for k, v in data.items()})
        except ValueError as error:
            raise BadRequest(f"Cannot read the columns: {error}") from None
        target = self.spec.get("target")
        unknown = [c for c in frame.columns if c not in self.columns and c != target]
        if unknown:
            raise BadRequest(f"Unknown column(s) {', '.join(map(repr, unknown))}; the model "
                             f"was trained on: {', '.join(self.columns)}.")
        frame = frame.drop(columns=[target], errors="ignore")
        frame.index.name = REQUEST_ROWS  # errors name rows of the request, not of a file
        try:
            # The same reading, in the run's schema, as `kerasdl predict` of a CSV file;
            # its notes (unseen categories) go to the server's stderr.
            features, _ = frame_to_inputs(frame, self.spec)
        except DataError as error:
            raise BadRequest(str(error)) from None
        if features.shape[1:] != self.runtime.input_shape:
            raise BadRequest(f"The model takes {list(self.runtime.input_shape)} features; the "
                             f"rows give {features.shape[1]}.")
        return features

    def answer(self, outputs, rows):
        """The response body for a request's outputs."""
        key = "predictions" if rows else "outputs"
        body = {key: outputs.tolist()}
        if self.class_names and outputs.ndim == 2 and outputs.shape[1] == len(self.class_names):
            body["classes"] = [self.class_names[i] for i in outputs.argmax(axis=1)]
        return body


class Batcher:
    """One inference worker fed by a queue: concurrent requests run as one batch."""

    def __init__(self, predict, max_batch=MAX_BATCH, window_ms=BATCH_WINDOW_MS):
        self.predict = predict
        self.max_batch = max_batch
        self.window = window_ms / 1000.0
        self.queue = asyncio.Queue()
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="kerasdl-inference")
        self.batches = []  # sizes of the batches run, for the metadata and benchmarks
        self._carried = None

    async def submit(self, inputs):
        """Queues `inputs` and returns their outputs once the worker ran them."""
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((inputs, future))
        return await future

    async def _next(self, timeout=None):
        if self._carried is not None:
            item, self._carried = self._carried, None
            return item
        if timeout is None:
            return await self.queue.get()
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def run(self):
        """Collects batches and runs them on the worker thread, until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            items = [await self._next()]
            size = len(items[0][0])
            deadline = loop.time() + self.window
            while size < self.max_batch:
                try:
                    item = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await self._next(remaining)
                    except asyncio.TimeoutError:
                        break
                if size + len(item[0]) > self.max_batch:
                    self._carried = item  # it opens the next batch
                    break
                items.append(item)
                size += len(item[0])
            items = [(inputs, future) for inputs, future in items if not future.done()]
            if not items:
                continue
            batch = np.concatenate([inputs for inputs, _ in items])
            try:
                outputs = await loop.run_in_executor(self.executor, self.predict, batch)
            except Exception as error:  # the model failed: every waiting request hears it
                for _, future in items:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.batches.append(len(batch))
            start = 0
            for inputs, future in items:
                if not future.done():
                    future.set_result(outputs[start:start + len(inputs)])
                start += len(inputs)


def make_app(servable, max_batch=MAX_BATCH, window_ms=BATCH_WINDOW_MS, max_body_mb=MAX_BODY_MB):
    """The aiohttp application serving `servable`."""
    from aiohttp import web

    batcher = Batcher(servable.runtime.predict, max_batch, window_ms)

    def error(status, message):
        return web.json_response({"error": message}, status=status)

    @web.middleware
    async def json_errors(request, handler):
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return error(413, f"The request body is over the limit of {max_body_mb:g} MB "
                              "(`kerasdl serve --max-body-mb`); send fewer instances per request.")
        except web.HTTPException as http:
            if http.status < 400:
                raise
            return error(http.status, f"{http.reason}: {request.method} {request.path}. Valid: "
                         f"GET /v1/models/{servable.name}, GET /v1/models/{servable.name}"
                         f"/metadata, POST /v1/models/{servable.name}:predict")
        except BadRequest as bad:
            return error(400, str(bad))
        except _JSONError as failure:
            return error(failure.status, failure.message)
        except Exception as failure:  # never die on a request
            print(f"Error answering {request.path}: {type(failure).__name__}: {failure}",
                  file=sys.stderr)
            return error(500, f"{type(failure).__name__}: {failure}")

    def check_name(name):
        if name != servable.name:
            raise _JSONError(404, f"Unknown model {name!r}; this server serves "
                                  f"{servable.name!r}.")

    async def status(request):
        check_name(request.match_info["name"])
        return web.json_response({"model_version_status": [{
            "version": "1", "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}]})

    async def metadata(request):
        check_name(request.match_info["name"])
        body = servable.metadata()
        body["kerasdl"]["batching"] = {"max_batch": max_batch, "window_ms": window_ms,
                                       "batches_run": len(batcher.batches),
                                       "largest_batch": max(batcher.batches, default=0)}
        return web.json_response(body)

    async def predict(request):
        name, _, method = request.match_info["target"].partition(":")
        check_name(name)
        if method != "predict":
            raise BadRequest(f"Unknown method {method!r}; valid: "
                             f"POST /v1/models/{servable.name}:predict")
        body = await request.read()
        inputs, rows = servable.parse(body)
        outputs = await batcher.submit(inputs)
        return web.json_response(servable.answer(outputs, rows))

    async def worker(app):
        task = asyncio.create_task(batcher.run())
        yield
        task.cancel()
        batcher.executor.shutdown(wait=True)

    app = web.Application(middlewares=[json_errors],
                          client_max_size=int(max_body_mb * 1024 * 1024))
    app.cleanup_ctx.append(worker)
    app.router.add_get("/v1/models/{name}", status)
    app.router.add_get("/v1/models/{name}/metadata", metadata)
    app.router.add_post("/v1/models/{target}", predict)
    app["batcher"] = batcher
    return app


class _JSONError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


def serve(path, host="127.0.0.1", port=8501, name=None, run=None, max_batch=MAX_BATCH,
          window_ms=BATCH_WINDOW_MS, max_body_mb=MAX_BODY_MB, unsafe=False, on_ready=print):
    """Serves a run or artifact until SIGTERM or SIGINT; requests in flight then finish.

    Args:
        path: a run folder, .keras, SavedModel folder, .tflite or .onnx file.
        port: the port; 0 picks a free one.
        name: the model name in the URLs; by default the run's recipe.
        run: the run an artifact came from (its schema and class names); by default
            the run folder the artifact lies in.
        on_ready: called with the serving URL once the server listens.

    Raises:
        UsageError: for bad limits or an address that cannot be bound.
    """
    from aiohttp import web

    if max_batch < 1 or window_ms < 0 or max_body_mb <= 0:
        raise UsageError(f"`max_batch` must be >= 1, `window_ms` >= 0 and `max_body_mb` > 0. "
                         f"Received: {max_batch}, {window_ms}, {max_body_mb}")
    servable = Servable(path, run=run, name=name, unsafe=unsafe)
    # Trace and warm the model before the first request.
    servable.runtime.predict(np.zeros((1, *servable.runtime.input_shape), np.float32))
    app = make_app(servable, max_batch, window_ms, max_body_mb)

    async def main():
        runner = web.AppRunner(app, handle_signals=False, access_log=None,
                               shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            raise KerasdlError(f"Cannot listen on {host}:{port}: {error.strerror or error}; "
                               "pass another --port (0: any free port).") from None
        bound = runner.addresses[0][1]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        shown = f"[{host}]" if ":" in host else host
        on_ready(f"http://{shown}:{bound}/v1/models/{servable.name}")
        await stop.wait()
        # A repeated SIGTERM (a supervisor's retry) must not cut the shutdown short; a
        # second Ctrl-C still ends it at once.
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        loop.remove_signal_handler(signal.SIGINT)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print("Shutting down: finishing the requests in flight.", file=sys.stderr)
        await runner.cleanup()

    asyncio.run(main())
