"""Compile time of the fused (torch.compile) path: cold cache vs warm cache, one process each.

Each measurement is a fresh Python process that builds an optimizer with fused=True over one
flat buffer and times its first two steps (one of them compiles) less two later steps; the
cold run uses an empty TORCHINDUCTOR_CACHE_DIR, the warm run the same directory again.

    python benchmarks/fused_compile_time.py [--out benchmarks/results/fused_compile_time-<machine>.json]
"""

import argparse
import json
import platform
import subprocess
import sys
import tempfile

import torch

CHILD = r"""
import time, torch, optimlab.optim as oo
cls = getattr(oo, "{name}")
params = [torch.nn.Parameter(torch.randn(1000)) for _ in range(10)]
for p in params: p.grad = torch.randn(1000)
opt = cls(params, fused=True, **{kwargs})
begin = time.perf_counter(); opt.step(); opt.step(); first_two = time.perf_counter() - begin
begin = time.perf_counter(); opt.step(); after = time.perf_counter() - begin
print(first_two - 2 * after, after)
"""

CASES = [("Adam", {}), ("AdamW", {}), ("SGD", {"lr": 0.01, "momentum": 0.9}), ("Adagrad", {}), ("RMSprop", {})]


def measure(name: str, kwargs: dict, cache_dir: str) -> float:
    env = {"TORCHINDUCTOR_CACHE_DIR": cache_dir, "PATH": "/usr/bin:/bin"}
    code = CHILD.format(name=name, kwargs=repr(kwargs))
    out = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, **env},
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    for name, kwargs in CASES:
        with tempfile.TemporaryDirectory() as cache_dir:
            cold = measure(name, kwargs, cache_dir)
            warm = measure(name, kwargs, cache_dir)
        rows.append({"optimizer": name, "cold_s": cold, "warm_s": warm})
        print(f"{name:<8} compile: cold cache {cold:6.2f} s, warm cache {warm:6.2f} s", flush=True)
    result = {"machine": platform.node(), "torch": torch.__version__, "rows": rows}
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
