"""Load check of the playground: POST /api/trace on loopback, 1 client then N concurrent clients.

Starts its own `optimlab serve` on 127.0.0.1 (a free port), sends a bounded number of requests
within a bounded time, first one at a time and then `--concurrency` at once, and prints
requests/s and latency percentiles (median, p95, max) for both. Every request starts from its own
random point of the landscape's domain (seeded), so no server-side cache of identical scenes could
help. With ``--baseline DIR`` (another checkout, e.g. the main branch) the same phases run against a
server started from that checkout too, interleaved in one run on one machine: before vs after.

    python benchmarks/web_load.py --json benchmarks/results/web_load.json
    python benchmarks/web_load.py --baseline /work/main --sequential 10 --requests 40

Targets (issue 17): 3 optimizers x 500 steps, median <= 50 ms with 1 client, p95 <= 200 ms with 8.
Only loopback addresses are ever used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = re.compile(r"^http://(127\.0\.0\.1|\[::1\]|localhost):\d+/$")


def start_server(max_seconds: float, root: Path = ROOT) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "optimlab", "serve", "--host", "127.0.0.1", "--port", "0",
         "--max-seconds", str(max_seconds)],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(root)})
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


def start_points(landscape: str, count: int, seed: int) -> list[list[float]]:
    """`count` distinct start points drawn uniformly from the landscape's domain."""
    from optimlab.landscapes import get_landscape

    rng = random.Random(seed)
    bounds = get_landscape(landscape).bounds
    return [[round(rng.uniform(low, high), 6) for low, high in bounds] for _ in range(count)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


async def load(url: str, body: dict, count: int, concurrency: int, deadline_s: float,
               starts: list[list[float]]) -> dict:
    """`count` requests, at most `concurrency` in flight, none started after `deadline_s`;
    request i starts from ``starts[i]``."""
    latencies: list[float] = []
    computes: list[float] = []  # the server's own compute time of each scene (elapsed_seconds)
    statuses: dict[str, int] = {}
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    began = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=deadline_s) as client:
        async def one(index: int) -> None:
            async with gate:
                if time.perf_counter() - began > deadline_s:
                    statuses["not sent (time bound)"] = statuses.get("not sent (time bound)", 0) + 1
                    return
                sent = time.perf_counter()
                try:
                    response = await client.post("/api/trace", json={**body, "start": starts[index]})
                    key = str(response.status_code)
                except httpx.HTTPError as error:
                    key = type(error).__name__
                statuses[key] = statuses.get(key, 0) + 1
                if key == "200":
                    latencies.append(time.perf_counter() - sent)
                    computes.append(response.json()["elapsed_seconds"])

        await asyncio.gather(*(one(index) for index in range(count)))
    wall = time.perf_counter() - began
    ok = len(latencies)
    return {
        "concurrency": concurrency, "requests": count, "ok": ok, "statuses": statuses, "wall_s": round(wall, 3),
        "requests_per_s": round(ok / wall, 2) if wall else None,
        "latency_p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "latency_p95_ms": round(1000 * percentile(latencies, 95), 1) if latencies else None,
        "latency_max_ms": round(1000 * max(latencies), 1) if latencies else None,
        "compute_p50_ms": round(1000 * statistics.median(computes), 2) if computes else None,
    }


def measure(url: str, body: dict, args: argparse.Namespace, seed: int) -> list[dict]:
    """The one-client phase, then the concurrent phase, each from fresh start points."""
    httpx.post(url + "api/trace", json=body, timeout=120).raise_for_status()  # warm-up
    sequential = asyncio.run(load(url, body, args.sequential, 1, args.time_bound,
                                  start_points(args.landscape, args.sequential, seed)))
    concurrent = asyncio.run(load(url, body, args.requests, args.concurrency, args.time_bound,
                                  start_points(args.landscape, args.requests, seed + 1)))
    return [sequential, concurrent]


def print_phases(title: str, phases: list[dict]) -> None:
    print(title)
    print(f"{'clients':>9} {'requests':>8} {'ok':>5} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} "
          f"{'compute p50':>11}  statuses")
    for phase in phases:
        print(f"{phase['concurrency']:>9} {phase['requests']:>8} {phase['ok']:>5} {phase['requests_per_s']:>7} "
              f"{phase['latency_p50_ms']:>8} {phase['latency_p95_ms']:>8} {phase['latency_max_ms']:>8} "
              f"{phase['compute_p50_ms']:>11}  {phase['statuses']}")


def throughput_ratio(phases: list[dict]) -> float | None:
    sequential, concurrent = phases
    if sequential["requests_per_s"] and concurrent["requests_per_s"]:
        return round(concurrent["requests_per_s"] / sequential["requests_per_s"], 2)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=80, help="requests in the concurrent phase (max 2000)")
    parser.add_argument("--sequential", type=int, default=30, help="requests in the one-client phase")
    parser.add_argument("--concurrency", type=int, default=8, help="clients in flight at once (max 64)")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--optimizers", type=int, default=3)
    parser.add_argument("--landscape", default="rosenbrock")
    parser.add_argument("--seed", type=int, default=0, help="seed of the start points")
    parser.add_argument("--baseline", type=Path, help="another checkout (e.g. /work/main) to measure side by side")
    parser.add_argument("--time-bound", type=float, default=120.0, help="no request starts after this many seconds")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if not (1 <= args.requests <= 2000 and 1 <= args.concurrency <= 64 and 1 <= args.sequential <= 500):
        raise SystemExit("--requests must be in [1, 2000], --concurrency in [1, 64], --sequential in [1, 500]")
    if args.baseline is not None and not (args.baseline / "optimlab").is_dir():
        raise SystemExit(f"--baseline={args.baseline}: no optimlab/ package there")

    import torch

    load_before = os.getloadavg()[0]
    body = request_body(args)
    servers = {"this checkout": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    results = {}
    for name, root in servers.items():
        process, url = start_server(max_seconds=30.0, root=root)
        try:
            results[name] = {"root": str(root), "url": url, "phases": measure(url, body, args, args.seed),
                             "load_average_1m_after": round(os.getloadavg()[0], 2)}
        finally:
            process.terminate()
            process.wait(timeout=30)
        results[name]["concurrent_over_sequential_throughput"] = throughput_ratio(results[name]["phases"])

    result = {
        "benchmark": "web_load", "endpoint": "POST /api/trace", "body": body,
        "start_points": f"uniform over the domain, seed {args.seed} (one per request)",
        "machine": {"cpus": os.cpu_count(), "device": "cpu", "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "load_average_1m_before": round(load_before, 2),
                    "note": "loopback HTTP; a shared machine is noisy: compare the servers of one run"},
        "server": "optimlab serve (uvicorn, 1 process, 2 compute worker threads; this checkout: scenes in a "
                  "2-process pool)",
        "servers": results,
    }
    title = f"POST /api/trace  ({args.landscape}, {args.optimizers} optimizers x {args.steps} steps, own start each)"
    for name, measured in results.items():
        print_phases(f"{title}  [{name}: {measured['root']}]", measured["phases"])
        print(f"throughput ratio concurrent/sequential: {measured['concurrent_over_sequential_throughput']}")
    if len(results) == 2:
        after, before = results["this checkout"]["phases"], results["baseline"]["phases"]
        for b, a in zip(before, after):
            if b["latency_p50_ms"] and a["latency_p50_ms"]:
                print(f"{a['concurrency']} client(s): median {b['latency_p50_ms']} -> {a['latency_p50_ms']} ms "
                      f"({b['latency_p50_ms'] / a['latency_p50_ms']:.1f}x), p95 {b['latency_p95_ms']} -> "
                      f"{a['latency_p95_ms']} ms")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
