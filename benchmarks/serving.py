"""`kerasdl serve` under load, on 127.0.0.1 only: correctness, throughput and latency.

Starts `kerasdl serve RUN --port 0` as its own process (a CNN run on digits: given with
`--run`, or trained now for 3 epochs), then, from an asyncio HTTP client (aiohttp):
1. sends 64 single-image requests at once: all must answer 200, and the served
   probabilities must equal the Keras model's on the same images (max abs difference);
2. one client sending one request at a time for `--duration` seconds;
3. `--clients` concurrent clients (default 16) for `--duration` seconds.
Reports requests/s, the throughput ratio of 3 to 2 (micro-batching at work), p50/p99
latency and the server's largest batch; then stops the server with SIGTERM (it must
exit 0). Prints a Markdown table (stdout) for BENCHMARKS.md.

    python benchmarks/serving.py [--run RUN] [--clients 16] [--duration 10] [--json]
"""

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def test_images(run, count=64):
    import keras

    from kerasdl.data import load_data

    config = json.loads((Path(run) / "config.json").read_text())
    splits = load_data(config["settings"]["data"], config["spec"]["task"], config["settings"],
                       spec=config["spec"])
    images = np.stack([x for x, _ in splits.test.take(count).as_numpy_iterator()])
    model = keras.saving.load_model(Path(run) / "model.keras")
    return images, model.predict(images, verbose=0)


async def one(session, url, image):
    body = json.dumps({"instances": [image.tolist()]})
    start = time.perf_counter()
    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
        answer = await r.json()
        return r.status, answer, time.perf_counter() - start


async def load(session, url, images, clients, duration):
    """`clients` loops sending one request at a time each, for `duration` seconds."""
    latencies, statuses = [], []
    stop = time.perf_counter() + duration

    async def client(offset):
        i = offset
        while time.perf_counter() < stop:
            status, _, seconds = await one(session, url, images[i % len(images)])
            statuses.append(status)
            latencies.append(seconds)
            i += clients

    start = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    elapsed = time.perf_counter() - start
    latencies = np.asarray(latencies) * 1000
    return {"clients": clients, "requests": len(latencies),
            "non_200": sum(s != 200 for s in statuses),
            "requests_per_second": len(latencies) / elapsed,
            "p50_ms": float(np.percentile(latencies, 50)),
            "p99_ms": float(np.percentile(latencies, 99))}


async def measure(base, images, expected, clients, duration):
    import aiohttp

    url = base + ":predict"
    connector = aiohttp.TCPConnector(limit=max(64, clients))
    async with aiohttp.ClientSession(connector=connector) as session:
        await one(session, url, images[0])  # warm
        burst = await asyncio.gather(*(one(session, url, image) for image in images))
        served = np.concatenate([np.asarray(answer["predictions"]) for _, answer, _ in burst])
        figures = {"burst_requests": len(burst),
                   "burst_all_200": all(status == 200 for status, _, _ in burst),
                   "max_abs_diff_vs_keras": float(np.abs(served - expected).max())}
        figures["sequential"] = await load(session, url, images, 1, duration)
        figures["concurrent"] = await load(session, url, images, clients, duration)
        async with session.get(base + "/metadata") as response:
            figures["batching"] = (await response.json())["kerasdl"]["batching"]
    figures["throughput_ratio"] = (figures["concurrent"]["requests_per_second"]
                                   / figures["sequential"]["requests_per_second"])
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="A cnn run (default: train one now, 3 epochs).")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="Seconds per phase.")
    parser.add_argument("--json", action="store_true", help="Print JSON, not Markdown.")
    args = parser.parse_args()
    kerasdl = [sys.executable, "-m", "kerasdl"]
    run = args.run
    if not run:
        run = Path(tempfile.mkdtemp(prefix="kerasdl-serving-")) / "cnn"
        print(f"Training a CNN into {run} ...", file=sys.stderr)
        subprocess.run([*kerasdl, "train", "cnn", "--epochs", "3", "--output", str(run)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    images, expected = test_images(run)
    server = subprocess.Popen([*kerasdl, "serve", str(run), "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        base = server.stdout.readline().strip()
        if not base.startswith("http://127.0.0.1:"):
            sys.exit("The server did not start.")
        print(f"Serving at {base}; measuring ...", file=sys.stderr)
        figures = asyncio.run(measure(base, images, expected, args.clients, args.duration))
    finally:
        server.send_signal(signal.SIGTERM)
        figures_exit = server.wait(timeout=60)
    figures["server_exit_code"] = figures_exit
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print("| load | requests | non-200 | requests/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for key in ("sequential", "concurrent"):
        f = figures[key]
        print(f"| {f['clients']} client(s), one request at a time | {f['requests']} | "
              f"{f['non_200']} | {f['requests_per_second']:.1f} | {f['p50_ms']:.1f} | "
              f"{f['p99_ms']:.1f} |")
    print(f"\n{figures['burst_requests']} concurrent single-image requests all 200: "
          f"{figures['burst_all_200']}; served vs Keras max abs difference "
          f"{figures['max_abs_diff_vs_keras']:.2g}; throughput {args.clients} clients / 1 client: "
          f"{figures['throughput_ratio']:.2f}x; largest batch "
          f"{figures['batching']['largest_batch']}; server exit code on SIGTERM "
          f"{figures['server_exit_code']}.")


if __name__ == "__main__":
    main()
