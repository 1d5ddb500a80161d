"""Optimizer-step throughput against a memory-bandwidth estimate (`optimlab bench step`).

A step is memory-bound: it reads param, grad and each state buffer and writes param and the
states back, ``4 * (3 + 2 * n_states)`` bytes per float32 parameter (Adam: 28 B, SGD with
momentum: 20 B). At the device's measured copy bandwidth (read + write bytes per second) that
gives an estimate of the fastest step (the "floor" of the table). It is an estimate, not a bound:
caches, and a copy measurement below the device's peak, let a step beat it (a share above 1);
each time is printed with its share of the floor and its ratio to torch's best implementation, all
measured side by side in one run.
"""

from __future__ import annotations

import gc
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

from . import optim as oo

FP32 = 4


@dataclass(frozen=True)
class Algorithm:
    name: str
    optimlab_class: type
    torch_class: type
    kwargs: dict[str, Any]
    n_states: int  # elementwise state buffers (exp_avg, ...)

    @property
    def bytes_per_param(self) -> int:
        """Reads param, grad and the states; writes param and the states."""
        return FP32 * (3 + 2 * self.n_states)


ALGORITHMS = [
    Algorithm("adam", oo.Adam, torch.optim.Adam, dict(lr=1e-3), 2),
    Algorithm("adamw", oo.AdamW, torch.optim.AdamW, dict(lr=1e-3), 2),
    Algorithm("sgd-momentum", oo.SGD, torch.optim.SGD, dict(lr=1e-3, momentum=0.9), 1),
    Algorithm("adagrad", oo.Adagrad, torch.optim.Adagrad, dict(lr=1e-2), 1),
    Algorithm("rmsprop", oo.RMSprop, torch.optim.RMSprop, dict(lr=1e-3), 1),
]

# implementation name -> (uses optimlab, extra constructor kwargs, fresh grads before each step)
IMPLEMENTATIONS: dict[str, tuple[bool, dict[str, Any], bool]] = {
    "optimlab fused": (True, {"fused": True}, False),
    "optimlab fused, fresh grads": (True, {"fused": True}, True),
    "optimlab flat eager": (True, {"fused": None}, False),
    "optimlab reference": (True, {"fused": False}, False),
    "torch for-loop": (False, {"foreach": False}, False),
    "torch foreach": (False, {"foreach": True}, False),
    "torch fused": (False, {"fused": True}, False),
}


def default_layouts(device: torch.device) -> dict[str, tuple[int, int]]:
    """name -> (number of tensors, params per tensor)."""
    big = (480, 1_812_500) if device.type == "cuda" else (24, 1_000_000)
    return {"big": big, "many-small": (10_000, 2_500)}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds one call of `fn` takes (CUDA events on a GPU, perf_counter on the CPU)."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    begin = time.perf_counter()
    fn()
    return time.perf_counter() - begin


def copy_bandwidth(device: torch.device, nbytes: int, repeats: int = 7) -> float:
    """Bytes per second moved (read + write, as counted for the floor), median of `repeats`.

    The better of ``dst.copy_(src)`` (2 x nbytes) and ``dst.add_(src)`` (3 x nbytes): on a CPU a
    plain copy also reads the destination before writing it (write-allocate), traffic that an
    optimizer step, which reads every buffer it writes, does not have.
    """
    src = torch.ones(nbytes // FP32, device=device)
    dst = torch.ones_like(src)
    dst.copy_(src)
    copy_s = statistics.median(timed(lambda: dst.copy_(src), device) for _ in range(repeats))
    add_s = statistics.median(timed(lambda: dst.add_(src), device) for _ in range(repeats))
    return max(2 * nbytes / copy_s, 3 * nbytes / add_s)


def make_params(n_tensors: int, size: int, device: torch.device) -> list[torch.nn.Parameter]:
    gen = torch.Generator(device=device).manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(size, device=device, generator=gen)) for _ in range(n_tensors)]
    for param in params:
        param.grad = torch.randn(size, device=device, generator=gen) * 1e-3
    return params


def time_steps(algorithm: Algorithm, implementation: str, layout: tuple[int, int], device: torch.device,
               min_steps: int, budget_s: float) -> dict[str, Any] | None:
    """Median seconds per step (after a first, untimed step that includes any compile)."""
    uses_optimlab, extra, fresh_grads = IMPLEMENTATIONS[implementation]
    params = make_params(*layout, device)
    cls = algorithm.optimlab_class if uses_optimlab else algorithm.torch_class
    try:
        optimizer = cls(params, **algorithm.kwargs, **extra)
        first = timed(optimizer.step, device)
    except (RuntimeError, ValueError, TypeError) as error:  # e.g. torch has no fused RMSprop
        return {"skipped": str(error).splitlines()[0][:120]}
    grads = [torch.randn_like(p) * 1e-3 for p in params] if fresh_grads else None
    times: list[float] = []
    began = time.perf_counter()
    while len(times) < min_steps or (time.perf_counter() - began < budget_s and len(times) < 200):
        if grads is not None:
            for param, grad in zip(params, grads):
                param.grad = grad  # as after zero_grad(set_to_none=True) and backward
        times.append(timed(optimizer.step, device))
    del optimizer, params, grads
    gc.collect()
    return {"median_s": statistics.median(times), "first_step_s": first, "steps_timed": len(times)}


def check_agreement(device: torch.device, steps: int = 100) -> dict[str, float]:
    """max |fused - reference| / max |reference| over the parameters after `steps` steps."""
    result = {}
    for algorithm in ALGORITHMS:
        finals = []
        for fused in (True, False):
            params = make_params(8, 1000, device)
            grads = [p.grad.clone() for p in params]
            optimizer = algorithm.optimlab_class(params, **algorithm.kwargs, fused=fused)
            for step in range(steps):
                for param, grad in zip(params, grads):
                    param.grad.copy_(grad * (1 + 0.01 * step) + 1e-4 * param.detach())
                optimizer.step()
            finals.append(torch.cat([p.detach().reshape(-1) for p in params]))
        fused_params, reference = finals
        result[algorithm.name] = ((fused_params - reference).abs().max() / reference.abs().max()).item()
    return result


def machine_description(device: torch.device) -> dict[str, Any]:
    cpu_model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            cpu_model = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "machine": platform.node(), "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cpu_model": cpu_model, "cpu_threads": torch.get_num_threads(), "torch": torch.__version__,
        "python": platform.python_version(),
    }


def run_benchmark(
    device: torch.device,
    layouts: dict[str, tuple[int, int]],
    algorithms: list[str] | None = None,
    implementations: list[str] | None = None,
    *,
    min_steps: int = 5,
    budget_s: float = 3.0,
    check: bool = True,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Time every (layout, algorithm, implementation) and relate each time to the floor."""
    chosen = [a for a in ALGORITHMS if algorithms is None or a.name in algorithms]
    implementations = implementations or list(IMPLEMENTATIONS)
    unknown = set(implementations) - set(IMPLEMENTATIONS)
    if unknown:
        raise ValueError(f"implementation(s) {sorted(unknown)} unknown (allowed: {', '.join(IMPLEMENTATIONS)})")
    copy_bytes = 256 * 2**20 if device.type == "cpu" else 2 * 2**30
    bandwidths = [copy_bandwidth(device, copy_bytes)]
    progress(f"copy bandwidth: {bandwidths[0] / 1e9:.1f} GB/s (read + write)")
    rows = []
    for layout_name, layout in layouts.items():
        for algorithm in chosen:
            bandwidths.append(copy_bandwidth(device, copy_bytes))  # again between rows: keep the best
            cells = []
            for implementation in implementations:
                timing = time_steps(algorithm, implementation, layout, device, min_steps, budget_s)
                row = {"layout": layout_name, "tensors": layout[0], "params_per_tensor": layout[1],
                       "algorithm": algorithm.name, "implementation": implementation,
                       "bytes_per_param": algorithm.bytes_per_param, **timing}
                if "median_s" in row:
                    progress(f"{layout_name:<10} {algorithm.name:<13} {implementation:<28} {row['median_s'] * 1e3:9.2f} ms")
                cells.append(row)
            torch_best = min((r["median_s"] for r in cells if r["implementation"].startswith("torch") and "median_s" in r),
                             default=None)
            for row in cells:
                if torch_best and "median_s" in row:
                    row["speedup_vs_torch_best"] = torch_best / row["median_s"]
            rows.extend(cells)
    bandwidth = max(bandwidths)  # the best copy measured: an estimate; caches can let a step beat it
    for row in rows:
        row["floor_s"] = row["bytes_per_param"] * row["tensors"] * row["params_per_tensor"] / bandwidth
        if "median_s" in row:
            row["share_of_floor"] = row["floor_s"] / row["median_s"]
    result = {**machine_description(device), "copy_bandwidth_bytes_per_s": bandwidth,
              "copy_bandwidth_samples": bandwidths, "rows": rows}
    if check:
        result["fused_vs_reference_max_rel_diff_100_steps"] = check_agreement(device)
    return result


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"device: {result['device']} ({result['cpu_model']}, {result['cpu_threads']} threads), torch {result['torch']}",
        f"copy bandwidth: {result['copy_bandwidth_bytes_per_s'] / 1e9:.1f} GB/s (read + write; best of "
        f"{len(result['copy_bandwidth_samples'])} measurements in this run)",
        f"{'layout':<10} {'algorithm':<13} {'implementation':<28} {'ms/step':>9} {'floor ms':>9} {'of floor':>8} "
        f"{'vs torch best':>13}",
    ]
    for row in result["rows"]:
        head = f"{row['layout']:<10} {row['algorithm']:<13} {row['implementation']:<28}"
        if "median_s" not in row:
            lines.append(f"{head} skipped: {row['skipped']}")
            continue
        speedup = row.get("speedup_vs_torch_best")
        lines.append(
            f"{head} {row['median_s'] * 1e3:9.2f} {row['floor_s'] * 1e3:9.2f} {row['share_of_floor']:8.3f} "
            f"{(f'{speedup:.2f}x' if speedup else '-'):>13}"
        )
    if "fused_vs_reference_max_rel_diff_100_steps" in result:
        diffs = ", ".join(f"{k} {v:.1e}" for k, v in result["fused_vs_reference_max_rel_diff_100_steps"].items())
        lines.append(f"fused vs reference, max relative difference after 100 steps: {diffs}")
    return "\n".join(lines)
