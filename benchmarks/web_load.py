"""Load check of the playground: N concurrent POST /api/trace requests on loopback.

Starts its own `optimlab serve` on 127.0.0.1 (a free port), sends a bounded number of requests
within a bounded time, first one at a time and then `--concurrency` at once, and prints
requests/s and latency percentiles for both (side by side, in one run, on one machine).

    python benchmarks/web_load.py --requests 120 --concurrency 16 --json benchmarks/results/web_load.json

Only loopback addresses are ever used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = re.compile(r"^http://(127\.0\.0\.1|\[::1\]|localhost):\d+/$")


def start_server(max_seconds: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "optimlab", "serve", "--host", "127.0.0.1", "--port", "0",
         "--max-seconds", str(max_seconds)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = process.stdout.readline()
    match = re.search(r"(http://\S+/)", line)
    if not match or not LOOPBACK.match(match.group(1)):
        process.terminate()
        raise SystemExit(f"server did not start on loopback: {line!r}")
    return process, match.group(1)


def request_body(args: argparse.Namespace) -> dict:
    names = ["gd", "momentum", "adam", "rmsprop", "nesterov", "adagrad", "sgd", "adamw"]
    lrs = {"gd": 0.001, "sgd": 0.001, "momentum": 0.001, "nesterov": 0.001}
    return {"landscape": args.landscape, "steps": args.steps,
            "optimizers": [{"name": n, "hyperparameters": {"lr": lrs.get(n, 0.01)}} for n in names[: args.optimizers]]}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


async def load(url: str, body: dict, count: int, concurrency: int, deadline_s: float) -> dict:
    """`count` requests, at most `concurrency` in flight, none started after `deadline_s`."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    began = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=deadline_s) as client:
        async def one() -> None:
            async with gate:
                if time.perf_counter() - began > deadline_s:
                    statuses["not sent (time bound)"] = statuses.get("not sent (time bound)", 0) + 1
                    return
                sent = time.perf_counter()
                try:
                    response = await client.post("/api/trace", json=body)
                    key = str(response.status_code)
                except httpx.HTTPError as error:
                    key = type(error).__name__
                statuses[key] = statuses.get(key, 0) + 1
                if key == "200":
                    latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(one() for _ in range(count)))
    wall = time.perf_counter() - began
    ok = len(latencies)
    return {
        "concurrency": concurrency, "requests": count, "ok": ok, "statuses": statuses, "wall_s": round(wall, 3),
        "requests_per_s": round(ok / wall, 2) if wall else None,
        "latency_p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "latency_p95_ms": round(1000 * percentile(latencies, 95), 1) if latencies else None,
        "latency_max_ms": round(1000 * max(latencies), 1) if latencies else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=120, help="requests in the concurrent phase (max 2000)")
    parser.add_argument("--sequential", type=int, default=20, help="requests in the one-at-a-time phase")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight at once (max 64)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--optimizers", type=int, default=3)
    parser.add_argument("--landscape", default="rosenbrock")
    parser.add_argument("--time-bound", type=float, default=120.0, help="no request starts after this many seconds")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if not (1 <= args.requests <= 2000 and 1 <= args.concurrency <= 64 and 1 <= args.sequential <= 500):
        raise SystemExit("--requests must be in [1, 2000], --concurrency in [1, 64], --sequential in [1, 500]")

    load_before = os.getloadavg()[0]
    process, url = start_server(max_seconds=30.0)
    try:
        body = request_body(args)
        httpx.post(url + "api/trace", json=body, timeout=60).raise_for_status()  # warm-up
        sequential = asyncio.run(load(url, body, args.sequential, 1, args.time_bound))
        concurrent = asyncio.run(load(url, body, args.requests, args.concurrency, args.time_bound))
    finally:
        process.terminate()
        process.wait(timeout=30)

    import torch

    result = {
        "benchmark": "web_load", "url": url, "endpoint": "POST /api/trace", "body": body,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "torch": torch.__version__,
                    "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                    "note": "measured on a shared 2-core machine (several people running tests at once): noisy"},
        "server": "optimlab serve (uvicorn, 1 process, 2 compute worker threads)",
        "phases": [sequential, concurrent],
        "concurrent_over_sequential_throughput": round(concurrent["requests_per_s"] / sequential["requests_per_s"], 2)
        if sequential["requests_per_s"] and concurrent["requests_per_s"] else None,
    }
    print(f"POST /api/trace  ({args.landscape}, {args.optimizers} optimizers x {args.steps} steps)  on {url}")
    print(f"{'in flight':>9} {'requests':>8} {'ok':>5} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  statuses")
    for phase in result["phases"]:
        print(f"{phase['concurrency']:>9} {phase['requests']:>8} {phase['ok']:>5} {phase['requests_per_s']:>7} "
              f"{phase['latency_p50_ms']:>8} {phase['latency_p95_ms']:>8} {phase['latency_max_ms']:>8}  {phase['statuses']}")
    print(f"throughput ratio concurrent/sequential: {result['concurrent_over_sequential_throughput']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
